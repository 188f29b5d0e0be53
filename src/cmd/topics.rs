//! `tradewind topics`: creates Tradewind's topics with the configured
//! partition counts and prints how many records each one holds.

use anyhow::{Context, Result};
use tradewind_kafka::admin;

use crate::config::AppConfig;

#[derive(Debug, clap::Args)]
pub struct TopicsArgs {
    /// Only print counts; do not create missing topics.
    #[arg(long)]
    pub no_create: bool,
}

pub async fn run(cfg: &AppConfig, args: TopicsArgs) -> Result<()> {
    let topics = cfg.kafka.all_topics();
    if !args.no_create {
        admin::ensure_topics(&cfg.kafka, &topics)
            .await
            .context("creating topics")?;
    }
    let k = cfg.kafka.clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<(String, usize, i64)>> {
        let mut rows = Vec::new();
        for (t, _) in k.all_topics() {
            let parts =
                admin::topic_offsets(&k, &t).with_context(|| format!("reading offsets of {t}"))?;
            rows.push((t, parts.len(), parts.iter().map(|p| p.high - p.low).sum()));
        }
        Ok(rows)
    })
    .await??;
    println!("{:<28} {:>10} {:>14}", "topic", "partitions", "records");
    for (t, parts, n) in rows {
        println!("{t:<28} {parts:>10} {n:>14}");
    }
    Ok(())
}
