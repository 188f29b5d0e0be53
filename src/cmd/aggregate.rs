//! `tradewind aggregate`: the service of `tradewind-aggregator`, run with
//! the app's configuration until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::Result;

use crate::config::AppConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct AggregateArgs {
    /// Exit (after a final commit) once this member holds partitions and no
    /// record has arrived for this long; for batch runs and benchmarks. By default the service runs until
    /// SIGINT or SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub exit_when_idle: Option<Duration>,
}

pub async fn run(cfg: &AppConfig, args: AggregateArgs) -> Result<()> {
    let mut settings = cfg.aggregator_settings();
    settings.exit_when_idle = args.exit_when_idle;
    let shutdown = crate::shutdown::on_signal("draining, writing, committing");
    Ok(tradewind_aggregator::run(settings, shutdown).await?)
}
