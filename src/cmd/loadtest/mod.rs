//! `tradewind loadtest`: a capacity test against a running stack (local or
//! docker compose, one aggregator member or several).
//!
//! It finds how much the deployment takes. A first estimate comes from
//! `--estimate`, or from a short flood (`--calibrate`): the rate the
//! members read while the simulator produces as fast as it can. Then, for
//! each step (`--steps`, percentages of the estimate), it runs
//! `tradewind simulate --realtime --rate <target>` for `--step-duration`
//! and scrapes every member's `/metrics` once a second: records read,
//! consumer lag, and the latency histograms (Kafka record time →
//! ClickHouse acknowledgement, event time → queryable). It also reads the
//! CPU and memory of the stack's processes from `/proc`. Between steps it
//! waits (up to `--settle`) for the lag to drain.
//!
//! It ends with the highest sustainable rate (see [`step`] for the rule)
//! and writes `report.md`, `report.json` and three SVG plots into `--out`.
//! Each step's simulator gets its own seed and id range, so no step's
//! events are taken as repeats of another's.

mod members;
mod plot;
mod procs;
mod report;
mod runner;
mod step;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::config::{AppConfig, ConfigFlags};
use members::Members;
use plot::thousands;
use runner::Run;
use step::StepResult;
use tradewind_kafka::admin::TopicHeads;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// An aggregator member's metrics address (`host:port`, repeatable).
    /// Every address a name resolves to is scraped, so compose's
    /// `aggregator:9464` covers all replicas. Default: `aggregator.listen`.
    #[arg(long = "metrics", value_name = "HOST:PORT")]
    pub metrics: Vec<String>,
    /// First estimate of the sustainable rate (records/s); skips calibration.
    #[arg(long, value_name = "PER_SEC")]
    pub estimate: Option<f64>,
    /// Length of the calibration flood that gives the first estimate.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    pub calibrate: Duration,
    /// Rate the calibration flood asks the simulator for; the default is
    /// more than one simulator process makes, so it produces flat out.
    #[arg(long, value_name = "PER_SEC", default_value_t = 1_000_000.0)]
    pub flood_rate: f64,
    /// Steps, in percent of the estimate.
    #[arg(long, value_delimiter = ',', default_value = "25,50,75,100,125,150")]
    pub steps: Vec<f64>,
    /// How long each step offers its rate.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub step_duration: Duration,
    /// A step is sustainable only if its p99 from Kafka record time to
    /// ClickHouse acknowledgement is at most this.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub p99_target: Duration,
    /// Extra steps after the planned ones to narrow the capacity down: half
    /// the lowest step if none was sustained, ×1.5 the highest if all
    /// were, else the midpoint around the knee (0 = none).
    #[arg(long, default_value_t = 2)]
    pub refine: usize,
    /// Longest wait for the lag to drain between steps; a backlog still
    /// there after it ends the run (later steps would start behind).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    pub settle: Duration,
    /// Planned steps that may fail before the rest are skipped: one failed
    /// step shows the knee, a second the curve past it.
    #[arg(long, default_value_t = 2)]
    pub failures: usize,
    /// Directory for report.md, report.json, the plots and the simulator logs.
    #[arg(long, value_name = "DIR", default_value = "loadtest-report")]
    pub out: PathBuf,
    /// Scenario file for the simulator (default: the built-in one).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Scenario override passed to the simulator (repeatable), as `simulate --set`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub async fn run(cfg: &AppConfig, flags: &ConfigFlags, args: LoadtestArgs) -> Result<()> {
    let stop = crate::shutdown::on_signal("stopping the load test and writing what it measured");
    let metrics = if args.metrics.is_empty() {
        vec![super::health::local(&cfg.aggregator.listen)]
    } else {
        args.metrics.clone()
    };
    let stack = procs::Stack {
        ports: vec![
            (
                "aggregator",
                metrics.iter().filter_map(|m| port_of(m)).collect(),
            ),
            (
                "kafka",
                cfg.kafka.brokers.split(',').filter_map(port_of).collect(),
            ),
            (
                "clickhouse",
                url_port(&cfg.clickhouse.url).into_iter().collect(),
            ),
        ],
        simulator: None,
    };
    let flags = flags.clone();
    let kafka = cfg.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let heads = TopicHeads::new(&kafka, &kafka.stream_topics())
            .context("reading the source topics' end offsets (run `tradewind topics` first?)")?;
        run_blocking(&flags, &args, metrics, heads, stack, stop)
    })
    .await
    .context("load test thread")?
}

