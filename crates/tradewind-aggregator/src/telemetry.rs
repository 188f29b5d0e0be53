//! The aggregator's own numbers: metric names and their help text (all of
//! them, here) and the Prometheus recorder with explicit histogram buckets.
//! [`crate::http`] serves them. Every metric with a `topic` label carries
//! the full topic name (`tradewind.payments`).

use crate::Error;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CONSUMED_TOTAL: &str = "tradewind_consumed_records_total";
pub const DECODE_ERRORS_TOTAL: &str = "tradewind_decode_errors_total";
pub const DLQ_TOTAL: &str = "tradewind_dlq_records_total";
pub const SINK_BATCH_ROWS: &str = "tradewind_sink_batch_rows";
pub const SINK_WRITE_SECONDS: &str = "tradewind_sink_write_seconds";
pub const SINK_RETRIES_TOTAL: &str = "tradewind_sink_retries_total";
pub const END_TO_END_SECONDS: &str = "tradewind_end_to_end_latency_seconds";
/// Kafka record time (when the broker or producer stamped it) to ClickHouse
/// acknowledgement: the pipeline's own delay, whatever the event times say.
pub const PIPELINE_SECONDS: &str = "tradewind_pipeline_latency_seconds";
pub const COMMITS_TOTAL: &str = "tradewind_commits_total";
/// Per assigned partition: records not read yet (see `aggregate::lag`).
pub const CONSUMER_LAG_RECORDS: &str = "tradewind_consumer_lag_records";
/// Per assigned partition: records a restart would read again.
pub const RESTART_BACKLOG_RECORDS: &str = "tradewind_restart_backlog_records";
/// Per assigned partition: wall clock minus the partition's event-time
/// watermark, published at each commit.
pub const WATERMARK_LAG_SECONDS: &str = "tradewind_watermark_lag_seconds";

/// Seconds since ClickHouse last acknowledged everything pending.
pub const SINK_LAST_SUCCESS_AGE_SECONDS: &str = "tradewind_sink_last_success_age_seconds";
/// 1 for the member's current state (`running`, `sink_blocked`,
/// `rejoining`), 0 for the others.
pub const MEMBER_STATE: &str = "tradewind_member_state";
/// ClickHouse errors no retry can fix (unknown table or column, type
/// mismatch, authentication): the member stops after counting one.
pub const SINK_FATAL_ERRORS_TOTAL: &str = "tradewind_sink_fatal_errors_total";
/// Recoveries from a Kafka fault inside the process.
pub const RECOVERIES_TOTAL: &str = "tradewind_recoveries_total";
/// Dead letters whose payload was cut to fit the DLQ topic.
pub const DLQ_TRUNCATED_TOTAL: &str = "tradewind_dlq_truncated_total";
/// Per partition: size of its latest state snapshot (encoded bytes).
pub const SNAPSHOT_BYTES: &str = "tradewind_snapshot_bytes";
/// Per partition: seconds since its latest snapshot was committed.
pub const SNAPSHOT_AGE_SECONDS: &str = "tradewind_snapshot_age_seconds";
/// Time to capture, encode and queue one partition's snapshot.
pub const SNAPSHOT_SECONDS: &str = "tradewind_snapshot_duration_seconds";
/// Snapshot bytes written to the state topic, per partition.
pub const SNAPSHOT_WRITTEN_BYTES_TOTAL: &str = "tradewind_snapshot_written_bytes_total";
/// Time to restore a newly assigned partition, by `from` (`snapshot`,
/// `checkpoint`).
pub const RESTORE_SECONDS: &str = "tradewind_restore_duration_seconds";
/// Snapshots that could not be used, by reason (`missing`, `corrupt`,
/// `mismatch`, `unreadable`).
pub const SNAPSHOT_ERRORS_TOTAL: &str = "tradewind_snapshot_errors_total";
/// 1 per partition this member refuses to process (its state cannot be
/// rebuilt; see the log for why and what to do).
pub const PARTITION_REFUSED: &str = "tradewind_partition_refused";

