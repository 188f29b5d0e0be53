//! The aggregator's state between Kafka and ClickHouse, with no I/O of its
//! own: records are decoded and validated ([`crate::decode`]), folded into
//! the [`Engines`], and their rows gathered into a [`Batch`]. Rejections
//! become [`DeadLetter`]s that wait for the next commit, and the Kafka
//! record times of what was folded wait for the ClickHouse acknowledgement
//! that gives their latency.
//!
//! Nothing here takes a Kafka or ClickHouse type: [`crate::source`] feeds
//! [`Record`]s in and reads checkpoints and snapshots, [`crate::commit`]
//! writes the batch, the snapshots [`Pipeline::take_snapshots`] picks, and
//! commits the [`PartitionOffset`]s that [`Pipeline::offsets`] computes. So
//! the whole state machine can be driven from a test.
//!
//! A partition with a snapshot restarts from the record after it when that
//! is later than its checkpoint's restart offset (the oldest record kept
//! state depends on); the committed metadata ([`Restart`]) then names the
//! snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use tradewind_core::{Checkpoint, CoreConfig, PartitionState, Reason, SnapshotError, SourceMeta};
use tradewind_proto::Stream;
use tradewind_sink::{Batch, SinkConfig};

use crate::decode::decode;
use crate::dlq::DeadLetter;
use crate::engines::Engines;
use crate::state::{Found, Restart, StateRecord};
use crate::telemetry as tm;
pub use crate::written::{Buffers, Written};

/// One Kafka record, as the pipeline sees it.
pub struct Record<'a> {
    pub stream: Stream,
    pub partition: i32,
    pub offset: i64,
    pub record_time_ms: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// A partition's restart offset and the checkpoint to commit with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// [`Restart::to_metadata`], stored as the offset's metadata.
    pub metadata: String,
}

/// A partition's latest snapshot (committed, or queued for the commit in
/// progress).
#[derive(Debug, Clone, Copy)]
struct Snap {
    offset: i64,
    taken: Instant,
    bytes: usize,
    chunks: u32,
}

/// A snapshot [`Pipeline::take_snapshots`] picked for the next commit.
pub struct Pending {
    pub stream: Stream,
    pub partition: i32,
    pub state: PartitionState,
    /// Chunks of the partition's previous snapshot, for the tombstones.
    pub previous_chunks: u32,
}

pub struct Pipeline {
    topics: BTreeMap<Stream, String>,
    engines: Engines,
    /// Partitions whose checkpoint has been read since they were assigned.
    restored: HashSet<(Stream, i32)>,
    /// Records consumed per stream since the last commit.
    consumed: BTreeMap<Stream, u64>,
    /// Partitions that have seen a record since they were assigned.
    active: HashSet<(Stream, i32)>,
    /// Each partition's latest snapshot.
    snapshots: HashMap<(Stream, i32), Snap>,
    /// Partitions whose state cannot be rebuilt: their records are ignored
    /// and nothing is committed for them.
    refused: HashSet<(Stream, i32)>,
    /// The offset each restored partition's next record should have (at
    /// least): a larger jump may mean records were deleted under us.
    expected: HashMap<(Stream, i32), i64>,
    batch: Batch,
    /// An acknowledged cut's buffers, cleared, for the next cut to reuse.
    spare: Buffers,
    dead: Vec<DeadLetter>,
    /// Snapshot records of a cut whose write failed: the partitions'
    /// restart points already count on them.
    carried_state: Vec<StateRecord>,
    /// Event and Kafka record times of what was folded since the last
    /// write, for the latency figures once ClickHouse acknowledges it.
    event_times: Vec<i64>,
    record_times: Vec<i64>,
}

impl Pipeline {
    /// A pipeline over the topics `topic_of` names for each stream.
    pub fn new(
        core: &CoreConfig,
        topic_of: impl Fn(Stream) -> String,
    ) -> Result<Self, tradewind_core::Error> {
        Ok(Self {
            topics: Stream::ALL.iter().map(|s| (*s, topic_of(*s))).collect(),
            engines: Engines::new(core)?,
            restored: HashSet::new(),
            consumed: BTreeMap::new(),
            active: HashSet::new(),
            snapshots: HashMap::new(),
            refused: HashSet::new(),
            expected: HashMap::new(),
            batch: Batch::default(),
            spare: Buffers::default(),
            dead: Vec::new(),
            carried_state: Vec::new(),
            event_times: Vec::new(),
            record_times: Vec::new(),
        })
    }

