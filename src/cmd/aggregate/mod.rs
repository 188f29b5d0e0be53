//! `tradewind aggregate`: the service. A consumer-group member reads the
//! payments, IoT, logistics and FX topics, folds records into the core
//! ([`pipeline`]), writes rows to ClickHouse and commits offsets only after
//! ClickHouse has acknowledged them ([`commit`]), as the effectively-once
//! protocol says. Run as many copies as there are partitions to share.
//!
//! The stages: [`source`] (consumer, poll loop, rebalances), [`decode`],
//! [`pipeline`] (the engines and what waits for the next commit), [`dlq`],
//! [`commit`], [`lag`] and [`health`].
//!
//! A member heals itself. [`supervise`] runs one consumer session after
//! another: when Kafka fails under a session (broker gone or paused, a
//! failed transaction, the member dropped from the group) it aborts the
//! transaction, forgets everything uncommitted, re-creates the DLQ
//! producer and the consumer, and resumes from the committed offsets,
//! exactly as after a crash. It exits only for what an operator must fix
//! (configuration, authentication, authorisation, another process with
//! the same identity) and says what it is.
//!
//! Threads: the Kafka loop runs on a blocking thread (librdkafka calls are
//! synchronous, and rebalance callbacks run inside `poll`); ClickHouse
//! writes run on the tokio runtime through its handle.

mod commit;
mod decode;
mod dlq;
mod health;
mod lag;
mod pipeline;
mod quiet;
mod source;
mod validate;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;
use tradewind_kafka::admin;
use tradewind_sink::{Backoff, SinkConfig, Writer};

use self::commit::{Committer, Fault};
use self::dlq::DlqLimits;
use self::health::{Health, State};
use self::pipeline::Pipeline;
use self::source::{Ended, Member, Session};
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

/// Wall-clock time in Unix milliseconds.
pub(crate) fn wall_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn run(cfg: &AppConfig, args: AggregateArgs) -> Result<()> {
    let handle = telemetry::install_recorder(cfg.aggregator.stats_interval)?;
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
    let (conn, _) = tradewind_clickhouse::connect_and_migrate(&cfg.clickhouse)
        .await
        .context("preparing ClickHouse")?;
    let writer = Writer::new(conn.client.clone(), cfg.aggregator.sink.clone());
    let sources: Vec<String> = tradewind_proto::Stream::ALL
        .iter()
        .map(|s| cfg.kafka.topic(s.as_str()))
        .collect();
    let limits = DlqLimits::discover(&cfg.kafka, &sources, &cfg.kafka.topic("dlq")).await;

    let token = crate::shutdown::on_signal("draining, writing, committing");

    let cfg2 = cfg.clone();
    let rt = tokio::runtime::Handle::current();
    let health = Arc::new(Health::new(ready));
    let result = tokio::task::spawn_blocking(move || {
        supervise(&cfg2, &args, writer, limits, rt, token, health)
    })
    .await;
    server.abort();
    result.context("consumer thread")?
}

/// Fencing seen lately. A member can be fenced by its own earlier session
/// (a broker paused past the session timeout answers the old session's
/// heartbeat with `FencedInstanceId` after the member has already
/// rejoined), so one fence is recovered from like any Kafka fault. Two
/// live processes with one identity fence each other over and over: the
/// third fence within [`FENCE_WINDOW`] stops this one with an error that
/// says so, and the other goes on.
#[derive(Default)]
struct Fences(std::collections::VecDeque<std::time::Instant>);

const FENCE_WINDOW: Duration = Duration::from_secs(600);
const FENCES_TO_STOP: usize = 3;

impl Fences {
    /// Notes a fence; true when it is one too many.
    fn fenced(&mut self) -> bool {
        let now = std::time::Instant::now();
        self.0.retain(|t| now.duration_since(*t) < FENCE_WINDOW);
        self.0.push_back(now);
        self.0.len() >= FENCES_TO_STOP
    }
}

/// Sleeps for `d` unless `token` is cancelled first; false if it was.
fn nap(token: &CancellationToken, d: Duration) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if token.is_cancelled() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(d));
    }
    !token.is_cancelled()
}

