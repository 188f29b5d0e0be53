//! Tradewind's event-time core: a library with no I/O. Decoded events with
//! their source position go in; versioned, mergeable rows, ledger rows and
//! rejections come out. See [`engine`] for the rules that make the
//! effectively-once protocol into ClickHouse possible.
//!
//! - [`config`]: the `[core]` knobs;
//! - [`engine`]: watermarks, windows, lateness, versions, checkpoints;
//! - [`family`]: the metric families (payments, logistics SLA, IoT health);
//! - [`timers`]: keyed entity state with event-time timers;
//! - [`ledger`]: the per-partition reconciliation ledger;
//! - [`sketch`]: mergeable quantile and distinct-count sketches;
//! - [`output`]: rows, rejections and checkpoints;
//! - [`snapshot`]: a partition's whole state as a prost message, to
//!   restart from instead of replaying history.

mod cells;
pub mod config;
pub mod dedup;
pub mod engine;
pub mod family;
mod hash;
mod ledger;
pub use ledger::BEFORE_FIRST_EVENT;
pub mod output;
pub mod sketch;
pub mod snapshot;
pub mod timers;

pub use config::CoreConfig;
pub use engine::Engine;
pub use family::{Family, FxQuotes, IotHealth, LogisticsSla, PaymentCorridors};
pub use output::{Checkpoint, LedgerRow, Output, Reason, Rejection, SourceMeta, WindowRow};
pub use snapshot::{PartitionState, Persist, SnapshotError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid core config: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