    pub fn topic_of(&self, stream: Stream) -> &str {
        &self.topics[&stream]
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.topics.values().cloned().collect()
    }

    pub fn stream_of(&self, topic: &str) -> Option<Stream> {
        self.topics
            .iter()
            .find(|(_, t)| t.as_str() == topic)
            .map(|(s, _)| *s)
    }

    /// Whether any record was consumed since the last cut.
    pub fn folded_any(&self) -> bool {
        !self.consumed.is_empty()
    }

    /// Whether the pending rows have reached the sink's row or byte limit:
    /// time to commit, whatever the time since the last one.
    pub fn full(&self, cfg: &SinkConfig) -> bool {
        self.batch.len() >= cfg.max_rows || self.batch.approx_bytes() >= cfg.max_bytes
    }

    /// Whether `partition`'s checkpoint still has to be read.
    pub fn needs_restore(&self, stream: Stream, partition: i32) -> bool {
        !self.restored.contains(&(stream, partition))
    }

    /// Restores a newly assigned partition from its committed checkpoint
    /// alone (`None` when nothing was ever committed): replay starts at
    /// the checkpoint's restart offset.
    pub fn restore(&mut self, stream: Stream, partition: i32, cp: Option<&Checkpoint>) {
        if let Some(cp) = cp {
            tracing::info!(topic = %self.topics[&stream], partition, restart = cp.restart_offset, highest = cp.highest_processed, "restoring partition from its checkpoint");
            self.engines.restore(stream, partition, cp);
        }
        self.restored.insert((stream, partition));
    }

    /// Restores a newly assigned partition from the snapshot its committed
    /// metadata names; replay starts after the snapshot's offset.
    pub fn restore_snapshot(
        &mut self,
        stream: Stream,
        partition: i32,
        restart: &Restart,
        found: Found,
    ) -> Result<(), SnapshotError> {
        let offset = found.offset;
        self.engines
            .restore_snapshot(stream, partition, found.state, Some(&restart.cp))?;
        let age_ms = (crate::wall_now_ms() - found.taken_ms).max(0) as u64;
        let taken = Instant::now()
            .checked_sub(std::time::Duration::from_millis(age_ms))
            .unwrap_or_else(Instant::now);
        self.snapshots.insert(
            (stream, partition),
            Snap {
                offset,
                taken,
                bytes: found.bytes,
                chunks: 0,
            },
        );
        self.restored.insert((stream, partition));
        Ok(())
    }

    /// Where `partition`'s next record should be; set by the source when it
    /// restores the partition, moved on by every record.
    pub fn expect(&mut self, stream: Stream, partition: i32, offset: i64) {
        self.expected.insert((stream, partition), offset);
    }

    /// Whether a record at `offset` skips more than one offset past where
    /// the partition's next record should be (one is a transaction
    /// marker); the source then checks whether retention deleted them.
    pub fn skips_ahead(&self, stream: Stream, partition: i32, offset: i64) -> Option<i64> {
        let next = *self.expected.get(&(stream, partition))?;
        (offset > next + 1).then_some(next)
    }

    /// Marks a partition as one this member will not process.
    pub fn refuse(&mut self, stream: Stream, partition: i32) {
        self.refused.insert((stream, partition));
        self.restored.insert((stream, partition));
    }

    pub fn is_refused(&self, stream: Stream, partition: i32) -> bool {
        self.refused.contains(&(stream, partition))
    }

    /// Refused partitions as (topic, partition).
    pub fn refused(&self) -> Vec<(&str, i32)> {
        self.refused
            .iter()
            .map(|(s, p)| (self.topics[s].as_str(), *p))
            .collect()
    }

