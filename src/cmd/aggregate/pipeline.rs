//! The aggregator's state between Kafka and ClickHouse, with no I/O of its
//! own: records are decoded and validated ([`super::decode`]), folded into
//! one core engine per stream, and their rows gathered into a [`Batch`].
//! Rejections become [`DeadLetter`]s that wait for the next commit, and
//! the Kafka record times of what was folded wait for the ClickHouse
//! acknowledgement that gives their latency.
//!
//! The I/O lives elsewhere: [`super::source`] feeds records in and reads
//! checkpoints, [`super::commit`] writes the batch and commits the offsets
//! that [`Pipeline::offsets`] computes.

use std::collections::{BTreeMap, HashSet};

use anyhow::{anyhow, Result};
use rdkafka::{Offset, TopicPartitionList};
use tradewind_core::{
    Checkpoint, Engine, FxQuotes, IotHealth, LogisticsSla, PaymentCorridors, Reason, SourceMeta,
};
use tradewind_proto::Stream;
use tradewind_sink::{Batch, SinkConfig};

use super::decode::{decode, Decoded};
use super::dlq::DeadLetter;
use crate::config::AppConfig;
use crate::telemetry as tm;

/// One Kafka record, as the pipeline sees it.
pub struct Record<'a> {
    pub stream: Stream,
    pub partition: i32,
    pub offset: i64,
    pub record_time_ms: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

pub struct Pipeline {
    topics: BTreeMap<Stream, String>,
    payments: Engine<PaymentCorridors>,
    iot: Engine<IotHealth>,
    logistics: Engine<LogisticsSla>,
    /// FX quotes are not windowed, but validated, booked in the ledger and
    /// checkpointed like the rest.
    fx: Engine<FxQuotes>,
    /// Partitions whose checkpoint has been read since they were assigned.
    restored: HashSet<(Stream, i32)>,
    /// Records consumed per stream since the last commit.
    consumed: BTreeMap<Stream, u64>,
    /// Partitions that have seen a record since they were assigned.
    active: HashSet<(Stream, i32)>,
    batch: Batch,
    dead: Vec<DeadLetter>,
    /// Event and Kafka record times of what was folded since the last
    /// write, for the latency figures once ClickHouse acknowledges it.
    event_times: Vec<i64>,
    record_times: Vec<i64>,
}

