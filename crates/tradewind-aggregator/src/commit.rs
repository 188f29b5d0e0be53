//! The effectively-once commit: flush the engines, write the batch to
//! ClickHouse until acknowledged, then in one Kafka transaction produce the
//! pending DLQ records and the state snapshots due ([`crate::state`]), and
//! commit each partition's restart offset with its checkpoint as metadata.
//! DLQ records, snapshots and offsets land together or not at all, so
//! after any failure the replay re-sends exactly the DLQ records that
//! never became visible, and a committed offset always has its snapshot.
//!
//! In the poll loop the write runs in the background ([`Committer::step`],
//! [`crate::cut`]): the loop folds the next records while ClickHouse
//! writes the last cut's rows, and that cut's transaction follows the
//! acknowledgement. Rebalances, stops and retries after an outage run the
//! protocol to the end before going on ([`Committer::commit`]).
//!
//! A commit never blocks on a failing ClickHouse: one write attempt either
//! succeeds or reports [`Outcome::SinkDown`], and the caller keeps polling
//! Kafka and tries again later (see [`crate::source`]). A failed Kafka
//! transaction is aborted and reported as a [`Fault`]; the member then
//! recovers as after a crash.
//!
//! The transactional id is `tradewind-<group>-<instance id>`: stable across
//! restarts, so a successor's `init_transactions` fences its predecessor's
//! open transaction at once instead of leaving `read_committed` readers of
//! the DLQ waiting for the transaction timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tradewind_kafka::KafkaConfig;
use tradewind_sink::Writer;

use crate::cut::Cut;
use crate::dlq::{DeadLetter, DlqLimits, PipelineId};
pub use crate::fault::Fault;
use crate::health::Health;
use crate::lag::Committed;
use crate::pipeline::{PartitionOffset, Pipeline};
use crate::quiet::ProducerQuiet;
use crate::state::{StateRecord, StateTopic};
use crate::telemetry as tm;

/// Deadline of each step of the Kafka transaction. Long enough to ride
/// out a broker paused for a few seconds without a recovery.
const TXN_STEP: Duration = Duration::from_secs(30);
/// The broker aborts a transaction left open this long by a dead member
/// that no successor with the same identity replaced.
const TXN_TIMEOUT_MS: &str = "60000";

/// How a commit went when nothing failed on the Kafka side.
#[derive(Debug)]
pub enum Outcome {
    /// Rows written, DLQ records and offsets committed.
    Committed,
    /// ClickHouse did not acknowledge the batch; it stays pending.
    SinkDown(String),
}

pub type TxnProducer = ThreadedProducer<ProducerQuiet>;

/// Creates the DLQ producer and initialises its transactions, which also
/// fences any earlier producer with the same id and aborts its open
/// transaction.
pub fn transactional_producer(
    kafka: &KafkaConfig,
    txn_id: &str,
    limits: DlqLimits,
) -> Result<TxnProducer, Fault> {
    let producer: TxnProducer = kafka
        .producer_config()
        .set("transactional.id", txn_id)
        .set("transaction.timeout.ms", TXN_TIMEOUT_MS)
        .set("message.timeout.ms", "60000")
        .set("message.max.bytes", limits.producer_max.to_string())
        .create_with_context(ProducerQuiet::default())
        .map_err(|e| Fault::from_kafka("creating the DLQ producer", &e))?;
    // librdkafka asks for a producer id as soon as transactions are
    // initialised; asked before any broker connection is up, it tries
    // again only 500 ms later. A metadata request first brings a connection
    // up, so a member starts (and recovers) that much sooner. Whether the
    // broker answers is init_transactions' to report.
    let _ = producer.client().fetch_metadata(
        Some(&kafka.dlq_topic()),
        kafka.connect_timeout.min(Duration::from_secs(2)),
    );
    producer
        .init_transactions(kafka.connect_timeout)
        .map_err(|e| Fault::from_kafka("initialising Kafka transactions for the DLQ", &e))?;
    Ok(producer)
}

