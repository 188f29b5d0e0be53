//! Partition snapshots on the compacted state topic (`<prefix>state`).
//!
//! What flows through here: a partition's [`PartitionState`] is cut into
//! [`SnapshotChunk`] records ([`StateTopic::records`]) that
//! [`crate::commit`] produces in the same Kafka transaction as the DLQ
//! records and the offsets; on assignment, [`StateTopic::read`] reads the
//! latest whole snapshot of a partition back.
//!
//! Layout:
//! - key `<group>/<stream>/<partition>/<chunk>`, so compaction keeps each
//!   chunk's latest version and pipelines sharing a prefix never mix;
//! - source partition `p` goes to state partition `p % partitions`;
//! - a snapshot is whole when chunks `0..chunks` carry the same offset and
//!   the xxh3 of their joined data equals the checksum. Chunks past a
//!   smaller successor's count are deleted with tombstones.
//!
//! The committed offset's metadata ([`Restart`]) names the snapshot a
//! restart must use, so a restore never guesses: a missing, mismatched or
//! corrupt snapshot is an error, not a fresh start.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tradewind_core::{Checkpoint, PartitionState};
use tradewind_kafka::KafkaConfig;
use tradewind_proto::{SnapshotChunk, Stream};

/// The snapshot format this build writes and reads.
pub const FORMAT: u32 = 1;

/// How long reading a state partition may take before it is an error.
const READ_LIMIT: Duration = Duration::from_secs(60);

/// A partition's restart point as committed with its offset: the
/// checkpoint, and the snapshot the restart offset belongs to, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub cp: Checkpoint,
    /// Offset of the snapshot's last folded record; the committed offset
    /// is the one after it.
    pub snapshot: Option<i64>,
}

impl Restart {
    /// `<checkpoint>` or `<checkpoint>|s<offset>`.
    pub fn to_metadata(&self) -> String {
        match self.snapshot {
            Some(s) => format!("{}|s{s}", self.cp.to_metadata()),
            None => self.cp.to_metadata(),
        }
    }

    pub fn from_metadata(s: &str) -> Option<Self> {
        let (cp, snapshot) = match s.split_once("|s") {
            Some((cp, snap)) => (cp, Some(snap.parse().ok()?)),
            None => (s, None),
        };
        Some(Self {
            cp: Checkpoint::from_metadata(cp)?,
            snapshot,
        })
    }
}

/// Why a partition's snapshot cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading the state topic {topic}: {reason}")]
    Unreadable { topic: String, reason: String },
    #[error("the state topic {topic} holds no snapshot for this partition")]
    Missing { topic: String },
    #[error("snapshot on {topic} is corrupt: {reason}")]
    Corrupt { topic: String, reason: String },
}

impl StateError {
    /// The `reason` label of [`crate::telemetry::SNAPSHOT_ERRORS_TOTAL`].
    pub fn label(&self) -> &'static str {
        match self {
            StateError::Unreadable { .. } => "unreadable",
            StateError::Missing { .. } => "missing",
            StateError::Corrupt { .. } => "corrupt",
        }
    }
}

/// One record for the state topic.
pub struct StateRecord {
    pub partition: i32,
    pub key: String,
    /// `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
}

/// A whole snapshot read back, with when it was taken.
#[derive(Debug)]
pub struct Found {
    pub state: PartitionState,
    pub offset: i64,
    pub taken_ms: i64,
    pub bytes: usize,
}

/// Latest chunk payloads (`None`: deleted) by key prefix, then index.
type Chunks = BTreeMap<String, BTreeMap<u32, Option<Vec<u8>>>>;

/// The state reader's client context: end-of-partition is how a read
/// ends, not an error to log.
struct Reader;

impl ClientContext for Reader {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::debug!(%error, reason, "state topic reader");
        }
    }
}

impl ConsumerContext for Reader {}

/// Where this group's snapshots live.
#[derive(Debug, Clone)]
pub struct StateTopic {
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub chunk_bytes: usize,
    kafka: KafkaConfig,
    cache: Option<Chunks>,
}

impl StateTopic {
    pub fn new(kafka: &KafkaConfig, group: &str, chunk_bytes: usize) -> Self {
        Self {
            topic: kafka.state_topic(),
            partitions: kafka.partitions.state.max(1),
            group: group.to_string(),
            chunk_bytes: chunk_bytes.max(1024),
            kafka: kafka.clone(),
            cache: None,
        }
    }

    /// Learns the state topic's real partition count (it may have been
    /// created by hand with another than `kafka.partitions.state`).
    pub fn discover<C: rdkafka::consumer::ConsumerContext>(&mut self, consumer: &impl Consumer<C>) {
        let found = consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .ok()
            .and_then(|m| m.topics().first().map(|t| t.partitions().len() as i32))
            .filter(|n| *n > 0);
        if let Some(n) = found {
            self.partitions = n;
        }
    }