/// Runs consumer sessions until stopped, recovering from Kafka faults.
fn supervise(
    cfg: &AppConfig,
    args: &AggregateArgs,
    writer: Writer,
    limits: DlqLimits,
    rt: tokio::runtime::Handle,
    token: CancellationToken,
    health: Arc<Health>,
) -> Result<()> {
    let instance = cfg.aggregator.instance_id();
    let txn_id = format!("tradewind-{}-{}", cfg.aggregator.group_id, instance);
    tracing::info!(group = %cfg.aggregator.group_id, instance = %instance, transactional_id = %txn_id, "member identity");
    let committed = Arc::new(lag::Committed::default());
    // Between recovery attempts: quick at first, then no faster than every 10 s.
    let mut pace = Backoff::new(&SinkConfig {
        retry_initial: Duration::from_millis(500),
        retry_max: Duration::from_secs(10),
        ..SinkConfig::default()
    });
    let stop_for = |f: Fault| -> anyhow::Error {
        match f {
            Fault::Operator(m) => anyhow::anyhow!("{m} (an operator must fix this; not retrying)"),
            Fault::Fenced(m) => anyhow::anyhow!(
                "{m}: another process joined group {:?} with this member's identity {:?} and took over. \
                 Each member needs its own aggregator.instance_id (it defaults to the host name)",
                cfg.aggregator.group_id,
                instance
            ),
            Fault::Recover(m) => anyhow::anyhow!("{m}"),
        }
    };
    let mut fences = Fences::default();
    loop {
        health.set(State::Rejoining);
        if token.is_cancelled() {
            return Ok(());
        }
        let producer = match commit::transactional_producer(&cfg.kafka, &txn_id, limits) {
            Ok(p) => p,
            Err(Fault::Fenced(m)) if fences.fenced() => return Err(stop_for(Fault::Fenced(m))),
            Err(Fault::Recover(m) | Fault::Fenced(m)) => {
                let d = pace.next_delay();
                tracing::warn!(error = %m, retry_in = ?d, "cannot start the DLQ producer yet");
                health.publish();
                if !nap(&token, d) {
                    return Ok(());
                }
                continue;
            }
            Err(f) => return Err(stop_for(f)),
        };
        let committer = Committer::new(
            writer.clone(),
            rt.clone(),
            producer,
            commit::Dlq {
                topic: cfg.kafka.topic("dlq"),
                limits,
                pipeline: dlq::PipelineId {
                    group: cfg.aggregator.group_id.clone(),
                    database: cfg.clickhouse.database.clone(),
                },
            },
            committed.clone(),
            health.clone(),
        );
        let pipeline = Pipeline::new(cfg)?;
        let topics = pipeline.topic_names();
        let session = Session::new(
            Member {
                pipeline,
                committer,
            },
            health.clone(),
            committed.clone(),
        );
        let consumer = source::consumer(cfg, &instance, session).map_err(stop_for)?;
        let started = std::time::Instant::now();
        let ended = source::run(
            &consumer,
            cfg.aggregator.stats_interval,
            &topics,
            args,
            &token,
        );
        match ended {
            Ok(Ended::Done) => return Ok(()),
            Ok(Ended::SinkDownAtStop(e)) => bail!(
                "stopped while ClickHouse was failing ({e}); rows since the last commit were not \
                 written and their offsets not committed, so the next member replays them"
            ),
            Err(Fault::Fenced(m)) if fences.fenced() => {
                consumer.context().discard_on_close();
                return Err(stop_for(Fault::Fenced(m)));
            }
            Err(Fault::Recover(m) | Fault::Fenced(m)) => {
                metrics::counter!(telemetry::RECOVERIES_TOTAL).increment(1);
                tracing::warn!(error = %m, "Kafka fault; recovering: forgetting uncommitted state and rejoining from the committed offsets");
                health.set(State::Rejoining);
                consumer.context().discard_on_close();
                drop(consumer);
                if started.elapsed() > Duration::from_secs(60) {
                    pace.reset(); // a fault after a good run starts the back-off afresh
                }
                if !nap(&token, pace.next_delay()) {
                    return Ok(());
                }
            }
            Err(f) => {
                consumer.context().discard_on_close();
                return Err(stop_for(f));
            }
        }
    }
}
