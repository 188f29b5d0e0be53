//! `tradewind migrate`: connects to ClickHouse and applies pending migrations.
//! The services (`aggregate`, `dashboard`) do the same at start through
//! [`connected_and_migrated`].

use anyhow::{Context, Result};
use tradewind_clickhouse::Connection;

use crate::config::AppConfig;

/// A ClickHouse connection with every migration applied.
pub async fn connected_and_migrated(cfg: &AppConfig) -> Result<Connection> {
    let conn = tradewind_clickhouse::connect(&cfg.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    tradewind_clickhouse::migrate(&conn)
        .await
        .context("applying migrations")?;
    Ok(conn)
}

pub async fn run(cfg: &AppConfig) -> Result<()> {
    let conn = tradewind_clickhouse::connect(&cfg.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let report = tradewind_clickhouse::migrate(&conn).await?;
    println!(
        "ClickHouse {}.{} database {}: applied {:?}, already applied {:?}",
        conn.version.major,
        conn.version.minor,
        conn.database,
        report.applied,
        report.already_applied
    );
    Ok(())
}
