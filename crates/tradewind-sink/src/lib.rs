//! Tradewind's ClickHouse sink. Rows from the core are turned into table
//! rows ([`rows`]) and written in acknowledged batches ([`writer`]): a batch
//! is either confirmed by ClickHouse or retried, never half-known, which is
//! what lets the aggregator commit Kafka offsets only after every emitted
//! row is safe.

pub mod labels;
pub mod rows;
pub mod writer;

pub use rows::Batch;
pub use writer::{Backoff, SinkConfig, WriteStats, Writer};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ClickHouse insert into {table} failed")]
    Insert {
        table: &'static str,
        source: clickhouse::error::Error,
    },
    #[error("a ClickHouse write did not finish within {0:?}")]
    Timeout(std::time::Duration),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
