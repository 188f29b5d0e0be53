//! Tradewind's event-time core: a library with no I/O. Decoded events with
//! their source position go in; versioned, mergeable rows, ledger rows and
//! rejections come out. See [`engine`] for the rules that make the
//! effectively-once protocol into ClickHouse possible.

pub mod config;
pub mod engine;
pub mod family;
pub mod sketch;

pub use config::CoreConfig;
pub use engine::{Checkpoint, Engine, LedgerRow, Output, Reason, Rejection, SourceMeta, WindowRow};
pub use family::{Family, PaymentCorridors};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid core config: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