fn run_blocking(
    flags: &ConfigFlags,
    args: &LoadtestArgs,
    metrics: Vec<String>,
    heads: TopicHeads,
    stack: procs::Stack,
    stop: CancellationToken,
) -> Result<()> {
    if args.steps.is_empty() || args.steps.iter().any(|p| p.is_nan() || *p <= 0.0) {
        bail!("--steps must be positive percentages, e.g. 25,50,100");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let members = Members::new(metrics.clone())?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let run = Run {
        flags,
        args,
        members,
        heads,
        stack,
        stop,
        bar,
    };
    let started = chrono_now();
    let (estimate, estimate_from) = match args.estimate {
        Some(e) if e > 0.0 => (e, "--estimate".to_string()),
        Some(_) => bail!("--estimate must be a positive rate"),
        None => {
            let e = run.calibrate()?;
            (e, format!("read rate during a {:?} flood", args.calibrate))
        }
    };
    run.bar.println(format!(
        "first estimate: {} records/s ({estimate_from})",
        thousands(estimate)
    ));
    let mut steps: Vec<StepResult> = Vec::new();
    // The simulator scales its scenario to a rate from the scenario's mean;
    // what it really offers is measured each step, and the next request
    // corrected by the ratio (within ×0.5..×2).
    let mut correction = 1.0;
    let mut stopped = None;
    let mut plan: std::collections::VecDeque<f64> = args.steps.iter().copied().collect();
    let mut refinements = args.refine;
    let mut i = 0;
    loop {
        if steps.iter().filter(|s| !s.sustainable).count() >= args.failures {
            plan.clear();
        }
        let pct = match plan.pop_front() {
            Some(p) => p,
            None if refinements > 0 => match step::refinement(&steps) {
                Some(p) => {
                    refinements -= 1;
                    run.bar
                        .println(format!("refining: one more step at {p}% of the estimate"));
                    p
                }
                None => break,
            },
            None => break,
        };
        let target = (estimate * pct / 100.0).max(1.0);
        if let Err(lag) = run.settle(target) {
            stopped = Some(format!(
                "the lag ({} records) did not drain within --settle {:?}; later steps would start behind",
                thousands(lag),
                args.settle
            ));
            break;
        }
        if run.stop.is_cancelled() {
            stopped = Some("stopped by a signal".to_string());
            break;
        }
        let r = match run.step(i, pct, target, target * correction) {
            Ok(Some(r)) => r,
            Ok(None) => {
                stopped = Some(format!("stopped by a signal during step {}", i + 1));
                break;
            }
            Err(e) => {
                stopped = Some(format!("step {} failed: {e:#}", i + 1));
                break;
            }
        };
        if r.offered_rate > 0.0 {
            correction = (correction * target / r.offered_rate).clamp(0.5, 2.0);
        }
        run.bar.println(format!(
            "step {} {pct}%: target {}/s, offered {}/s, processed {}/s, lag {} → {} ({:+.0}/s), p99 {}{}",
            i + 1,
            thousands(r.target_rate),
            thousands(r.offered_rate),
            thousands(r.processed_rate),
            thousands(r.lag_start),
            thousands(r.lag_end),
            r.lag_slope,
            r.pipeline.p99.map_or("–".into(), |p| format!("{p:.2} s")),
            if r.sustainable { "" } else { " (not sustained)" }
        ));
        steps.push(r);
        i += 1;
    }
    run.bar.finish_and_clear();
    if steps.is_empty() {
        bail!(
            "no step finished, nothing to report: {}",
            stopped.unwrap_or_default()
        );
    }
    let p99_target = args.p99_target.as_secs_f64();
    let best = step::highest_sustainable(&steps).map(|s| s.offered_rate);
    plot::draw_all(&args.out, &steps, best, p99_target)
        .map_err(|e| anyhow::anyhow!("drawing the plots: {e}"))?;
    let setup = report::Setup {
        started,
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_string(),
        estimate,
        estimate_from,
        step_seconds: args.step_duration.as_secs_f64(),
        p99_target_seconds: p99_target,
        metrics,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        stopped: stopped.clone(),
    };
    report::write(&args.out, &setup, &steps)?;
    println!("{}", report::verdict(&steps, p99_target));
    println!("report: {}", args.out.join("report.md").display());
    match stopped {
        // The report holds what was measured; the exit code says the run
        // did not finish.
        Some(why) if why.starts_with("step ") => bail!("{why}"),
        _ => Ok(()),
    }
}

/// The port of `host:port` (a scheme in front is ignored).
fn port_of(addr: &str) -> Option<u16> {
    addr.trim().rsplit(':').next()?.parse().ok()
}

/// The port of an `http://` or `https://` URL, or the scheme's default.
fn url_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    match authority.rsplit_once(':') {
        Some((_, port)) if !port.ends_with(']') => port.parse().ok(),
        _ if scheme == "https" => Some(443),
        _ => Some(80),
    }
}

/// Now, as RFC 3339 in UTC.
fn chrono_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_come_from_addresses_and_urls() {
        use super::{port_of, url_port};
        assert_eq!(port_of("aggregator:9464"), Some(9464));
        assert_eq!(port_of(" SASL_SSL://kafka:9095"), Some(9095));
        assert_eq!(port_of("kafka"), None);
        assert_eq!(url_port("http://127.0.0.1:8123"), Some(8123));
        assert_eq!(url_port("https://ch.example/db"), Some(443));
        assert_eq!(url_port("http://[::1]:8123/"), Some(8123));
        assert_eq!(url_port("http://[::1]/"), Some(80));
    }
}