    fn prefix(&self, stream: Stream, partition: i32) -> String {
        format!("{}/{}/{}/", self.group, stream.as_str(), partition)
    }

    fn state_partition(&self, partition: i32) -> i32 {
        partition.rem_euclid(self.partitions)
    }

    /// The records of one snapshot, plus tombstones for the chunks of a
    /// larger predecessor (`previous_chunks`) that it does not overwrite.
    pub fn records(
        &self,
        stream: Stream,
        partition: i32,
        state: &PartitionState,
        previous_chunks: u32,
    ) -> (Vec<StateRecord>, usize) {
        let data = state.encode_to_vec();
        let checksum = xxhash_rust::xxh3::xxh3_64(&data);
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(self.chunk_bytes).collect()
        };
        let chunks = pieces.len() as u32;
        let prefix = self.prefix(stream, partition);
        let target = self.state_partition(partition);
        let taken_ms = crate::wall_now_ms();
        let mut out: Vec<StateRecord> = pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| StateRecord {
                partition: target,
                key: format!("{prefix}{i}"),
                payload: Some(
                    SnapshotChunk {
                        format: FORMAT,
                        stream: stream.as_str().into(),
                        partition,
                        offset: state.last_offset,
                        chunk: i as u32,
                        chunks,
                        checksum,
                        taken_ms,
                        data: piece.to_vec(),
                    }
                    .encode_to_vec(),
                ),
            })
            .collect();
        out.extend((chunks..previous_chunks).map(|i| StateRecord {
            partition: target,
            key: format!("{prefix}{i}"),
            payload: None,
        }));
        (out, data.len())
    }

    /// Forgets what [`StateTopic::read`] cached; call when partitions are
    /// assigned, since another member may have snapshotted them since.
    pub fn forget_cache(&mut self) {
        self.cache = None;
    }

    /// The latest whole snapshot of `stream`'s `partition`. The first call
    /// after an assignment reads this group's chunks from every state
    /// partition in one `read_committed` pass; later calls use them.
    pub fn read(&mut self, stream: Stream, partition: i32) -> Result<Found, StateError> {
        if self.cache.is_none() {
            self.cache = Some(self.load()?);
        }
        let prefix = self.prefix(stream, partition);
        let latest = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&prefix))
            .cloned()
            .unwrap_or_default();
        self.assemble(stream, partition, latest)
    }

    /// This group's latest chunks, by key prefix and chunk index.
    fn load(&self) -> Result<Chunks, StateError> {
        let unreadable = |reason: String| StateError::Unreadable {
            topic: self.topic.clone(),
            reason,
        };
        let consumer: BaseConsumer<Reader> = self
            .kafka
            .consumer_config()
            .set("group.id", format!("{}-state-reader", self.group))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .create_with_context(Reader)
            .map_err(|e| unreadable(e.to_string()))?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition_offset(&self.topic, p, Offset::Beginning)
                .map_err(|e| unreadable(e.to_string()))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| unreadable(e.to_string()))?;
        let group = format!("{}/", self.group);
        let mut chunks = Chunks::new();
        let mut open: std::collections::BTreeSet<i32> = (0..self.partitions).collect();
        let started = Instant::now();
        while !open.is_empty() {
            if started.elapsed() > READ_LIMIT {
                return Err(unreadable(format!(
                    "partitions {open:?} not read to their end within {READ_LIMIT:?}"
                )));
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => continue,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => return Err(unreadable(e.to_string())),
                Some(Ok(m)) => {
                    let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
                    let Some((prefix, chunk)) = key
                        .filter(|k| k.starts_with(&group))
                        .and_then(|k| k.rsplit_once('/'))
                        .and_then(|(pre, c)| Some((pre, c.parse::<u32>().ok()?)))
                    else {
                        continue;
                    };
                    chunks
                        .entry(format!("{prefix}/"))
                        .or_default()
                        .insert(chunk, m.payload().map(<[u8]>::to_vec));
                }
            }
        }
        Ok(chunks)
    }

    /// Joins the latest chunks (by index; `None` = deleted) into one
    /// validated snapshot.
    pub fn assemble(
        &self,
        stream: Stream,
        partition: i32,
        latest: BTreeMap<u32, Option<Vec<u8>>>,
    ) -> Result<Found, StateError> {
        let corrupt = |reason: String| StateError::Corrupt {
            topic: self.topic.clone(),
            reason: format!("{stream}[{partition}]: {reason}"),
        };
        let decode = |i: u32| -> Result<Option<SnapshotChunk>, StateError> {
            match latest.get(&i) {
                None | Some(None) => Ok(None),
                Some(Some(b)) => SnapshotChunk::decode(b.as_slice())
                    .map(Some)
                    .map_err(|e| corrupt(format!("chunk {i} does not decode: {e}"))),
            }
        };
        let Some(first) = decode(0)? else {
            return Err(StateError::Missing {
                topic: self.topic.clone(),
            });
        };
        if first.format != FORMAT {
            return Err(corrupt(format!(
                "format {} (this build reads format {FORMAT})",
                first.format
            )));
        }
        if first.stream != stream.as_str() || first.partition != partition {
            return Err(corrupt(format!(
                "chunk 0 belongs to {}[{}]",
                first.stream, first.partition
            )));
        }
        let mut data = first.data.clone();
        for i in 1..first.chunks {
            let c = decode(i)?.ok_or_else(|| corrupt(format!("chunk {i} is missing")))?;
            if c.offset != first.offset || c.checksum != first.checksum || c.chunks != first.chunks
            {
                return Err(corrupt(format!(
                    "chunk {i} is from another snapshot (offset {}, expected {})",
                    c.offset, first.offset
                )));
            }
            data.extend_from_slice(&c.data);
        }
        if xxhash_rust::xxh3::xxh3_64(&data) != first.checksum {
            return Err(corrupt("checksum mismatch".into()));
        }
        let state = PartitionState::decode(data.as_slice())
            .map_err(|e| corrupt(format!("state does not decode: {e}")))?;
        if state.last_offset != first.offset {
            return Err(corrupt(format!(
                "state ends at offset {}, its chunks say {}",
                state.last_offset, first.offset
            )));
        }
        Ok(Found {
            state,
            offset: first.offset,
            taken_ms: first.taken_ms,
            bytes: data.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(chunk_bytes: usize) -> StateTopic {
        StateTopic {
            chunk_bytes,
            ..StateTopic::new(&KafkaConfig::default(), "g", 1024)
        }
    }

    fn state(windows: usize) -> PartitionState {
        PartitionState {
            last_offset: 41,
            windows: (0..windows)
                .map(|i| tradewind_proto::WindowCell {
                    window_start: i as i64 * 60_000,
                    version: 40,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn latest(records: Vec<StateRecord>) -> BTreeMap<u32, Option<Vec<u8>>> {
        records
            .into_iter()
            .map(|r| {
                (
                    r.key.rsplit('/').next().unwrap().parse().unwrap(),
                    r.payload,
                )
            })
            .collect()
    }

    #[test]
    fn metadata_round_trips_with_and_without_a_snapshot() {
        let cp = Checkpoint {
            restart_offset: 5,
            frontier_at_restart: -1,
            frontier_at_checkpoint: 9,
            highest_processed: 12,
            ledger_from: 3,
        };
        for snapshot in [None, Some(11)] {
            let r = Restart { cp, snapshot };
            assert_eq!(Restart::from_metadata(&r.to_metadata()), Some(r));
        }
        assert_eq!(Restart::from_metadata("v1:1:2:3:4:5|sx"), None);
    }

    #[test]
    fn a_large_snapshot_is_chunked_and_joined_back() {
        let t = topic(1024);
        let s = state(400);
        let (records, bytes) = t.records(Stream::Logistics, 6, &s, 0);
        assert!(records.len() > 3, "{} chunks", records.len());
        assert!(records.iter().all(|r| r.partition == 6 % t.partitions));
        assert!(records[0].key.starts_with("g/logistics/6/"));
        let found = t.assemble(Stream::Logistics, 6, latest(records)).unwrap();
        assert_eq!(found.state, s);
        assert_eq!((found.offset, found.bytes), (41, bytes));
    }

    #[test]
    fn a_smaller_successor_deletes_the_extra_chunks() {
        let t = topic(1024);
        let (records, _) = t.records(Stream::Iot, 1, &state(1), 5);
        let payloads: Vec<bool> = records.iter().map(|r| r.payload.is_some()).collect();
        assert_eq!(payloads, [true, false, false, false, false]);
        assert!(t.assemble(Stream::Iot, 1, latest(records)).is_ok());
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_never_a_fresh_start() {
        let t = topic(1024);
        let (records, _) = t.records(Stream::Payments, 0, &state(400), 0);
        let mut missing = latest(records);
        assert!(matches!(
            t.assemble(Stream::Payments, 0, BTreeMap::new()),
            Err(StateError::Missing { .. })
        ));
        assert!(matches!(
            t.assemble(Stream::Iot, 0, missing.clone()),
            Err(StateError::Corrupt { .. })
        ));
        let mut flipped = missing.clone();
        if let Some(Some(b)) = flipped.get_mut(&1) {
            let n = b.len() - 1;
            b[n] ^= 0xff;
        }
        let e = t.assemble(Stream::Payments, 0, flipped).unwrap_err();
        assert_eq!(e.label(), "corrupt", "{e}");
        missing.remove(&2);
        let e = t.assemble(Stream::Payments, 0, missing).unwrap_err();
        assert!(e.to_string().contains("chunk 2 is missing"), "{e}");
        let garbage = BTreeMap::from([(0u32, Some(vec![0xff, 0xff, 0xff]))]);
        assert_eq!(
            t.assemble(Stream::Payments, 0, garbage)
                .unwrap_err()
                .label(),
            "corrupt"
        );
    }
}
