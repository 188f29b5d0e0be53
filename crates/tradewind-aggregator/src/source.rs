//! The Kafka side of a member: the consumer, its rebalances and the poll
//! loop that feeds records into the [`Pipeline`] and commits through the
//! [`Committer`].
//!
//! The loop never stops polling while the member is healthy in Kafka's
//! eyes. When ClickHouse does not acknowledge a write, the assigned
//! partitions are paused and the write is retried on a back-off schedule
//! while polling goes on: rebalances, statistics and heartbeats are
//! served, so the member stays in the group through an outage of any
//! length and holds no more than its pending batch plus librdkafka's
//! bounded prefetch queue.
//!
//! Rebalances are eager: before partitions are revoked, what they produced
//! is written and committed; if that cannot be done (ClickHouse down, the
//! assignment already lost to another member) the member forgets every
//! uncommitted thing instead, exactly as a crash would, and the partitions'
//! next owner replays them from the committed offsets.
//!
//! A newly assigned partition is restored ([`crate::restore`]) before its
//! first record is folded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Message, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tradewind_sink::Backoff;

use crate::commit::{Committer, Fault, Outcome};
use crate::health::{Health, State};
use crate::lag::{self, Assigned, Committed};
use crate::pipeline::{Pipeline, Record};
use crate::quiet::Quiet;
use crate::restore;
use crate::settings::Settings;
use crate::telemetry as tm;

/// The state one consumer session works on.
pub struct Member {
    pub pipeline: Pipeline,
    pub committer: Committer,
}

impl Member {
    fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        probe: bool,
        handover: bool,
    ) -> Result<Outcome, Fault> {
        self.committer.commit(
            &mut self.pipeline,
            consumer.group_metadata(),
            probe,
            handover,
        )
    }
}

pub(crate) fn lock(m: &Mutex<Member>) -> MutexGuard<'_, Member> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The consumer's context: rebalance hooks and statistics.
pub struct Session {
    pub member: Arc<Mutex<Member>>,
    pub health: Arc<Health>,
    pub committed: Arc<Committed>,
    assigned: Assigned,
    /// A fault met inside a callback, for the loop to act on.
    fault: Mutex<Option<Fault>>,
    /// Set before the consumer is closed for a recovery: revoke without
    /// committing.
    discard: AtomicBool,
    assignment_changed: AtomicBool,
    quiet: Quiet,
}

impl Session {
    pub fn new(member: Member, health: Arc<Health>, committed: Arc<Committed>) -> Self {
        Self {
            member: Arc::new(Mutex::new(member)),
            health,
            committed,
            assigned: Assigned::default(),
            fault: Mutex::new(None),
            discard: AtomicBool::new(false),
            assignment_changed: AtomicBool::new(false),
            quiet: Quiet::default(),
        }
    }

    /// Revoke from now on without committing: the member is being rebuilt.
    pub fn discard_on_close(&self) {
        self.discard.store(true, Ordering::Relaxed);
    }

    fn take_fault(&self) -> Option<Fault> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl ClientContext for Session {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.quiet.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.quiet.error(&error, reason);
    }

    fn stats(&self, statistics: rdkafka::statistics::Statistics) {
        // Paused partitions' statistics are stale; the loop publishes them.
        if self.health.state() != State::SinkBlocked {
            lag::publish(&statistics, &self.committed, &self.assigned);
        }
    }
}

