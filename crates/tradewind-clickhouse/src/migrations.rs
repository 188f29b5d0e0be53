//! Numbered schema migrations, embedded in the binary and applied in order.
//! Each applied migration is recorded in `schema_migrations`, so applying
//! them again is a no-op.
//!
//! Several processes may start on a fresh database at once (aggregators
//! scaled out, tests in parallel). ClickHouse DDL is not transactional and
//! some statements (`ALTER ... DROP COLUMN`) cannot be repeated, so each
//! migration is applied under a lock: the process that creates the table
//! `schema_migration_lock_<version>` applies it and drops the table; the
//! others wait until `schema_migrations` records it. `CREATE TABLE` of one
//! name succeeds for exactly one caller. The SQL must run on ClickHouse 18.16 and 25.x: no
//! `DateTime64`, no `toStartOfInterval`, no `LowCardinality`.

use std::time::{Duration, Instant};

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
    Migration {
        version: 4,
        name: "ledger_invalid_duplicate",
        sql: include_str!("../migrations/0004_ledger_invalid_duplicate.sql"),
    },
    Migration {
        version: 5,
        name: "silent_devices",
        sql: include_str!("../migrations/0005_silent_devices.sql"),
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

/// How long a process waits for another one to finish a migration.
const LOCK_WAIT: Duration = Duration::from_secs(120);

async fn applied(ch: &clickhouse::Client) -> Result<Vec<u32>> {
    Ok(ch
        .query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all::<Applied>()
        .await?
        .into_iter()
        .map(|a| a.version)
        .collect())
}

fn lock_table(version: u32) -> String {
    format!("schema_migration_lock_{version:04}")
}

/// Tries to take the lock of migration `version`: true if this process
/// now holds it, false if another one does.
async fn try_lock(ch: &clickhouse::Client, version: u32) -> Result<bool> {
    let sql = format!(
        "CREATE TABLE {} (taken_at DateTime) ENGINE = Log",
        lock_table(version)
    );
    match ch.query(&sql).execute().await {
        Ok(()) => Ok(true),
        // TABLE_ALREADY_EXISTS
        Err(e) if e.to_string().contains("Code: 57") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn unlock(ch: &clickhouse::Client, version: u32) -> Result<()> {
    let sql = format!("DROP TABLE IF EXISTS {}", lock_table(version));
    ch.query(&sql).execute().await?;
    Ok(())
}

async fn apply(ch: &clickhouse::Client, m: &Migration) -> Result<()> {
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
    Ok(())
}

/// Connects ([`crate::connect`]) and applies every pending migration: what
/// each service does before it reads or writes.
pub async fn connect_and_migrate(
    cfg: &crate::ClickHouseConfig,
) -> Result<(Connection, MigrationReport)> {
    let conn = crate::connect(cfg).await?;
    let report = migrate(&conn).await?;
    Ok((conn, report))
}

/// Applies every migration not yet recorded in `schema_migrations`.
pub async fn migrate(conn: &Connection) -> Result<MigrationReport> {
    let ch = &conn.client;
    ch.query(LEDGER_TABLE).execute().await?;
    let mut done = applied(ch).await?;
    let mut report = MigrationReport::default();
    for m in MIGRATIONS {
        let started = Instant::now();
        let mut waited = false;
        loop {
            if done.contains(&m.version) {
                report.already_applied.push(m.version);
                break;
            }
            if try_lock(ch, m.version).await? {
                // Another process may have finished it just before.
                done = applied(ch).await?;
                if done.contains(&m.version) {
                    unlock(ch, m.version).await?;
                    continue;
                }
                let result = apply(ch, m).await;
                // Released either way, so a retry after a transient
                // failure is not blocked by a lock nobody holds.
                unlock(ch, m.version).await?;
                result?;
                tracing::info!(version = m.version, name = m.name, "applied migration");
                report.applied.push(m.version);
                done.push(m.version);
                break;
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(Error::MigrationLocked {
                    version: m.version,
                    name: m.name,
                    lock: lock_table(m.version),
                    waited_secs: LOCK_WAIT.as_secs(),
                });
            }
            if !waited {
                tracing::info!(
                    version = m.version,
                    "waiting for another process to apply migration"
                );
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            done = applied(ch).await?;
        }
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
