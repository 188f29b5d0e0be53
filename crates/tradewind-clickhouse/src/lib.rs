//! Tradewind's ClickHouse access: a client that adapts to the server it
//! finds ([`connect`]), and the numbered schema [`migrations`] every service
//! applies before writing. Works against ClickHouse 18.16 (Debian's package)
//! and 25.x (the compose image).

pub mod client;
pub mod migrations;
pub mod queries;
mod transport;

pub use client::{connect, ClickHouseConfig, Connection, ServerVersion};
pub use migrations::{connect_and_migrate, migrate, MigrationReport, MIGRATIONS};
pub use queries::tables;

/// Errors of the ClickHouse layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("clickhouse.ca_file {path}: {what}")]
    CaFile {
        path: std::path::PathBuf,
        what: String,
    },
    #[error("setting up TLS for ClickHouse: {0}")]
    Tls(String),
    #[error(transparent)]
    Secret(#[from] tradewind_secret::Error),
    #[error("clickhouse.url {0:?} must start with http:// or https://")]
    Url(String),
    #[error("ClickHouse at {url} refused the request: {message}")]
    Refused { url: String, message: String },
    #[error("cannot reach ClickHouse at {url}{hint}")]
    Unreachable {
        url: String,
        /// A likely cause the error chain does not say, or empty.
        hint: &'static str,
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse at {url} did not answer within {timeout:?}")]
    Timeout {
        url: String,
        timeout: std::time::Duration,
    },
    #[error("unexpected ClickHouse version string {0:?}")]
    Version(String),
    #[error("invalid database name {0:?}: use letters, digits and underscores")]
    DatabaseName(String),
    #[error("migration {version:04} ({name}) failed")]
    Migration {
        version: u32,
        name: &'static str,
        source: clickhouse::error::Error,
    },
    #[error(
        "migration {version:04} ({name}) is being applied by another process and has not \
         finished in {waited_secs} s; if no other Tradewind process is running, \
         DROP TABLE {lock} and try again"
    )]
    MigrationLocked {
        version: u32,
        name: &'static str,
        lock: String,
        waited_secs: u64,
    },
    #[error("ClickHouse query failed: {0}")]
    Query(#[from] clickhouse::error::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