impl ConsumerContext for Session {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let mut m = lock(&self.member);
        let lost = consumer.assignment_lost();
        let committed = if self.discard.load(Ordering::Relaxed) {
            false
        } else if lost {
            tracing::warn!("assignment lost (the group moved on without this member); forgetting uncommitted state");
            false
        } else {
            match m.commit(consumer, false, true) {
                Ok(Outcome::Committed) => true,
                Ok(Outcome::SinkDown(e)) => {
                    tracing::warn!(error = %e, "ClickHouse is down at a rebalance; forgetting uncommitted state, the next owner replays it");
                    false
                }
                Err(f) => {
                    tracing::warn!(fault = ?f, "commit before revocation failed");
                    *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
                    false
                }
            }
        };
        if committed {
            let revoked: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            m.pipeline
                .revoke(revoked.iter().map(|(t, p)| (t.as_str(), *p)));
        } else {
            m.pipeline.discard();
            m.committer.forget();
        }
        self.committed.forget(tpl);
        self.assigned.clear();
        tracing::info!(partitions = tpl.count(), "partitions revoked");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                lock(&self.member)
                    .committer
                    .state_topic_mut()
                    .forget_cache();
                self.assigned.set(tpl);
                self.assignment_changed.store(true, Ordering::Relaxed);
                tracing::info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Creates the group member's consumer. With static membership its
/// `group.instance.id` is the member's identity, so a restart within the
/// session timeout gets its partitions back without a rebalance.
pub fn consumer(
    cfg: &Settings,
    instance_id: &str,
    session: Session,
) -> Result<BaseConsumer<Session>, Fault> {
    let a = &cfg.aggregator;
    let mut c = cfg.kafka.consumer_config();
    c.set("group.id", &a.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set(
            "statistics.interval.ms",
            a.stats_interval.as_millis().to_string(),
        )
        .set(
            "session.timeout.ms",
            a.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (a.session_timeout.as_millis() / 4).max(100).to_string(),
        );
    if a.static_membership {
        c.set("group.instance.id", instance_id);
    }
    c.create_with_context(session)
        .map_err(|e| Fault::from_kafka("creating the Kafka consumer", &e))
}

/// How a session ended without a fault.
pub enum Ended {
    /// Stopped (signal or idle) after a final commit.
    Done,
    /// Stopped while ClickHouse was still down: the final commit could not
    /// be made, and the next member replays from the last one.
    SinkDownAtStop(String),
}

fn handle(
    consumer: &BaseConsumer<Session>,
    m: &mut Member,
    msg: &BorrowedMessage<'_>,
) -> Result<(), Fault> {
    let Some(stream) = m.pipeline.stream_of(msg.topic()) else {
        return Ok(());
    };
    let partition = msg.partition();
    if m.pipeline.needs_restore(stream, partition) {
        restore::restore(consumer, m, stream, msg.topic(), partition)?;
    } else if let Some(next) = m.pipeline.skips_ahead(stream, partition, msg.offset()) {
        restore::deleted_under_us(consumer, m, stream, msg.topic(), partition, next)?;
    }
    if m.pipeline.is_refused(stream, partition) {
        return Ok(());
    }
    m.pipeline.handle(Record {
        stream,
        partition,
        offset: msg.offset(),
        record_time_ms: msg
            .timestamp()
            .to_millis()
            .unwrap_or_else(crate::wall_now_ms),
        key: msg.key(),
        payload: msg.payload().unwrap_or_default(),
    });
    Ok(())
}

/// Pauses or resumes every assigned partition; refused ones stay paused.
fn set_paused(
    consumer: &BaseConsumer<Session>,
    paused: bool,
    pipeline: &Pipeline,
) -> Result<(), Fault> {
    let assigned = consumer
        .assignment()
        .map_err(|e| Fault::from_kafka("reading the assignment", &e))?;
    let r = if paused {
        consumer.pause(&assigned)
    } else {
        let mut tpl = TopicPartitionList::new();
        for e in assigned.elements() {
            let refused = pipeline
                .stream_of(e.topic())
                .is_some_and(|s| pipeline.is_refused(s, e.partition()));
            if !refused {
                tpl.add_partition(e.topic(), e.partition());
            }
        }
        consumer.resume(&tpl)
    };
    r.map_err(|e| Fault::from_kafka("pausing or resuming partitions", &e))
}

/// Snapshot size and age and refused partitions, refreshed so their gauges
/// do not lapse.
fn publish_state(m: &Member, now: Instant) {
    for (topic, partition, age, bytes) in m.pipeline.snapshot_ages(now) {
        let labels = [
            ("topic", topic.to_string()),
            ("partition", partition.to_string()),
        ];
        metrics::gauge!(tm::SNAPSHOT_AGE_SECONDS, &labels).set(age);
        metrics::gauge!(tm::SNAPSHOT_BYTES, &labels).set(bytes as f64);
    }
    for (topic, partition) in m.pipeline.refused() {
        let labels = [
            ("topic", topic.to_string()),
            ("partition", partition.to_string()),
        ];
        metrics::gauge!(tm::PARTITION_REFUSED, &labels).set(1.0);
    }
}

fn publish_watermark_lag(m: &Member) {
    let now_ms = crate::wall_now_ms();
    for (topic, partition, wm) in m.pipeline.watermarks() {
        let labels = [
            ("topic", topic.to_string()),
            ("partition", partition.to_string()),
        ];
        metrics::gauge!(tm::WATERMARK_LAG_SECONDS, &labels).set((now_ms - wm) as f64 / 1000.0);
    }
}

/// The poll loop's own state: the sink back-off and when things were last
/// done.
struct Loop<'a> {
    consumer: &'a BaseConsumer<Session>,
    backoff: Backoff,
    retry_at: Instant,
    last_publish: Instant,
    last_warning: Option<Instant>,
    last_lag: Instant,
    stats_every: Duration,
}

/// Consumes until stopped, idle (with `exit_when_idle`), or a fault.
pub fn run(
    consumer: &BaseConsumer<Session>,
    stats_interval: Duration,
    topics: &[String],
    exit_when_idle: Option<Duration>,
    token: &CancellationToken,
) -> Result<Ended, Fault> {
    let ctx = consumer.context();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .map_err(|e| Fault::from_kafka("subscribing", &e))?;
    ctx.health.set(State::Running);
    let now = Instant::now();
    let mut l = Loop {
        consumer,
        backoff: Backoff::new(lock(&ctx.member).committer.sink()),
        retry_at: now,
        last_publish: now,
        last_warning: None,
        last_lag: now,
        stats_every: stats_interval.max(Duration::from_secs(1)),
    };
    // The clock is read once per CLOCK_EVERY records (and whenever a poll
    // comes back empty): reading it per record cost more than decoding.
    const CLOCK_EVERY: u32 = 256;
    let mut now = now;
    let mut unclocked = 0u32;
    let mut last_record = now;
    loop {
        // Checked with the clock: the token's check takes a lock.
        if unclocked == 0 && token.is_cancelled() {
            break;
        }
        if exit_when_idle.is_some_and(|d| now.saturating_duration_since(last_record) >= d) {
            break;
        }
        let polled = consumer.poll(Duration::from_millis(100));
        unclocked += 1;
        if polled.is_none() || unclocked >= CLOCK_EVERY {
            now = Instant::now();
            unclocked = 0;
        }
        let caught_up = polled.is_none();
        if let Some(p) = polled {
            if l.take(p, now)? {
                last_record = now;
            }
        }
        if let Some(f) = ctx.take_fault() {
            return Err(f);
        }
        l.commit_if_due(now, caught_up)?;
        l.publish(now);
    }
    l.final_commit()
}

impl Loop<'_> {
    fn ctx(&self) -> &Session {
        self.consumer.context()
    }

