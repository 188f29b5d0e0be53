//! `tradewind migrate`: connects to ClickHouse and applies pending
//! migrations. The services (`aggregate`, `dashboard`) do the same at start
//! through [`tradewind_clickhouse::connect_and_migrate`].

use anyhow::{Context, Result};

use crate::config::AppConfig;

pub async fn run(cfg: &AppConfig) -> Result<()> {
    let (conn, report) = tradewind_clickhouse::connect_and_migrate(&cfg.clickhouse)
        .await
        .context("preparing ClickHouse")?;
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
