//! Connecting to ClickHouse: reads `SELECT version()` first, then builds the
//! `clickhouse` client that fits the server. Servers before 22.x (such as
//! Debian's 18.16) know neither `RowBinaryWithNamesAndTypes` nor the
//! `describe_include_subcolumns` setting that schema validation relies on,
//! so validation is switched off for them.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tradewind_secret::{redact_url, Secret};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP(S) endpoint, e.g. `http://127.0.0.1:8123` or
    /// `https://ch.example.com:8443`.
    pub url: String,
    /// Database Tradewind owns; created if missing.
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// A file holding the password (e.g. a mounted container secret),
    /// instead of `password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// PEM file of the CA that signed the server's certificate, for an
    /// `https://` URL. Unset: the system's trust store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Deadline for connecting and for each schema statement.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl ClickHouseConfig {
    /// Loads `password_file` and checks `ca_file` fits the URL, so a
    /// mistake is one clear error at start-up.
    pub fn resolve(&mut self) -> Result<()> {
        self.password
            .resolve(self.password_file.as_deref(), "clickhouse.password")?;
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Error::Url(redact_url(&self.url)));
        }
        if let Some(ca) = &self.ca_file {
            if !self.url.starts_with("https://") {
                return Err(Error::CaFile {
                    path: ca.clone(),
                    what: format!(
                        "is set but clickhouse.url {} is not https://",
                        redact_url(&self.url)
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "tradewind".into(),
            user: "default".into(),
            password: Secret::default(),
            password_file: None,
            ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `major.minor` of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    pub fn parse(s: &str) -> Result<Self> {
        let mut it = s.trim().split('.').map(|p| p.parse::<u32>());
        match (it.next(), it.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => Ok(Self { major, minor }),
            _ => Err(Error::Version(s.to_string())),
        }
    }

    /// Whether the `clickhouse` crate's row validation can be used.
    pub fn supports_validation(self) -> bool {
        self.major >= 22
    }
}

/// A client bound to Tradewind's database, plus what the server is.
#[derive(Clone)]
pub struct Connection {
    pub client: clickhouse::Client,
    pub version: ServerVersion,
    pub database: String,
    pub timeout: Duration,
}

fn check_name(db: &str) -> Result<()> {
    let ok = !db.is_empty()
        && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !db.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::DatabaseName(db.to_string()))
    }
}

/// A plain-HTTP request to a TLS port is dropped without an answer; say
/// so, since the error itself only says the connection closed.
fn hint(url: &str, e: &clickhouse::error::Error) -> &'static str {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let refused = chain.contains("refused") || chain.contains("dns error");
    if url.starts_with("http://") && !refused {
        " (if that port serves HTTPS, use an https:// URL)"
    } else {
        ""
    }
}

/// Connects, detects the server version and creates the database if needed.
pub async fn connect(cfg: &ClickHouseConfig) -> Result<Connection> {
    check_name(&cfg.database)?;
    let base = crate::transport::client(cfg)?
        .with_url(&cfg.url)
        .with_user(&cfg.user)
        .with_password(cfg.password.expose())
        .with_validation(false);
    let shown = redact_url(&cfg.url);
    let version: String = tokio::time::timeout(
        cfg.timeout,
        base.query("SELECT version()").fetch_one::<String>(),
    )
    .await
    .map_err(|_| Error::Timeout {
        url: shown.clone(),
        timeout: cfg.timeout,
    })?
    .map_err(|source| match source {
        // The server answered: a wrong password, a missing grant. Not a
        // network problem, so not "cannot reach".
        clickhouse::error::Error::BadResponse(message) => Error::Refused {
            url: shown.clone(),
            message,
        },
        source => Error::Unreachable {
            url: shown.clone(),
            hint: hint(&cfg.url, &source),
            source,
        },
    })?;
    let version = ServerVersion::parse(&version)?;
    tracing::debug!(?version, url = %shown, "connected to ClickHouse");
    let ddl = format!("CREATE DATABASE IF NOT EXISTS {}", cfg.database);
    tokio::time::timeout(cfg.timeout, base.query(&ddl).execute())
        .await
        .map_err(|_| Error::Timeout {
            url: shown.clone(),
            timeout: cfg.timeout,
        })??;
    let client = base
        .with_database(&cfg.database)
        .with_validation(version.supports_validation());
    Ok(Connection {
        client,
        version,
        database: cfg.database.clone(),
        timeout: cfg.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        let v = ServerVersion::parse("18.16.1").unwrap();
        assert_eq!(
            v,
            ServerVersion {
                major: 18,
                minor: 16
            }
        );
        assert!(!v.supports_validation());
        assert!(ServerVersion::parse("25.8.2.29")
            .unwrap()
            .supports_validation());
        assert!(ServerVersion::parse("nope").is_err());
    }

    #[test]
    fn rejects_odd_database_names() {
        assert!(check_name("tw_test_1").is_ok());
        assert!(check_name("drop table;").is_err());
        assert!(check_name("").is_err());
    }
}