    /// Hands a polled record to the pipeline, or deals with a consumer
    /// error; true if it was a record.
    fn take(
        &mut self,
        polled: Result<BorrowedMessage<'_>, KafkaError>,
        now: Instant,
    ) -> Result<bool, Fault> {
        match polled {
            Ok(msg) => {
                handle(self.consumer, &mut lock(&self.ctx().member), &msg)?;
                Ok(true)
            }
            Err(KafkaError::MessageConsumptionFatal(code)) => {
                let detail = self
                    .consumer
                    .client()
                    .fatal_error()
                    .map(|(c, s)| format!("{c:?}: {s}"))
                    .unwrap_or_else(|| format!("{code:?}"));
                Err(Fault::from_kafka(
                    &format!("fatal consumer error ({detail})"),
                    &KafkaError::MessageConsumptionFatal(code),
                ))
            }
            // librdkafka reconnects by itself; say so now and then, not
            // once per poll.
            Err(e) => {
                if self
                    .last_warning
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
                {
                    tracing::warn!(error = %e, "Kafka consumer error; librdkafka keeps retrying");
                    self.last_warning = Some(now);
                }
                Ok(false)
            }
        }
    }

    /// Commits when the batch is due, or retries a blocked sink when its
    /// back-off has passed; pauses and resumes the partitions accordingly.
    ///
    /// Due means: the rows reached the sink's row or byte limit, or
    /// `flush_interval` has passed since the last commit, or the member has
    /// `caught_up` (a poll found nothing) with records folded since the
    /// last commit and at least a quarter of `flush_interval` gone, so the
    /// end of a burst is visible without waiting out the interval.
    fn commit_if_due(&mut self, now: Instant, caught_up: bool) -> Result<(), Fault> {
        let consumer = self.consumer;
        let ctx = consumer.context();
        let blocked = ctx.health.state() == State::SinkBlocked;
        let mut m = lock(&ctx.member);
        let outcome = if blocked {
            if now < self.retry_at {
                None
            } else {
                Some(m.commit(consumer, true, false)?)
            }
        } else {
            let m = &mut *m;
            let cfg = m.committer.sink();
            let full = m.pipeline.full(cfg);
            let since = m.committer.since_commit(now);
            let due = full
                || since >= cfg.flush_interval
                || (caught_up && since >= cfg.flush_interval / 4 && m.pipeline.folded_any());
            m.committer
                .step(&mut m.pipeline, || consumer.group_metadata(), due, full)?
        };
        match outcome {
            None => {}
            Some(Outcome::Committed) if blocked => {
                set_paused(self.consumer, false, &m.pipeline)?;
                self.backoff.reset();
                ctx.health.set(State::Running);
                tracing::info!("ClickHouse acknowledged the pending rows; partitions resumed");
            }
            Some(Outcome::Committed) => {}
            Some(Outcome::SinkDown(e)) => {
                if !blocked {
                    set_paused(self.consumer, true, &m.pipeline)?;
                    ctx.health.set(State::SinkBlocked);
                }
                let delay = self.backoff.next_delay();
                self.retry_at = Instant::now() + delay;
                tracing::warn!(error = %e, retry_in = ?delay, "ClickHouse write failed; partitions paused, retrying");
            }
        }
        // Partitions assigned while blocked start paused too.
        if ctx.health.state() == State::SinkBlocked
            && ctx.assignment_changed.swap(false, Ordering::Relaxed)
        {
            set_paused(self.consumer, true, &m.pipeline)?;
        }
        Ok(())
    }