    /// Picks the partitions to snapshot at this commit: every active one
    /// with `all` (the interval passed, or partitions are handed over),
    /// else those whose restart would replay more than `max_replay`
    /// records (0: none). A partition is skipped when a snapshot would
    /// not move its restart offset. Call after [`Pipeline::flush`].
    pub fn take_snapshots(&mut self, all: bool, max_replay: u64) -> Vec<Pending> {
        let mut parts: Vec<(Stream, i32)> = self.active.iter().copied().collect();
        parts.sort_unstable();
        let mut out = Vec::new();
        for (stream, partition) in parts {
            let Some(cp) = self.engines.checkpoint(stream, partition) else {
                continue;
            };
            let prev = self.snapshots.get(&(stream, partition)).copied();
            let restart = cp
                .restart_offset
                .max(prev.map_or(i64::MIN, |s| s.offset + 1));
            let Some(state) = self.engines.snapshot(stream, partition) else {
                continue;
            };
            let replay = state.last_offset + 1 - restart;
            if replay <= 0 || !(all || (max_replay > 0 && replay as u64 > max_replay)) {
                continue;
            }
            out.push(Pending {
                stream,
                partition,
                state,
                previous_chunks: prev.map_or(0, |s| s.chunks),
            });
        }
        out
    }

    /// Notes a snapshot queued in the commit in progress.
    pub fn snapshot_taken(
        &mut self,
        stream: Stream,
        partition: i32,
        offset: i64,
        bytes: usize,
        chunks: u32,
    ) {
        self.snapshots.insert(
            (stream, partition),
            Snap {
                offset,
                taken: Instant::now(),
                bytes,
                chunks,
            },
        );
    }

    /// (topic, partition, age, bytes) of every partition's latest snapshot.
    pub fn snapshot_ages(&self, now: Instant) -> Vec<(&str, i32, f64, usize)> {
        self.snapshots
            .iter()
            .map(|((s, p), snap)| {
                let age = now.saturating_duration_since(snap.taken).as_secs_f64();
                (self.topics[s].as_str(), *p, age, snap.bytes)
            })
            .collect()
    }

    /// Folds one record.
    pub fn handle(&mut self, rec: Record<'_>) {
        let Record {
            stream,
            partition,
            offset,
            record_time_ms,
            ..
        } = rec;
        self.active.insert((stream, partition));
        self.expected.insert((stream, partition), offset + 1);
        // Counted locally and published per commit: a labelled metric
        // lookup per record is too dear on this path.
        *self.consumed.entry(stream).or_insert(0) += 1;
        self.record_times.push(record_time_ms);
        match decode(stream, rec.payload) {
            Err(reason) => {
                metrics::counter!(tm::DECODE_ERRORS_TOTAL, "topic" => self.topics[&stream].clone(), "reason" => reason.as_str()).increment(1);
                self.engines
                    .record_invalid(stream, partition, offset, reason);
            }
            Ok(decoded) => {
                if let Some(t) = decoded.event_time() {
                    self.event_times.push(t);
                }
                let meta = SourceMeta {
                    partition,
                    offset,
                    record_time_ms,
                };
                self.engines.process(meta, &decoded, &mut self.batch);
            }
        }
        for reason in self.drain(stream) {
            self.dead_letter(&rec, reason);
        }
    }

    fn dead_letter(&mut self, rec: &Record<'_>, reason: Reason) {
        let topic = self.topics[&rec.stream].clone();
        metrics::counter!(tm::DLQ_TOTAL, "topic" => topic.clone(), "reason" => reason.as_str())
            .increment(1);
        self.dead.push(DeadLetter {
            key: rec.key.map(<[u8]>::to_vec),
            payload: rec.payload.to_vec(),
            topic,
            partition: rec.partition,
            offset: rec.offset,
            reason: reason.as_str(),
            field: reason.field(),
        });
    }

    /// Moves an engine's output into the batch; returns its rejections.
    fn drain(&mut self, stream: Stream) -> Vec<Reason> {
        self.engines
            .drain(stream, &self.topics[&stream], &mut self.batch)
    }

