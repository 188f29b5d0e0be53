//! Tradewind's aggregator: a Kafka consumer-group member that reads the
//! payments, IoT, logistics and FX topics, folds records into the
//! event-time core, writes rows to ClickHouse and commits offsets only
//! after ClickHouse has acknowledged them, as the effectively-once
//! protocol says (`docs/ARCHITECTURE.md`). Run as many copies as there are
//! partitions to share.
//!
//! One module per stage of the data path, in the order a record meets
//! them:
//! - [`source`]: the consumer, its poll loop and rebalances;
//! - [`restore`]: a newly assigned partition restored from its snapshot or
//!   checkpoint, or refused;
//! - [`decode`] (with [`validate`]): bytes to events, or a rejection;
//! - [`engines`]: the three metric engines and FX behind one `Stream`
//!   dispatch;
//! - [`pipeline`]: the pure state between Kafka and ClickHouse (engines,
//!   pending rows, dead letters, latency samples), with no I/O;
//! - [`dlq`]: dead letters and their headers;
//! - [`state`]: partition snapshots on the compacted state topic;
//! - [`commit`]: the protocol, flush → write → one Kafka transaction, and
//!   the [`commit::Committer`] that owns the I/O handles;
//! - [`cut`] (with [`written`]): what one commit takes from the pipeline at
//!   one instant and carries from the background ClickHouse write to the
//!   Kafka transaction;
//! - [`lag`], [`health`], [`telemetry`], [`latency`] and [`http`]: what
//!   the member tells operators (`/metrics`, `/health`, `/ready`);
//! - [`supervise`]: one consumer session after another, recovering from
//!   Kafka faults as from a crash.
//!
//! Threads: the Kafka loop runs on a blocking thread (librdkafka calls are
//! synchronous, and rebalance callbacks run inside `poll`); ClickHouse
//! writes run on the tokio runtime through its handle, in the background
//! while the loop goes on folding records ([`cut`]).

pub mod commit;
pub mod cut;
pub mod decode;
pub mod dlq;
pub mod engines;
pub mod fault;
pub mod health;
pub mod http;
pub mod lag;
pub mod latency;
pub mod pipeline;
mod quiet;
pub mod restore;
pub mod settings;
pub mod source;
pub mod state;
pub mod supervise;
pub mod telemetry;
pub mod validate;
pub mod written;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tradewind_sink::Writer;

pub use settings::{AggregatorConfig, Settings};

/// Why the aggregator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("aggregator.listen {addr:?}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("installing the metrics recorder: {0}")]
    Metrics(String),
    #[error("preparing Kafka topics")]
    Topics(#[source] tradewind_kafka::Error),
    #[error("preparing ClickHouse")]
    ClickHouse(#[source] tradewind_clickhouse::Error),
    #[error(transparent)]
    Core(#[from] tradewind_core::Error),
    #[error("{0} (an operator must fix this; not retrying)")]
    Operator(String),
    #[error(
        "{message}: another process joined group {group:?} with this member's identity \
         {instance:?} and took over. Each member needs its own aggregator.instance_id \
         (it defaults to the host name)"
    )]
    Fenced {
        message: String,
        group: String,
        instance: String,
    },
    #[error("{0}")]
    Kafka(String),
    #[error(
        "stopped while ClickHouse was failing ({0}); rows since the last commit were not \
         written and their offsets not committed, so the next member replays them"
    )]
    SinkDownAtStop(String),
    #[error("the consumer thread failed: {0}")]
    Thread(String),
}

/// Wall-clock time in Unix milliseconds.
pub fn wall_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the aggregator until `shutdown` is cancelled (then it writes and
/// commits what it holds and leaves the group), until it is idle for
/// [`Settings::exit_when_idle`], or until something only an operator can
/// fix stops it. Installs the global metrics recorder, so call it once
/// per process.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let handle = telemetry::install_recorder(settings.aggregator.stats_interval)?;
    let ready = Arc::new(AtomicBool::new(false));
    let listener = http::bind(&settings.aggregator.listen).await?;
    let server = tokio::spawn(http::serve(listener, handle, ready.clone()));

    // Setup can wait on a broker or a migration lock; a signal meanwhile
    // stops it at once, with nothing to commit yet.
    // The Kafka side and the ClickHouse side are set up side by side.
    let setup = async {
        let kafka = async {
            tradewind_kafka::admin::ensure_topics(&settings.kafka, &settings.kafka.all_topics())
                .await
                .map_err(Error::Topics)?;
            Ok::<_, Error>(
                dlq::DlqLimits::discover(
                    &settings.kafka,
                    &settings.kafka.stream_topics(),
                    &settings.kafka.dlq_topic(),
                )
                .await,
            )
        };
        let clickhouse = async {
            tradewind_clickhouse::connect_and_migrate(&settings.clickhouse)
                .await
                .map_err(Error::ClickHouse)
        };
        let (limits, (conn, _)) = tokio::try_join!(kafka, clickhouse)?;
        Ok::<_, Error>((conn, limits))
    };
    let (conn, limits) = tokio::select! {
        ready = setup => ready?,
        () = shutdown.cancelled() => {
            server.abort();
            return Ok(());
        }
    };
    let writer = Writer::new(conn.client.clone(), settings.aggregator.sink.clone());

    let member = supervise::Shared {
        settings,
        writer,
        limits,
        rt: tokio::runtime::Handle::current(),
        health: Arc::new(health::Health::new(ready)),
    };
    let result = tokio::task::spawn_blocking(move || supervise::supervise(member, shutdown)).await;
    server.abort();
    result.map_err(|e| Error::Thread(e.to_string()))?
}