    /// Once a second: the member's state, watermark lag, and (while the
    /// partitions are paused) consumer lag from the broker.
    fn publish(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_publish) < Duration::from_secs(1) {
            return;
        }
        let consumer = self.consumer;
        let ctx = consumer.context();
        ctx.health.publish();
        {
            let m = lock(&ctx.member);
            publish_watermark_lag(&m);
            publish_state(&m, now);
        }
        self.last_publish = now;
        if ctx.health.state() == State::SinkBlocked
            && now.saturating_duration_since(self.last_lag) >= self.stats_every
        {
            lag::publish_from_broker(self.consumer, &ctx.committed);
            self.last_lag = now;
        }
    }

    /// The last commit before leaving the group.
    fn final_commit(self) -> Result<Ended, Fault> {
        let mut m = lock(&self.ctx().member);
        match m.commit(self.consumer, false, true)? {
            Outcome::Committed => {
                let h = &m.committer.latency;
                tracing::info!(
                    records = h.len(),
                    p50_ms = h.value_at_quantile(0.5),
                    p99_ms = h.value_at_quantile(0.99),
                    max_ms = h.max(),
                    "committed; leaving the group (pipeline latency: Kafka record time to ClickHouse ack)"
                );
                Ok(Ended::Done)
            }
            Outcome::SinkDown(e) => Ok(Ended::SinkDownAtStop(e)),
        }
    }
}