    /// Flushes the engines into the batch, which then holds every row the
    /// offsets of [`Pipeline::offsets`] depend on.
    pub fn flush(&mut self) -> &Batch {
        self.engines.flush();
        for s in Stream::ALL {
            let rejections = self.drain(s);
            debug_assert!(rejections.is_empty(), "flush never rejects");
        }
        &self.batch
    }

    /// Takes the flushed rows out, with the consumed counts and record
    /// times that wait for their acknowledgement: the commit's cut. The
    /// pipeline goes on with empty buffers (recycled ones when there are
    /// some, so they are not grown again from nothing).
    pub fn take_written(&mut self) -> Written {
        let spare = std::mem::take(&mut self.spare);
        Written {
            batch: std::sync::Arc::new(std::mem::replace(&mut self.batch, spare.batch)),
            consumed: std::mem::take(&mut self.consumed)
                .into_iter()
                .map(|(s, n)| (self.topics[&s].clone(), n))
                .collect(),
            event_times: std::mem::replace(&mut self.event_times, spare.event_times),
            record_times: std::mem::replace(&mut self.record_times, spare.record_times),
        }
    }

    /// Takes back a cut whose write failed: its rows, dead letters and
    /// samples go in front of what came after, and its snapshot records
    /// wait for the next cut ([`Pipeline::take_carried_state`]).
    pub fn uncut(&mut self, older: Written, dead: Vec<DeadLetter>, state: Vec<StateRecord>) {
        let batch = std::sync::Arc::try_unwrap(older.batch).unwrap_or_else(|b| (*b).clone());
        self.batch.absorb_older(batch);
        for (topic, n) in older.consumed {
            if let Some(s) = self.stream_of(&topic) {
                *self.consumed.entry(s).or_insert(0) += n;
            }
        }
        let mut times = older.event_times;
        times.append(&mut self.event_times);
        self.event_times = times;
        let mut times = older.record_times;
        times.append(&mut self.record_times);
        self.record_times = times;
        let mut letters = dead;
        letters.append(&mut self.dead);
        self.dead = letters;
        let mut records = state;
        records.append(&mut self.carried_state);
        self.carried_state = records;
    }

    /// Snapshot records of a failed write, for the next cut to carry.
    pub fn take_carried_state(&mut self) -> Vec<StateRecord> {
        std::mem::take(&mut self.carried_state)
    }

    /// Hands back an acknowledged cut's emptied buffers for a later cut.
    pub fn recycle(&mut self, buffers: Buffers) {
        self.spare = buffers;
    }

    pub fn take_dead(&mut self) -> Vec<DeadLetter> {
        std::mem::take(&mut self.dead)
    }

    /// The dead letters pending, without taking them.
    pub fn dead(&self) -> &[DeadLetter] {
        &self.dead
    }

