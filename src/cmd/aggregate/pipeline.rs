//! The aggregator's state between Kafka and ClickHouse: records are decoded
//! and validated ([`super::decode`]), folded into one core engine per
//! stream, and their rows gathered into a [`Batch`]. Rejections become DLQ
//! records that wait for the next commit.
//!
//! A commit ([`Pipeline::commit`]) follows the protocol: flush the engines,
//! write the batch to ClickHouse until acknowledged, then in one Kafka
//! transaction produce the pending DLQ records and commit each partition's
//! restart offset with its checkpoint as metadata. DLQ records and offsets
//! land together or not at all, so after a crash the replay re-sends exactly
//! the DLQ records that never became visible.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tradewind_core::{
    Checkpoint, Engine, IotHealth, LogisticsSla, PaymentCorridors, Reason, SourceMeta,
};
use tradewind_proto::Stream;
use tradewind_sink::{Batch, Writer};

use super::decode::{decode, Decoded};
use super::lag::Committed;
use crate::config::AppConfig;
use crate::telemetry as tm;

/// A rejected record on its way to the DLQ.
struct DeadLetter {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    topic: String,
    partition: i32,
    offset: i64,
    reason: &'static str,
}

pub struct Pipeline {
    topics: BTreeMap<Stream, String>,
    dlq_topic: String,
    payments: Engine<PaymentCorridors>,
    iot: Engine<IotHealth>,
    logistics: Engine<LogisticsSla>,
    /// FX quotes are not windowed: their partitions commit `last + 1`.
    fx_last: BTreeMap<i32, i64>,
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
    /// Kafka record time to ClickHouse acknowledgement, milliseconds.
    pub pipeline_latency: hdrhistogram::Histogram<u64>,
    writer: Writer,
    dlq: ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    last_commit: Instant,
    committed: Arc<Committed>,
}

fn engines_error(e: tradewind_core::Error) -> anyhow::Error {
    anyhow!(e)
}

impl Pipeline {
    pub fn new(
        cfg: &AppConfig,
        writer: Writer,
        rt: tokio::runtime::Handle,
        stop: Arc<AtomicBool>,
        committed: Arc<Committed>,
    ) -> Result<Self> {
        let k = &cfg.kafka;
        let topics = Stream::ALL
            .iter()
            .map(|s| (*s, k.topic(s.as_str())))
            .collect();
        let txn_id = format!(
            "{}-dlq-{}-{}",
            cfg.aggregator.group_id,
            std::process::id(),
            tradewind_sim::clock::wall_now_ms()
        );
        let dlq: ThreadedProducer<_> = k
            .producer_config()
            .set("transactional.id", txn_id)
            .set("transaction.timeout.ms", "120000")
            .set("message.timeout.ms", "60000")
            .create()
            .context("creating the DLQ producer")?;
        dlq.init_transactions(k.connect_timeout)
            .context("initialising Kafka transactions for the DLQ")?;
        Ok(Self {
            topics,
            dlq_topic: k.topic("dlq"),
            payments: Engine::new(&cfg.core, PaymentCorridors).map_err(engines_error)?,
            iot: Engine::new(&cfg.core, cfg.core.iot()).map_err(engines_error)?,
            logistics: Engine::new(&cfg.core, cfg.core.logistics()).map_err(engines_error)?,
            fx_last: BTreeMap::new(),
            restored: HashSet::new(),
            consumed: BTreeMap::new(),
            active: HashSet::new(),
            batch: Batch::default(),
            dead: Vec::new(),
            event_times: Vec::new(),
            record_times: Vec::new(),
            pipeline_latency: hdrhistogram::Histogram::new(3).context("latency histogram")?,
            writer,
            dlq,
            rt,
            stop,
            last_commit: Instant::now(),
            committed,
        })
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.topics.values().cloned().collect()
    }

    fn stream_of(&self, topic: &str) -> Option<Stream> {
        self.topics
            .iter()
            .find(|(_, t)| t.as_str() == topic)
            .map(|(s, _)| *s)
    }

    /// Whether enough is pending (rows, bytes or time) to write and commit.
    /// `now` comes from the caller, which reads the clock sparingly.
    pub fn due(&self, now: Instant) -> bool {
        let cfg = self.writer.config();
        self.batch.len() >= cfg.max_rows
            || self.batch.approx_bytes() >= cfg.max_bytes
            || now.saturating_duration_since(self.last_commit) >= cfg.flush_interval
    }

