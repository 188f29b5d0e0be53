//! Acknowledged writes of a [`Batch`]. Each table's rows go in one
//! `INSERT`, and one call is one attempt with a deadline: the caller keeps
//! the batch and tries again later, on the schedule [`Backoff`] gives,
//! while it goes on serving Kafka (polling, rebalances, metrics). Writing
//! rows that already landed again is harmless: they carry the same key and
//! version, and `ReplacingMergeTree` keeps one.
//!
//! Tradewind batches by itself instead of using the crate's background
//! `Inserter`, because the protocol needs to know exactly which rows are
//! acknowledged before it commits Kafka offsets.

use std::time::{Duration, Instant};

use clickhouse::Row;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tradewind_clickhouse::tables;

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
    /// Deadline of one write attempt; a write still running then counts as
    /// failed and is retried.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            max_rows: 50_000,
            max_bytes: 64 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// Retry delays after failed writes: `retry_initial`, doubling up to
/// `retry_max`, each with ±50% jitter so members do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(cfg: &SinkConfig) -> Self {
        Self {
            next: cfg.retry_initial,
            initial: cfg.retry_initial,
            max: cfg.retry_max,
        }
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let jitter = rand::rng().random_range(0.5..1.5);
        let d = self.next.mul_f64(jitter);
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `retry_initial`, after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// How a write went, for the caller's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteStats {
    pub elapsed: Duration,
}

#[derive(Clone)]
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

    async fn write_tables(&self, b: &Batch) -> Result<()> {
        insert_all(&self.client, tables::TRADE_CORRIDORS, &b.corridors).await?;
        insert_all(&self.client, tables::LOGISTICS_SLA, &b.logistics).await?;
        insert_all(&self.client, tables::IOT_HEALTH, &b.iot).await?;
        insert_all(&self.client, tables::FX_RATES, &b.fx).await?;
        // The ledger last: its rows describe the metric rows above.
        insert_all(&self.client, tables::LEDGER, &b.ledger).await
    }

    /// One attempt at writing `batch`, within `write_timeout`. On success
    /// every row is acknowledged; on failure some may have landed, which a
    /// later attempt makes whole.
    pub async fn write(&self, batch: &Batch) -> Result<WriteStats> {
        let started = Instant::now();
        if !batch.is_empty() {
            tokio::time::timeout(self.cfg.write_timeout, self.write_tables(batch))
                .await
                .map_err(|_| Error::Timeout(self.cfg.write_timeout))??;
        }
        Ok(WriteStats {
            elapsed: started.elapsed(),
        })
    }

    /// Whether ClickHouse answers a query within `write_timeout`: how a
    /// blocked sink with nothing to write learns that the server is back.
    pub async fn ping(&self) -> Result<()> {
        let fail = |source| Error::Insert {
            table: "(ping)",
            source,
        };
        tokio::time::timeout(
            self.cfg.write_timeout,
            self.client.query("SELECT 1").execute(),
        )
        .await
        .map_err(|_| Error::Timeout(self.cfg.write_timeout))?
        .map_err(fail)
    }

    pub fn config(&self) -> &SinkConfig {
        &self.cfg
    }
}
