//! `tradewind aggregate`: the service. A consumer-group member reads the
//! payments, IoT, logistics and FX topics, folds records into the core
//! ([`pipeline`]), writes rows to ClickHouse and commits offsets only after
//! ClickHouse has acknowledged them, as DESIGN's effectively-once protocol
//! says. Run as many copies as there are partitions to share.
//!
//! Threads: the Kafka loop runs on a blocking thread (librdkafka calls are
//! synchronous, and rebalance callbacks run inside `poll`); ClickHouse
//! writes run on the tokio runtime through its handle. While a write is
//! being retried the loop does not poll, so a slow or absent ClickHouse
//! stops fetching instead of growing memory.

mod decode;
mod lag;
mod pipeline;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;
use tradewind_kafka::admin;
use tradewind_sink::Writer;

use self::pipeline::Pipeline;
use crate::config::AppConfig;
use crate::telemetry;

#[derive(Debug, Clone, clap::Args)]
pub struct AggregateArgs {
    /// Exit (after a final commit) once this member holds partitions and no
    /// record has arrived for this long; for batch runs and benchmarks. By default the service runs until
    /// SIGINT or SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub exit_when_idle: Option<Duration>,
}

/// Rebalance hooks: before partitions are revoked, write and commit what
/// they produced, then drop their state. Newly assigned partitions restore
/// lazily, from their committed checkpoint, on their first record.
struct Rebalancer {
    pipeline: Arc<Mutex<Pipeline>>,
    failure: Mutex<Option<String>>,
    /// Partitions currently assigned to this member.
    assigned: AtomicUsize,
    committed: Arc<lag::Committed>,
}

impl ClientContext for Rebalancer {
    fn stats(&self, statistics: rdkafka::statistics::Statistics) {
        lag::publish(&statistics, &self.committed);
    }
}

impl ConsumerContext for Rebalancer {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut p = self.pipeline.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = p.commit(consumer) {
                tracing::error!(error = format!("{e:#}"), "commit before revocation failed");
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{e:#}"));
            }
            p.revoke(tpl);
            self.committed.forget(tpl);
            self.assigned.store(0, Ordering::Relaxed);
            tracing::info!(partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.assigned.store(tpl.count(), Ordering::Relaxed);
            tracing::info!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

pub async fn run(cfg: &AppConfig, args: AggregateArgs) -> Result<()> {
    let handle = telemetry::install_recorder()?;
    let ready = Arc::new(AtomicBool::new(false));
    let addr = cfg
        .aggregator
        .listen
        .parse()
        .with_context(|| format!("aggregator.listen {:?}", cfg.aggregator.listen))?;
    let listener = telemetry::bind(addr).await?;
    let server = tokio::spawn(telemetry::serve(listener, handle, ready.clone()));

    admin::ensure_topics(&cfg.kafka, &cfg.kafka.all_topics())
        .await
        .context("preparing Kafka topics")?;
    let conn = crate::cmd::migrate::connected_and_migrated(cfg).await?;
    let writer = Writer::new(conn.client.clone(), cfg.aggregator.sink.clone());

    let token = CancellationToken::new();
    let signals = token.clone();
    // Raised with the token, so a ClickHouse write that is retrying gives up
    // instead of holding shutdown back.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down: draining, writing, committing");
        stop_on_signal.store(true, Ordering::Relaxed);
        signals.cancel();
    });

    let cfg2 = cfg.clone();
    let rt = tokio::runtime::Handle::current();
    let result =
        tokio::task::spawn_blocking(move || consume(&cfg2, &args, writer, rt, token, stop, ready))
            .await;
    server.abort();
    result.context("consumer thread")?
}

fn consume(
    cfg: &AppConfig,
    args: &AggregateArgs,
    writer: Writer,
    rt: tokio::runtime::Handle,
    token: CancellationToken,
    stop: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
) -> Result<()> {
    let committed = Arc::new(lag::Committed::default());
    let pipeline = Arc::new(Mutex::new(Pipeline::new(
        cfg,
        writer,
        rt,
        stop.clone(),
        committed.clone(),
    )?));
    let topics = pipeline
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .topic_names();
    let ctx = Rebalancer {
        pipeline: pipeline.clone(),
        failure: Mutex::new(None),
        assigned: AtomicUsize::new(0),
        committed,
    };
    let consumer: BaseConsumer<Rebalancer> = cfg
        .kafka
        .client_config()
        .set("group.id", &cfg.aggregator.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set(
            "statistics.interval.ms",
            cfg.aggregator.stats_interval.as_millis().to_string(),
        )
        .set(
            "session.timeout.ms",
            cfg.aggregator.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (cfg.aggregator.session_timeout.as_millis() / 4)
                .max(100)
                .to_string(),
        )
        .create_with_context(ctx)
        .context("creating the Kafka consumer")?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).context("subscribing")?;
    ready.store(true, Ordering::Relaxed);
    tracing::info!(group = %cfg.aggregator.group_id, topics = ?names, "aggregating");

    // The clock is read once per CLOCK_EVERY records (and whenever a poll
    // comes back empty): reading it per record cost more than decoding.
    const CLOCK_EVERY: u32 = 256;
    let mut now = Instant::now();
    let mut unclocked = 0u32;
    let mut last_record = now;
    loop {
        // Checked with the clock: the token's check takes a lock.
        if unclocked == 0 && token.is_cancelled() {
            break;
        }
        if args
            .exit_when_idle
            .is_some_and(|d| now.saturating_duration_since(last_record) >= d)
        {
            break;
        }
        let polled = consumer.poll(Duration::from_millis(100));
        unclocked += 1;
        if polled.is_none() || unclocked >= CLOCK_EVERY {
            now = Instant::now();
            unclocked = 0;
        }
        match polled {
            Some(Ok(msg)) => {
                last_record = now;
                pipeline
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .handle(&consumer, &msg)?;
            }
            Some(Err(e)) => tracing::warn!(error = %e, "Kafka consumer error"),
            None => {}
        }
        if let Some(f) = consumer
            .context()
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            bail!("giving up after a failed commit: {f}");
        }
        let mut p = pipeline.lock().unwrap_or_else(|e| e.into_inner());
        if p.due(now) {
            p.commit(&consumer)?;
            metrics::counter!(telemetry::COMMITS_TOTAL).increment(1);
        }
    }
    let mut p = pipeline.lock().unwrap_or_else(|e| e.into_inner());
    p.commit(&consumer).context("final commit")?;
    let h = &p.pipeline_latency;
    tracing::info!(
        records = h.len(),
        p50_ms = h.value_at_quantile(0.5),
        p99_ms = h.value_at_quantile(0.99),
        max_ms = h.max(),
        "committed; leaving the group (pipeline latency: Kafka record time to ClickHouse ack)"
    );
    drop(p);
    Ok(())
}