    /// The restart offset (with checkpoint metadata) of every active
    /// partition, sorted by topic and partition.
    pub fn offsets(&self) -> Vec<PartitionOffset> {
        let mut out: Vec<PartitionOffset> = self
            .active
            .iter()
            .filter_map(|(stream, partition)| {
                let cp = self.engines.checkpoint(*stream, *partition)?;
                let snapshot = self
                    .snapshots
                    .get(&(*stream, *partition))
                    .map(|s| s.offset)
                    .filter(|s| s + 1 > cp.restart_offset);
                Some(PartitionOffset {
                    topic: self.topics[stream].clone(),
                    partition: *partition,
                    offset: snapshot.map_or(cp.restart_offset, |s| s + 1),
                    metadata: Restart { cp, snapshot }.to_metadata(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Event-time watermark of every active partition, by topic.
    pub fn watermarks(&self) -> Vec<(&str, i32, i64)> {
        self.active
            .iter()
            .filter_map(|(stream, partition)| {
                let wm = self.engines.watermark(*stream, *partition)?;
                Some((self.topics[stream].as_str(), *partition, wm))
            })
            .collect()
    }

    /// Forgets partitions that were revoked, after their last commit.
    pub fn revoke<'a>(&mut self, partitions: impl IntoIterator<Item = (&'a str, i32)>) {
        for (topic, p) in partitions {
            let Some(stream) = self.stream_of(topic) else {
                continue;
            };
            self.restored.remove(&(stream, p));
            self.active.remove(&(stream, p));
            self.snapshots.remove(&(stream, p));
            self.refused.remove(&(stream, p));
            self.expected.remove(&(stream, p));
            self.engines.drop_partition(stream, p);
        }
    }

    /// Forgets everything not committed, as a crash would: every
    /// partition's state, the pending rows and the dead letters. The next
    /// records of each partition restore it from its committed checkpoint.
    pub fn discard(&mut self) {
        let parts: Vec<(Stream, i32)> = self.active.iter().chain(&self.restored).copied().collect();
        for (stream, p) in parts {
            self.engines.drop_partition(stream, p);
        }
        // Rows already taken out of the engines go with them.
        let _ = self.flush();
        self.restored.clear();
        self.active.clear();
        self.snapshots.clear();
        self.refused.clear();
        self.expected.clear();
        self.consumed.clear();
        self.batch = Batch::default();
        self.dead.clear();
        self.carried_state.clear();
        self.event_times.clear();
        self.record_times.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use tradewind_proto::Payment;

    fn payment(id: u64, event_time: i64) -> Vec<u8> {
        Payment {
            payment_id: id,
            event_time,
            method: 1,
            channel: 1,
            payer_country: 1,
            payee_country: 2,
            currency: 1,
            amount_minor: 100,
            status: 2,
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn feed(p: &mut Pipeline, partition: i32, offset: i64, payload: &[u8]) {
        p.handle(Record {
            stream: Stream::Payments,
            partition,
            offset,
            record_time_ms: 1_800_000_000_000,
            key: None,
            payload,
        });
    }

    #[test]
    fn rejections_wait_as_dead_letters_and_discard_forgets_everything_uncommitted() {
        let mut p = Pipeline::new(&CoreConfig::default(), |s| format!("t.{s}")).unwrap();
        assert_eq!(p.stream_of("t.payments"), Some(Stream::Payments));
        for o in 0..10 {
            feed(
                &mut p,
                1,
                o,
                &payment(o as u64 + 1, 1_799_999_000_000 + o * 1000),
            );
        }
        feed(&mut p, 0, 0, &[0x0F, 1, 2]);
        let dead: Vec<_> = p
            .dead()
            .iter()
            .map(|d| (d.reason, d.partition, d.offset))
            .collect();
        assert_eq!(dead, [("malformed", 0, 0)]);
        assert!(!p.flush().is_empty());

        let offsets = p.offsets();
        let parts: Vec<_> = offsets
            .iter()
            .map(|o| (o.topic.as_str(), o.partition))
            .collect();
        assert_eq!(parts, [("t.payments", 0), ("t.payments", 1)], "sorted");
        let cp = Checkpoint::from_metadata(&offsets[1].metadata).unwrap();
        assert_eq!(cp.highest_processed, 9);

        p.discard();
        assert!(p.dead().is_empty() && p.offsets().is_empty());
        assert!(p.flush().is_empty(), "no pending rows survive a discard");
        assert!(p.needs_restore(Stream::Payments, 1));
    }

    #[test]
    fn a_jump_past_the_next_offset_is_noticed_but_a_transaction_marker_is_not() {
        let mut p = Pipeline::new(&CoreConfig::default(), |s| format!("t.{s}")).unwrap();
        assert_eq!(
            p.skips_ahead(Stream::Payments, 1, 500),
            None,
            "not restored yet"
        );
        p.expect(Stream::Payments, 1, 10);
        assert_eq!(p.skips_ahead(Stream::Payments, 1, 10), None);
        assert_eq!(p.skips_ahead(Stream::Payments, 1, 11), None, "one marker");
        assert_eq!(p.skips_ahead(Stream::Payments, 1, 12), Some(10));
        feed(&mut p, 1, 10, &payment(1, 1_799_999_000_000));
        assert_eq!(p.skips_ahead(Stream::Payments, 1, 12), None);
        assert_eq!(p.skips_ahead(Stream::Payments, 1, 400), Some(11));
        p.discard();
        assert_eq!(p.skips_ahead(Stream::Payments, 1, 400), None);
    }
}
