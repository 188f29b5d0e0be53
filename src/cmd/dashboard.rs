//! `tradewind dashboard`: the page of `tradewind-dashboard`, served with
//! the app's configuration until SIGINT or SIGTERM.

use anyhow::Result;

use crate::config::AppConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// Address to serve on (dashboard.listen).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Hours of event time shown by default, 0 for all (dashboard.hours);
    /// a request's range overrides it.
    #[arg(long, value_name = "HOURS")]
    pub hours: Option<u32>,
}

pub async fn run(cfg: &AppConfig, args: DashboardArgs) -> Result<()> {
    let mut settings = cfg.dashboard_settings();
    if let Some(l) = args.listen {
        settings.dashboard.listen = l;
    }
    if let Some(h) = args.hours {
        settings.dashboard.hours = h;
    }
    let shutdown = crate::shutdown::on_signal("finishing the requests in flight");
    Ok(tradewind_dashboard::run(settings, shutdown).await?)
}
