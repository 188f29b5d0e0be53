//! `tradewind`: one binary, one subcommand per service. Parses the command
//! line, sets up logging, and hands over to the subcommand in `cmd/`.

mod cmd;
mod config;
mod shutdown;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

// The simulator allocates two small buffers per record on one thread and
// frees them on another; mimalloc handles that pattern far better than glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tradewind",
    version,
    about = "Stream processing for cross-border digital trade"
)]
struct Cli {
    #[command(flatten)]
    config: config::ConfigFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce simulated payments, IoT readings, logistics events and FX quotes to Kafka.
    Simulate(cmd::simulate::SimulateArgs),
    /// Consume the topics, aggregate, and write metrics to ClickHouse (effectively once).
    Aggregate(cmd::aggregate::AggregateArgs),
    /// Create Tradewind's topics (if missing) and show their record counts.
    Topics(cmd::topics::TopicsArgs),
    /// Apply the ClickHouse schema migrations.
    Migrate,
    /// Check the ledger against Kafka offsets, the metric tables and the DLQ.
    Reconcile,
    /// Serve the trade dashboard (corridor volumes, payment health, delivery SLA, cold chain) over ClickHouse.
    Dashboard(cmd::dashboard::DashboardArgs),
    /// Print the effective configuration (defaults, file, env and flags merged).
    Config,
    /// Capacity test against a running stack: rising rates in steps, the highest sustainable rate, a report with plots.
    Loadtest(cmd::loadtest::LoadtestArgs),
    /// Exit 0 when a running aggregator (or, with --dashboard, the dashboard) answers ready; for container health checks.
    Health(cmd::health::HealthArgs),
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let cfg = config::AppConfig::load(&cli.config)?;
    match cli.command {
        Command::Simulate(args) => cmd::simulate::run(&cfg, args).await,
        Command::Aggregate(args) => cmd::aggregate::run(&cfg, args).await,
        Command::Topics(args) => cmd::topics::run(&cfg, args).await,
        Command::Migrate => cmd::migrate::run(&cfg).await,
        Command::Reconcile => cmd::reconcile::run(&cfg).await,
        Command::Dashboard(args) => cmd::dashboard::run(&cfg, args).await,
        Command::Health(args) => cmd::health::run(&cfg, args),
        Command::Loadtest(args) => cmd::loadtest::run(&cfg, &cli.config, args).await,
        Command::Config => {
            print!("{}", toml::to_string_pretty(&cfg)?);
            Ok(())
        }
    }
}
