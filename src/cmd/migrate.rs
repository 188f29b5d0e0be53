//! `tradewind migrate`: connects to ClickHouse and applies pending migrations.

use anyhow::{Context, Result};

use crate::config::AppConfig;

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