/// Where and as whom rejected records are dead-lettered.
#[derive(Debug, Clone)]
pub struct Dlq {
    pub topic: String,
    pub limits: DlqLimits,
    pub pipeline: PipelineId,
}

/// When partitions are snapshotted (see `aggregator.snapshot_*`).
#[derive(Debug, Clone)]
pub struct Snapshots {
    pub topic: StateTopic,
    /// `None`: no snapshots are written.
    pub every: Option<Duration>,
    pub max_replay: u64,
}

/// The I/O half of the protocol: the ClickHouse writer and the
/// transactional DLQ producer.
pub struct Committer {
    writer: Writer,
    rt: tokio::runtime::Handle,
    producer: TxnProducer,
    dlq: Dlq,
    snapshots: Snapshots,
    last_snapshot: Instant,
    committed: Arc<Committed>,
    health: Arc<Health>,
    last_commit: Instant,
    /// Kafka record time to ClickHouse acknowledgement, milliseconds.
    pub latency: hdrhistogram::Histogram<u64>,
    /// The cut whose write is under way or failed ([`crate::cut`]).
    cut: Option<Cut>,
}

impl Committer {
    pub fn new(
        writer: Writer,
        rt: tokio::runtime::Handle,
        producer: TxnProducer,
        dlq: Dlq,
        snapshots: Snapshots,
        committed: Arc<Committed>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            writer,
            rt,
            producer,
            dlq,
            snapshots,
            last_snapshot: Instant::now(),
            committed,
            health,
            last_commit: Instant::now(),
            latency: hdrhistogram::Histogram::new(3).expect("3 significant figures is valid"),
            cut: None,
        }
    }

    pub fn sink(&self) -> &tradewind_sink::SinkConfig {
        self.writer.config()
    }

    pub fn since_commit(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_commit)
    }

    pub fn state_topic(&self) -> &StateTopic {
        &self.snapshots.topic
    }

    pub fn state_topic_mut(&mut self) -> &mut StateTopic {
        &mut self.snapshots.topic
    }

    /// Runs the protocol to the end for everything `pipeline` holds: first
    /// lands the cut under way, then cuts the rest and lands it.
    ///
    /// With `probe`, an empty batch still has to reach ClickHouse (a ping)
    /// to count as acknowledged: that is how a blocked sink learns it is
    /// back. With `handover` (a rebalance or a stop), every partition whose
    /// restart a snapshot would shorten is snapshotted, so its next owner
    /// restores instead of replaying.
    pub fn commit(
        &mut self,
        pipeline: &mut Pipeline,
        group: Option<ConsumerGroupMetadata>,
        probe: bool,
        handover: bool,
    ) -> Result<Outcome, Fault> {
        if self.cut.is_some() {
            if let Outcome::SinkDown(e) = self.land(pipeline, group.as_ref(), probe)? {
                return Ok(Outcome::SinkDown(e));
            }
        }
        self.cut = Some(self.take_cut(pipeline, handover));
        self.land(pipeline, group.as_ref(), probe)
    }

    /// The poll loop's commit, which never waits for ClickHouse unless it
    /// must: lands the cut under way once its write has finished (or waits
    /// for it when `full`: the next batch has reached the sink's limits),
    /// then, when `due`, cuts the next batch and starts its write in the
    /// background. `None`: nothing landed.
    pub fn step(
        &mut self,
        pipeline: &mut Pipeline,
        group: impl Fn() -> Option<ConsumerGroupMetadata>,
        due: bool,
        full: bool,
    ) -> Result<Option<Outcome>, Fault> {
        let mut landed = None;
        if let Some(cut) = &self.cut {
            if cut.in_flight() && !full {
                return Ok(None);
            }
            match self.land(pipeline, group().as_ref(), false)? {
                Outcome::Committed => landed = Some(Outcome::Committed),
                down => return Ok(Some(down)),
            }
        }
        if !due {
            return Ok(landed);
        }
        let mut cut = self.take_cut(pipeline, false);
        if cut.written.batch.is_empty() {
            // Nothing for ClickHouse: the transaction goes at once.
            self.cut = Some(cut);
            return self.land(pipeline, group().as_ref(), false).map(Some);
        }
        cut.start(&self.writer, &self.rt);
        self.cut = Some(cut);
        Ok(landed)
    }

    /// Drops a cut still under way, as a crash would: its rows may still
    /// land (rows are idempotent), its offsets never commit.
    pub fn forget(&mut self) {
        self.cut = None;
    }

    /// Everything the next commit carries, taken from `pipeline` at once.
    fn take_cut(&mut self, pipeline: &mut Pipeline, handover: bool) -> Cut {
        pipeline.flush();
        let written = pipeline.take_written();
        // Snapshots first: they move the offsets' restart points. Those of
        // a failed write come first, so a newer one of the same partition
        // wins.
        let mut state = pipeline.take_carried_state();
        state.append(&mut self.snapshot(pipeline, handover));
        let offsets = pipeline.offsets();
        let dead = pipeline.take_dead();
        self.last_commit = Instant::now();
        Cut::new(written, dead, state, offsets)
    }

    /// Waits for the cut's write; once ClickHouse has acknowledged it,
    /// commits the cut's dead letters, snapshots and offsets in one Kafka
    /// transaction. A write that fails hands the cut back to `pipeline`,
    /// where everything stays pending for the next attempt.
    fn land(
        &mut self,
        pipeline: &mut Pipeline,
        group: Option<&ConsumerGroupMetadata>,
        probe: bool,
    ) -> Result<Outcome, Fault> {
        let cut = self.cut.as_mut().expect("a cut to land");
        match cut.wait(&self.writer, &self.rt, probe) {
            Ok(None) => {}
            Ok(Some(stats)) => {
                metrics::histogram!(tm::SINK_WRITE_SECONDS).record(stats.elapsed.as_secs_f64());
            }
            Err(e) => {
                let cause = std::error::Error::source(&e)
                    .map(|c| format!("{e}: {c}"))
                    .unwrap_or_else(|| e.to_string());
                if e.is_fatal() {
                    metrics::counter!(tm::SINK_FATAL_ERRORS_TOTAL).increment(1);
                    return Err(Fault::Operator(format!(
                        "ClickHouse refused the write ({cause}); the schema or the credentials are wrong"
                    )));
                }
                // Counted as it happens, so an outage shows at once.
                metrics::counter!(tm::SINK_RETRIES_TOTAL).increment(1);
                let (written, dead, state) = self.cut.take().expect("checked above").into_parts();
                pipeline.uncut(written, dead, state);
                return Ok(Outcome::SinkDown(cause));
            }
        }
        let mut cut = self.cut.take().expect("checked above");
        self.health.wrote();
        cut.written
            .acknowledged(crate::wall_now_ms(), &mut self.latency);
        let tpl = to_list(&cut.offsets)
            .map_err(|e| Fault::Recover(format!("building the offsets to commit: {e}")))?;
        let dead = std::mem::take(&mut cut.dead);
        if tpl.count() > 0 || !dead.is_empty() {
            let group = group.ok_or_else(|| {
                Fault::Recover("the consumer has no group metadata (not in the group)".into())
            })?;
            self.transact(dead, &cut.state, &tpl, group)?;
            self.committed.record(&tpl);
        }
        if let Some(buffers) = cut.into_buffers() {
            pipeline.recycle(buffers);
        }
        metrics::counter!(tm::COMMITS_TOTAL).increment(1);
        Ok(Outcome::Committed)
    }

    /// The snapshot records due at this commit; notes them in `pipeline`
    /// so its offsets start after them.
    fn snapshot(&mut self, pipeline: &mut Pipeline, handover: bool) -> Vec<StateRecord> {
        let Some(every) = self.snapshots.every else {
            return Vec::new();
        };
        let all = handover || self.last_snapshot.elapsed() >= every;
        let mut records = Vec::new();
        for p in pipeline.take_snapshots(all, self.snapshots.max_replay) {
            let started = Instant::now();
            let (mut recs, bytes) =
                self.snapshots
                    .topic
                    .records(p.stream, p.partition, &p.state, p.previous_chunks);
            let chunks = recs.iter().filter(|r| r.payload.is_some()).count() as u32;
            pipeline.snapshot_taken(p.stream, p.partition, p.state.last_offset, bytes, chunks);
            records.append(&mut recs);
            metrics::histogram!(tm::SNAPSHOT_SECONDS).record(started.elapsed().as_secs_f64());
            let labels = [
                ("topic", pipeline.topic_of(p.stream).to_string()),
                ("partition", p.partition.to_string()),
            ];
            metrics::counter!(tm::SNAPSHOT_WRITTEN_BYTES_TOTAL, &labels).increment(bytes as u64);
        }
        if all {
            self.last_snapshot = Instant::now();
        }
        records
    }

    /// Produces `dead` and `state` and commits `offsets` in one Kafka
    /// transaction; aborts it on any failure.
    fn transact(
        &self,
        dead: Vec<DeadLetter>,
        state: &[StateRecord],
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Fault> {
        let result = self.try_transact(&dead, state, offsets, group);
        if let Err(Fault::Recover(_)) = &result {
            if let Err(e) = self.producer.abort_transaction(Duration::from_secs(5)) {
                tracing::debug!(error = %e, "aborting the failed transaction");
            }
        }
        result
    }

    fn try_transact(
        &self,
        dead: &[DeadLetter],
        state: &[StateRecord],
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Fault> {
        let p = &self.producer;
        p.begin_transaction()
            .map_err(|e| Fault::from_kafka("beginning a Kafka transaction", &e))?;
        for d in dead {
            let (headers, payload) = d.to_parts(self.dlq.limits.record_budget, &self.dlq.pipeline);
            let mut rec = BaseRecord::<Vec<u8>, [u8]>::to(&self.dlq.topic)
                .payload(payload)
                .headers(headers);
            if let Some(k) = &d.key {
                rec = rec.key(k);
            }
            send_waiting(p, rec, "queueing a DLQ record")?;
        }
        for r in state {
            let mut rec = BaseRecord::<str, [u8]>::to(&self.snapshots.topic.topic)
                .key(&r.key)
                .partition(r.partition);
            if let Some(payload) = &r.payload {
                rec = rec.payload(payload);
            }
            send_waiting(p, rec, "queueing a state snapshot record")?;
        }
        p.send_offsets_to_transaction(offsets, group, TXN_STEP)
            .map_err(|e| Fault::from_kafka("adding offsets to the Kafka transaction", &e))?;
        p.commit_transaction(TXN_STEP)
            .map_err(|e| Fault::from_kafka("committing the Kafka transaction", &e))
    }
}

/// Queues one record of the open transaction. A full local queue (a large
/// snapshot can hold more than `queue.buffering.max.kbytes`) is no fault:
/// the producer's thread ships and acknowledges what is queued, so this
/// waits for room, up to [`QUEUE_WAIT`]; only then, or on any other
/// error, is it a fault.
fn send_waiting<K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
    p: &TxnProducer,
    mut rec: BaseRecord<'_, K, P>,
    what: &str,
) -> Result<(), Fault> {
    let started = Instant::now();
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if started.elapsed() < QUEUE_WAIT =>
            {
                rec = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(Fault::from_kafka(what, &e)),
        }
    }
}

/// How long a transaction's record may wait for room in the local queue:
/// the producer's `message.timeout.ms`, after which queued records fail
/// anyway.
const QUEUE_WAIT: Duration = Duration::from_secs(60);

/// The offsets to commit as Kafka's list, each with its checkpoint as
/// metadata.
pub fn to_list(
    offsets: &[PartitionOffset],
) -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for o in offsets {
        tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.offset))?;
        if let Some(mut e) = tpl.find_partition(&o.topic, o.partition) {
            e.set_metadata(o.metadata.clone());
        }
    }
    Ok(tpl)
}