    /// Reads a newly assigned partition's checkpoint from its committed
    /// offset metadata and restores the engine from it.
    fn restore<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        stream: Stream,
        partition: i32,
    ) -> Result<()> {
        let topic = &self.topics[&stream];
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .context("reading committed offsets")?;
        let meta = committed
            .find_partition(topic, partition)
            .map(|e| e.metadata().to_string())
            .unwrap_or_default();
        if let Some(cp) = Checkpoint::from_metadata(&meta) {
            tracing::info!(%topic, partition, restart = cp.restart_offset, highest = cp.highest_processed, "restoring partition");
            match stream {
                Stream::Payments => self.payments.restore(partition, &cp),
                Stream::Iot => self.iot.restore(partition, &cp),
                Stream::Logistics => self.logistics.restore(partition, &cp),
                Stream::Fx => {}
            }
        }
        self.restored.insert((stream, partition));
        Ok(())
    }

    /// Folds one Kafka record.
    pub fn handle<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        msg: &BorrowedMessage<'_>,
    ) -> Result<()> {
        let Some(stream) = self.stream_of(msg.topic()) else {
            return Ok(());
        };
        let partition = msg.partition();
        if !self.restored.contains(&(stream, partition)) {
            self.restore(consumer, stream, partition)?;
        }
        self.active.insert((stream, partition));
        let offset = msg.offset();
        let payload = msg.payload().unwrap_or_default();
        let record_time_ms = msg
            .timestamp()
            .to_millis()
            .unwrap_or_else(tradewind_sim::clock::wall_now_ms);
        let meta = SourceMeta {
            partition,
            offset,
            record_time_ms,
        };
        // Counted locally and published per commit: a labelled metric
        // lookup per record is too dear on this path.
        *self.consumed.entry(stream).or_insert(0) += 1;
        self.record_times.push(record_time_ms);

        let rejections = match decode(stream, payload) {
            Err(reason) => {
                metrics::counter!(tm::DECODE_ERRORS_TOTAL, "topic" => stream.as_str(), "reason" => reason.as_str()).increment(1);
                match stream {
                    Stream::Payments => self.payments.record_invalid(partition, offset, reason),
                    Stream::Iot => self.iot.record_invalid(partition, offset, reason),
                    Stream::Logistics => self.logistics.record_invalid(partition, offset, reason),
                    Stream::Fx => {
                        self.fx_last.insert(partition, offset);
                        self.dead_letter(msg, reason);
                        return Ok(());
                    }
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
                self.batch.push_fx(&q, offset);
                self.fx_last.insert(partition, offset);
                Vec::new()
            }
        };
        for reason in rejections {
            self.dead_letter(msg, reason);
        }
        Ok(())
    }

    fn dead_letter(&mut self, msg: &BorrowedMessage<'_>, reason: Reason) {
        metrics::counter!(tm::DLQ_TOTAL, "topic" => msg.topic().to_string(), "reason" => reason.as_str()).increment(1);
        self.dead.push(DeadLetter {
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
            topic: msg.topic().to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
            reason: reason.as_str(),
        });
    }

    /// Moves an engine's output into the batch; returns its rejections.
    fn drain(&mut self, stream: Stream) -> Vec<Reason> {
        let pending = match stream {
            Stream::Payments => self.payments.has_output(),
            Stream::Iot => self.iot.has_output(),
            Stream::Logistics => self.logistics.has_output(),
            Stream::Fx => false,
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
            Stream::Fx => return Vec::new(),
        };
        for l in ledger {
            self.batch.push_ledger(&topic, l);
        }
        rejections.into_iter().map(|r| r.reason).collect()
    }

    /// The offsets (with checkpoint metadata) of every active partition.
    fn offsets(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (stream, partition) in &self.active {
            let topic = &self.topics[stream];
            let (offset, meta) = match stream {
                Stream::Payments => checkpoint(self.payments.checkpoint(*partition)),
                Stream::Iot => checkpoint(self.iot.checkpoint(*partition)),
                Stream::Logistics => checkpoint(self.logistics.checkpoint(*partition)),
                Stream::Fx => match self.fx_last.get(partition) {
                    Some(last) => (Some(last + 1), String::new()),
                    None => (None, String::new()),
                },
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

    /// Flush, write to ClickHouse until acknowledged, then produce the DLQ
    /// records and commit the offsets in one Kafka transaction.
    pub fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        self.payments.flush();
        self.iot.flush();
        self.logistics.flush();
        for s in [Stream::Payments, Stream::Iot, Stream::Logistics] {
            let rejections = self.drain(s);
            debug_assert!(rejections.is_empty(), "flush never rejects");
        }
        let batch = std::mem::take(&mut self.batch);
        let stats = self
            .rt
            .block_on(self.writer.write(&batch, &self.stop))
            .context("writing to ClickHouse")?;
        let acked_ms = tradewind_sim::clock::wall_now_ms();
        if !batch.is_empty() {
            metrics::histogram!(tm::SINK_BATCH_ROWS).record(batch.len() as f64);
            metrics::histogram!(tm::SINK_WRITE_SECONDS).record(stats.elapsed.as_secs_f64());
        }
        metrics::counter!(tm::SINK_RETRIES_TOTAL).increment(stats.retries as u64);
        for (stream, n) in std::mem::take(&mut self.consumed) {
            metrics::counter!(tm::CONSUMED_TOTAL, "topic" => stream.as_str()).increment(n);
        }
        let end_to_end = metrics::histogram!(tm::END_TO_END_SECONDS);
        for t in self.event_times.drain(..) {
            end_to_end.record((acked_ms - t).max(0) as f64 / 1000.0);
        }
        let pipeline = metrics::histogram!(tm::PIPELINE_SECONDS);
        for t in self.record_times.drain(..) {
            let ms = (acked_ms - t).max(0);
            pipeline.record(ms as f64 / 1000.0);
            let _ = self.pipeline_latency.record(ms as u64);
        }

        self.publish_watermark_lag(acked_ms);

        let tpl = self.offsets()?;
        if tpl.count() > 0 || !self.dead.is_empty() {
            let group = consumer
                .group_metadata()
                .ok_or_else(|| anyhow!("the consumer has no group metadata"))?;
            self.dlq.begin_transaction()?;
            for d in self.dead.drain(..) {
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "reason",
                        value: Some(d.reason),
                    })
                    .insert(Header {
                        key: "source.topic",
                        value: Some(&d.topic),
                    })
                    .insert(Header {
                        key: "source.partition",
                        value: Some(&d.partition.to_string()),
                    })
                    .insert(Header {
                        key: "source.offset",
                        value: Some(&d.offset.to_string()),
                    });
                let mut rec = BaseRecord::<Vec<u8>, Vec<u8>>::to(&self.dlq_topic)
                    .payload(&d.payload)
                    .headers(headers);
                if let Some(k) = &d.key {
                    rec = rec.key(k);
                }
                self.dlq
                    .send(rec)
                    .map_err(|(e, _)| e)
                    .context("queueing a DLQ record")?;
            }
            self.dlq
                .send_offsets_to_transaction(&tpl, &group, Duration::from_secs(30))?;
            self.dlq
                .commit_transaction(Duration::from_secs(30))
                .context("committing the Kafka transaction")?;
            self.committed.record(&tpl);
        }
        self.last_commit = Instant::now();
        Ok(())
    }

    fn publish_watermark_lag(&self, now_ms: i64) {
        for (stream, partition) in &self.active {
            let wm = match stream {
                Stream::Payments => self.payments.watermark(*partition),
                Stream::Iot => self.iot.watermark(*partition),
                Stream::Logistics => self.logistics.watermark(*partition),
                Stream::Fx => None,
            };
            if let Some(wm) = wm {
                let labels = [
                    ("topic", self.topics[stream].clone()),
                    ("partition", partition.to_string()),
                ];
                metrics::gauge!(tm::WATERMARK_LAG_SECONDS, &labels)
                    .set((now_ms - wm) as f64 / 1000.0);
            }
        }
    }

    /// Forgets partitions that were revoked (after [`Pipeline::commit`]).
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
                Stream::Fx => {
                    self.fx_last.remove(&p);
                }
            }
        }
    }
}

fn checkpoint(cp: Option<Checkpoint>) -> (Option<i64>, String) {
    match cp {
        Some(cp) => (Some(cp.restart_offset), cp.to_metadata()),
        None => (None, String::new()),
    }
}