impl Pipeline {
    pub fn new(cfg: &AppConfig) -> Result<Self> {
        let k = &cfg.kafka;
        let engines = |e: tradewind_core::Error| anyhow!(e);
        Ok(Self {
            topics: Stream::ALL
                .iter()
                .map(|s| (*s, k.topic(s.as_str())))
                .collect(),
            payments: Engine::new(&cfg.core, PaymentCorridors).map_err(engines)?,
            iot: Engine::new(&cfg.core, cfg.core.iot()).map_err(engines)?,
            logistics: Engine::new(&cfg.core, cfg.core.logistics()).map_err(engines)?,
            fx: Engine::new(&cfg.core, FxQuotes).map_err(engines)?,
            restored: HashSet::new(),
            consumed: BTreeMap::new(),
            active: HashSet::new(),
            batch: Batch::default(),
            dead: Vec::new(),
            event_times: Vec::new(),
            record_times: Vec::new(),
        })
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

    /// Whether enough is pending (rows, bytes or time since the last
    /// commit) to write and commit.
    pub fn due(&self, cfg: &SinkConfig, since_commit: std::time::Duration) -> bool {
        self.batch.len() >= cfg.max_rows
            || self.batch.approx_bytes() >= cfg.max_bytes
            || since_commit >= cfg.flush_interval
    }

    /// Whether `partition`'s checkpoint still has to be read.
    pub fn needs_restore(&self, stream: Stream, partition: i32) -> bool {
        !self.restored.contains(&(stream, partition))
    }

    /// Restores a newly assigned partition from its committed offset's
    /// metadata (empty when nothing was ever committed).
    pub fn restore(&mut self, stream: Stream, partition: i32, metadata: &str) {
        if let Some(cp) = Checkpoint::from_metadata(metadata) {
            tracing::info!(topic = %self.topics[&stream], partition, restart = cp.restart_offset, highest = cp.highest_processed, "restoring partition");
            match stream {
                Stream::Payments => self.payments.restore(partition, &cp),
                Stream::Iot => self.iot.restore(partition, &cp),
                Stream::Logistics => self.logistics.restore(partition, &cp),
                Stream::Fx => self.fx.restore(partition, &cp),
            }
        }
        self.restored.insert((stream, partition));
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
        let meta = SourceMeta {
            partition,
            offset,
            record_time_ms,
        };
        // Counted locally and published per commit: a labelled metric
        // lookup per record is too dear on this path.
        *self.consumed.entry(stream).or_insert(0) += 1;
        self.record_times.push(record_time_ms);

        let rejections = match decode(stream, rec.payload) {
            Err(reason) => {
                metrics::counter!(tm::DECODE_ERRORS_TOTAL, "topic" => self.topics[&stream].clone(), "reason" => reason.as_str()).increment(1);
                match stream {
                    Stream::Payments => self.payments.record_invalid(partition, offset, reason),
                    Stream::Iot => self.iot.record_invalid(partition, offset, reason),
                    Stream::Logistics => self.logistics.record_invalid(partition, offset, reason),
                    Stream::Fx => self.fx.record_invalid(partition, offset, reason),
                }
                self.drain(stream)
            }
            Ok(Decoded::Payment(p)) => {
                self.event_times.push(p.event_time);
                self.payments.process(meta, &p);
                self.drain(stream)
            }
            Ok(Decoded::Iot(r)) => {
                self.event_times.push(r.event_time);
                self.iot.process(meta, &r);
                self.drain(stream)
            }
            Ok(Decoded::Logistics(e)) => {
                self.event_times.push(e.event_time);
                self.logistics.process(meta, &e);
                self.drain(stream)
            }
            Ok(Decoded::Fx(q)) => {
                if self.fx.process(meta, &q).is_none() {
                    self.batch.push_fx(&q, offset);
                }
                self.drain(stream)
            }
        };
        for reason in rejections {
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
        let pending = match stream {
            Stream::Payments => self.payments.has_output(),
            Stream::Iot => self.iot.has_output(),
            Stream::Logistics => self.logistics.has_output(),
            Stream::Fx => self.fx.has_output(),
        };
        if !pending {
            return Vec::new();
        }
        let topic = self.topics[&stream].clone();
        let (ledger, rejections) = match stream {
            Stream::Payments => {
                let out = self.payments.take_output();
                out.rows
                    .into_iter()
                    .for_each(|r| self.batch.push_corridor(&topic, r));
                (out.ledger, out.rejections)
            }
            Stream::Iot => {
                let out = self.iot.take_output();
                out.rows
                    .into_iter()
                    .for_each(|r| self.batch.push_iot(&topic, r));
                (out.ledger, out.rejections)
            }
            Stream::Logistics => {
                let out = self.logistics.take_output();
                out.rows
                    .into_iter()
                    .for_each(|r| self.batch.push_logistics(&topic, r));
                (out.ledger, out.rejections)
            }
            Stream::Fx => {
                let out = self.fx.take_output();
                (out.ledger, out.rejections)
            }
        };
        for l in ledger {
            self.batch.push_ledger(&topic, l);
        }
        rejections.into_iter().map(|r| r.reason).collect()
    }

    /// Flushes the engines into the batch, which then holds every row the
    /// offsets of [`Pipeline::offsets`] depend on.
    pub fn flush(&mut self) -> &Batch {
        self.payments.flush();
        self.iot.flush();
        self.logistics.flush();
        self.fx.flush();
        for s in Stream::ALL {
            let rejections = self.drain(s);
            debug_assert!(rejections.is_empty(), "flush never rejects");
        }
        &self.batch
    }

    /// ClickHouse acknowledged the batch at `acked_ms`: clear it, publish
    /// the counts and latencies, and return the record times' latencies
    /// (ms) for the caller's own histogram.
    pub fn written(&mut self, acked_ms: i64) -> Vec<u64> {
        let rows = self.batch.len();
        self.batch = Batch::default();
        if rows > 0 {
            metrics::histogram!(tm::SINK_BATCH_ROWS).record(rows as f64);
        }
        for (stream, n) in std::mem::take(&mut self.consumed) {
            metrics::counter!(tm::CONSUMED_TOTAL, "topic" => self.topics[&stream].clone())
                .increment(n);
        }
        let end_to_end = metrics::histogram!(tm::END_TO_END_SECONDS);
        for t in self.event_times.drain(..) {
            end_to_end.record((acked_ms - t).max(0) as f64 / 1000.0);
        }
        let pipeline = metrics::histogram!(tm::PIPELINE_SECONDS);
        self.record_times
            .drain(..)
            .map(|t| {
                let ms = (acked_ms - t).max(0);
                pipeline.record(ms as f64 / 1000.0);
                ms as u64
            })
            .collect()
    }

    /// The dead letters waiting for the next Kafka transaction.
    pub fn take_dead(&mut self) -> Vec<DeadLetter> {
        std::mem::take(&mut self.dead)
    }

    /// The offsets (with checkpoint metadata) of every active partition.
    pub fn offsets(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (stream, partition) in &self.active {
            let topic = &self.topics[stream];
            let (offset, meta) = match stream {
                Stream::Payments => checkpoint(self.payments.checkpoint(*partition)),
                Stream::Iot => checkpoint(self.iot.checkpoint(*partition)),
                Stream::Logistics => checkpoint(self.logistics.checkpoint(*partition)),
                Stream::Fx => checkpoint(self.fx.checkpoint(*partition)),
            };
            if let Some(offset) = offset {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(offset))?;
                if let Some(mut e) = tpl.find_partition(topic, *partition) {
                    e.set_metadata(meta);
                }
            }
        }
        Ok(tpl)
    }

    /// Event-time watermark of every active partition, by topic.
    pub fn watermarks(&self) -> Vec<(&str, i32, i64)> {
        self.active
            .iter()
            .filter_map(|(stream, partition)| {
                let wm = match stream {
                    Stream::Payments => self.payments.watermark(*partition),
                    Stream::Iot => self.iot.watermark(*partition),
                    Stream::Logistics => self.logistics.watermark(*partition),
                    Stream::Fx => self.fx.watermark(*partition),
                }?;
                Some((self.topics[stream].as_str(), *partition, wm))
            })
            .collect()
    }

    /// Forgets partitions that were revoked, after their last commit.
    pub fn revoke(&mut self, tpl: &TopicPartitionList) {
        for e in tpl.elements() {
            let Some(stream) = self.stream_of(e.topic()) else {
                continue;
            };
            let p = e.partition();
            self.restored.remove(&(stream, p));
            self.active.remove(&(stream, p));
            match stream {
                Stream::Payments => self.payments.drop_partition(p),
                Stream::Iot => self.iot.drop_partition(p),
                Stream::Logistics => self.logistics.drop_partition(p),
                Stream::Fx => self.fx.drop_partition(p),
            }
        }
    }

    /// Forgets everything not committed, as a crash would: every
    /// partition's state, the pending rows and the dead letters. The next
    /// records of each partition restore it from its committed checkpoint.
    pub fn discard(&mut self) {
        let parts: Vec<(Stream, i32)> = self.active.iter().chain(&self.restored).copied().collect();
        for (stream, p) in parts {
            match stream {
                Stream::Payments => self.payments.drop_partition(p),
                Stream::Iot => self.iot.drop_partition(p),
                Stream::Logistics => self.logistics.drop_partition(p),
                Stream::Fx => self.fx.drop_partition(p),
            }
        }
        // Rows already taken out of the engines go with them.
        let _ = self.flush();
        self.restored.clear();
        self.active.clear();
        self.consumed.clear();
        self.batch = Batch::default();
        self.dead.clear();
        self.event_times.clear();
        self.record_times.clear();
    }
}

fn checkpoint(cp: Option<Checkpoint>) -> (Option<i64>, String) {
    match cp {
        Some(cp) => (Some(cp.restart_offset), cp.to_metadata()),
        None => (None, String::new()),
    }
}
