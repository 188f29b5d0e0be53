//! Acknowledged, retried writes of a [`Batch`]. Each table's rows go in one
//! `INSERT`; a failure retries the whole batch with exponential backoff and
//! jitter until ClickHouse accepts it or the service stops. Re-inserting
//! rows that already landed is harmless: they carry the same key and
//! version, and `ReplacingMergeTree` keeps one.
//!
//! Tradewind batches by itself instead of using the crate's background
//! `Inserter`, because the protocol needs to know exactly which rows are
//! acknowledged before it commits Kafka offsets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clickhouse::Row;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::rows::Batch;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Write once this many rows are pending.
    pub max_rows: usize,
    /// Write once the pending rows' estimated size reaches this many bytes.
    pub max_bytes: usize,
    /// Write (and then commit offsets) at least this often.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// First retry delay after a failed write; doubles up to `retry_max`.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            max_rows: 50_000,
            max_bytes: 64 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// How a write went, for the caller's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteStats {
    pub retries: u32,
    pub elapsed: Duration,
}

pub struct Writer {
    client: clickhouse::Client,
    cfg: SinkConfig,
}

async fn insert_all<T>(client: &clickhouse::Client, table: &'static str, rows: &[T]) -> Result<()>
where
    T: Serialize + Send + Sync + for<'a> Row<Value<'a> = T>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let fail = |source| Error::Insert { table, source };
    let mut insert = client.insert::<T>(table).await.map_err(fail)?;
    for row in rows {
        insert.write(row).await.map_err(fail)?;
    }
    insert.end().await.map_err(fail)
}

impl Writer {
    pub fn new(client: clickhouse::Client, cfg: SinkConfig) -> Self {
        Self { client, cfg }
    }

    async fn write_once(&self, b: &Batch) -> Result<()> {
        insert_all(&self.client, "trade_corridors", &b.corridors).await?;
        insert_all(&self.client, "logistics_sla", &b.logistics).await?;
        insert_all(&self.client, "iot_health", &b.iot).await?;
        insert_all(&self.client, "fx_rates", &b.fx).await?;
        // The ledger last: its rows describe the metric rows above.
        insert_all(&self.client, "ledger", &b.ledger).await
    }

    /// Writes `batch`, retrying until ClickHouse acknowledges it. Returns
    /// [`Error::Stopped`] if `stop` is raised while it is still failing.
    pub async fn write(&self, batch: &Batch, stop: &AtomicBool) -> Result<WriteStats> {
        let started = Instant::now();
        let mut stats = WriteStats::default();
        if batch.is_empty() {
            return Ok(stats);
        }
        let mut delay = self.cfg.retry_initial;
        loop {
            match self.write_once(batch).await {
                Ok(()) => {
                    stats.elapsed = started.elapsed();
                    return Ok(stats);
                }
                Err(e) => {
                    stats.retries += 1;
                    tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), retry_in = ?delay, "ClickHouse write failed; retrying");
                    if stop.load(Ordering::Relaxed) {
                        return Err(Error::Stopped);
                    }
                    let jitter = rand::rng().random_range(0.5..1.5);
                    tokio::time::sleep(delay.mul_f64(jitter)).await;
                    delay = (delay * 2).min(self.cfg.retry_max);
                }
            }
        }
    }

    pub fn config(&self) -> &SinkConfig {
        &self.cfg
    }
}