/// Gauges not updated for this long (at least; longer when statistics come
/// less often) are dropped from `/metrics`: a partition that moved to
/// another member stops being reported here. Live partitions' gauges are
/// refreshed every second or every statistics report, so they never lapse.
const GAUGE_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// At most ×2.5 between neighbours, so a quantile read from the buckets is
/// never off by more than that factor (a 300 s → 3,600 s step once made a
/// p99 of 376 s read as 3,567 s).
pub(crate) const SECONDS_BUCKETS: [f64; 25] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0,
];

/// `# HELP` text of every metric but the two per-record latency
/// histograms, which [`crate::latency`] keeps and renders itself.
const HELP: &[(&str, &str)] = &[
    (CONSUMED_TOTAL, "Records read from Kafka, by topic."),
    (
        DECODE_ERRORS_TOTAL,
        "Records that did not decode (malformed, unknown enum), by topic and reason.",
    ),
    (
        DLQ_TOTAL,
        "Records dead-lettered, by source topic and reason.",
    ),
    (SINK_BATCH_ROWS, "Rows per ClickHouse write."),
    (
        SINK_WRITE_SECONDS,
        "Duration of one ClickHouse write (all tables of one commit).",
    ),
    (
        SINK_RETRIES_TOTAL,
        "ClickHouse writes retried after a failure.",
    ),
    (
        COMMITS_TOTAL,
        "Commits: ClickHouse write then one Kafka transaction.",
    ),
    (
        CONSUMER_LAG_RECORDS,
        "Records not read yet, per assigned partition.",
    ),
    (
        RESTART_BACKLOG_RECORDS,
        "Records a restart would read again, per assigned partition.",
    ),
    (
        WATERMARK_LAG_SECONDS,
        "Wall clock minus the partition's event-time watermark.",
    ),
    (
        SINK_LAST_SUCCESS_AGE_SECONDS,
        "Seconds since ClickHouse last acknowledged everything pending.",
    ),
    (
        MEMBER_STATE,
        "1 for the member's current state (running, sink_blocked, rejoining), 0 for the others.",
    ),
    (
        SINK_FATAL_ERRORS_TOTAL,
        "ClickHouse errors no retry can fix; the member stops.",
    ),
    (
        RECOVERIES_TOTAL,
        "Recoveries from a Kafka fault inside the process.",
    ),
    (
        DLQ_TRUNCATED_TOTAL,
        "Dead letters whose payload was cut to fit the DLQ topic.",
    ),
    (
        SNAPSHOT_BYTES,
        "Size of the partition's latest state snapshot, bytes.",
    ),
    (
        SNAPSHOT_AGE_SECONDS,
        "Seconds since the partition's latest state snapshot was committed.",
    ),
    (
        SNAPSHOT_SECONDS,
        "Time to capture, encode and queue one partition's snapshot.",
    ),
    (
        SNAPSHOT_WRITTEN_BYTES_TOTAL,
        "Snapshot bytes written to the state topic, per partition.",
    ),
    (
        RESTORE_SECONDS,
        "Time to restore a newly assigned partition, by source (snapshot or checkpoint).",
    ),
    (
        SNAPSHOT_ERRORS_TOTAL,
        "Snapshots that could not be used, by reason.",
    ),
    (
        PARTITION_REFUSED,
        "1 for each partition this member refuses to process because its state cannot be rebuilt.",
    ),
];
const ROWS_BUCKETS: &[f64] = &[
    1.0, 10.0, 100.0, 1_000.0, 10_000.0, 50_000.0, 100_000.0, 500_000.0,
];

/// Installs the recorder and, on the current tokio runtime, its upkeep
/// task: histogram samples wait in buckets until upkeep (or a scrape)
/// folds them in, so without it an unscraped service would keep every
/// sample it ever recorded.
pub fn install_recorder(stats_interval: std::time::Duration) -> Result<PrometheusHandle, Error> {
    let idle = GAUGE_IDLE.max(stats_interval * 3);
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_rows".into()), ROWS_BUCKETS))
        .map_err(|e| Error::Metrics(e.to_string()))?
        .idle_timeout(metrics_util::MetricKindMask::GAUGE, Some(idle))
        .install_recorder()
        .map_err(|e| Error::Metrics(e.to_string()))?;
    // The exporter keeps help text by name, whatever the metric's kind.
    for (name, help) in HELP {
        metrics::describe_counter!(*name, *help);
    }
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
