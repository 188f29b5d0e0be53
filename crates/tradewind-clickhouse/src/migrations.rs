//! Numbered schema migrations, embedded in the binary and applied in order.
//! Each applied migration is recorded in `schema_migrations`, so applying
//! them again is a no-op. The SQL must run on ClickHouse 18.16 and 25.x: no
//! `DateTime64`, no `toStartOfInterval`, no `LowCardinality`.

use clickhouse::Row;
use serde::Deserialize;

use crate::{Connection, Error, Result};

/// One migration: its number, a name, and `;`-separated statements.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "fx_rates",
        sql: include_str!("../migrations/0001_fx_rates.sql"),
    },
    Migration {
        version: 2,
        name: "metric_tables",
        sql: include_str!("../migrations/0002_metric_tables.sql"),
    },
    Migration {
        version: 3,
        name: "sparse_hll",
        sql: include_str!("../migrations/0003_sparse_hll.sql"),
    },
];

const LEDGER_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
    (version UInt32, name String, applied_at DateTime) ENGINE = MergeTree() ORDER BY version";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<u32>,
    pub already_applied: Vec<u32>,
}

#[derive(Row, Deserialize)]
struct Applied {
    version: u32,
}

/// Splits a migration file into statements, dropping comments and blanks.
fn statements(sql: &str) -> Vec<String> {
    let code: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Applies every migration not yet recorded in `schema_migrations`.
pub async fn migrate(conn: &Connection) -> Result<MigrationReport> {
    let ch = &conn.client;
    ch.query(LEDGER_TABLE).execute().await?;
    let done: Vec<u32> = ch
        .query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all::<Applied>()
        .await?
        .into_iter()
        .map(|a| a.version)
        .collect();
    let mut report = MigrationReport::default();
    for m in MIGRATIONS {
        if done.contains(&m.version) {
            report.already_applied.push(m.version);
            continue;
        }
        let failed = |source| Error::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        for stmt in statements(m.sql) {
            ch.query(&stmt).execute().await.map_err(failed)?;
        }
        ch.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
            .bind(m.version)
            .bind(m.name)
            .execute()
            .await
            .map_err(failed)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        report.applied.push(m.version);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
    }

    #[test]
    fn splits_statements_and_drops_comments() {
        let s = statements("-- c; d\nCREATE TABLE a (x UInt8) ENGINE = Log;\n\n-- d\nSELECT 1;\n");
        assert_eq!(s.len(), 2);
        assert!(s[0].starts_with("CREATE TABLE a"));
    }
}
