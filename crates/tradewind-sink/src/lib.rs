//! Tradewind's ClickHouse sink. Rows from the core are turned into table
//! rows ([`rows`]) and written in acknowledged batches ([`writer`]): a batch
//! is either confirmed by ClickHouse or retried, never half-known, which is
//! what lets the aggregator commit Kafka offsets only after every emitted
//! row is safe.

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
    /// The task running the write was cancelled (its runtime shutting
    /// down) before the write finished.
    #[error("a ClickHouse write was cancelled before it finished")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// ClickHouse error codes no retry can fix: the schema or the credentials
/// are wrong, and an operator must act.
const FATAL_CODES: &[(u32, &str)] = &[
    (16, "NO_SUCH_COLUMN_IN_TABLE"),
    (47, "UNKNOWN_IDENTIFIER"),
    (53, "TYPE_MISMATCH"),
    (60, "UNKNOWN_TABLE"),
    (81, "UNKNOWN_DATABASE"),
    (192, "UNKNOWN_USER"),
    (193, "WRONG_PASSWORD"),
    (194, "REQUIRED_PASSWORD"),
    (497, "ACCESS_DENIED"),
    (516, "AUTHENTICATION_FAILED"),
];

impl Error {
    /// The server's error code, when ClickHouse answered with one
    /// (`Code: 60. DB::Exception: ...` or, on 18.16, `Code: 60, e.displayText() = ...`).
    pub fn server_code(&self) -> Option<u32> {
        let Error::Insert {
            source: clickhouse::error::Error::BadResponse(body),
            ..
        } = self
        else {
            return None;
        };
        let rest = &body[body.find("Code: ")? + 6..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// Whether retrying cannot help (wrong schema or credentials); network
    /// errors, timeouts and other server errors are transient.
    pub fn is_fatal(&self) -> bool {
        self.server_code()
            .is_some_and(|c| FATAL_CODES.iter().any(|(f, _)| *f == c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(body: &str) -> Error {
        Error::Insert {
            table: "ledger",
            source: clickhouse::error::Error::BadResponse(body.into()),
        }
    }

    #[test]
    fn schema_and_credential_errors_are_fatal_the_rest_transient() {
        let old = bad("Code: 60, e.displayText() = DB::Exception: Table tw.ledger doesn't exist., e.what() = DB::Exception");
        assert_eq!(old.server_code(), Some(60));
        assert!(old.is_fatal());
        assert!(bad("Code: 516. DB::Exception: default: Authentication failed").is_fatal());
        assert!(!bad("Code: 241. DB::Exception: Memory limit exceeded").is_fatal());
        assert!(!Error::Timeout(std::time::Duration::from_secs(1)).is_fatal());
    }
}
