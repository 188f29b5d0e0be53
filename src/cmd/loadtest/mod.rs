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
mod step;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::config::{AppConfig, ConfigFlags};
use members::Members;
use plot::thousands;
use step::{Sample, StepResult};
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
    #[arg(long, value_name = "PER_SEC", default_value_t = 5_000_000.0)]
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
    /// Longest wait for the lag to drain between steps.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub settle: Duration,
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

/// Every local hour equally busy, so a step's rate does not drift with the
/// time of day it runs at.
const FLAT_DAY: &str = "daily_cycle.hourly=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]";

/// What every step shares.
struct Run<'a> {
    flags: &'a ConfigFlags,
    args: &'a LoadtestArgs,
    members: Members,
    heads: TopicHeads,
    stack: procs::Stack,
    stop: CancellationToken,
    bar: ProgressBar,
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
    for (i, &pct) in args.steps.iter().enumerate() {
        if run.stop.is_cancelled() {
            break;
        }
        let target = (estimate * pct / 100.0).max(1.0);
        run.settle(target)?;
        let r = run.step(i, pct, target, target * correction)?;
        if r.offered_rate > 0.0 {
            correction = (correction * target / r.offered_rate).clamp(0.5, 2.0);
        }
        run.bar.println(format!(
            "step {}/{} {pct}%: target {}/s, offered {}/s, processed {}/s, lag {} → {} ({:+.0}/s), p99 {}{}",
            i + 1,
            args.steps.len(),
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
    }
    run.bar.finish_and_clear();
    if steps.is_empty() {
        bail!("stopped before the first step finished; nothing to report");
    }
    let p99_target = args.p99_target.as_secs_f64();
    let best = step::highest_sustainable(&steps).map(|s| s.target_rate);
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
    };
    report::write(&args.out, &setup, &steps)?;
    println!("{}", report::verdict(&steps, p99_target));
    println!("report: {}", args.out.join("report.md").display());
    Ok(())
}

impl Run<'_> {
    /// Floods the topics for `--calibrate` and returns the rate the members
    /// read over its second half.
    fn calibrate(&self) -> Result<f64> {
        let mut child = self.simulate(
            "calibrate",
            self.args.flood_rate,
            self.args.calibrate,
            0,
            &self.args.out.join("simulate-calibrate.log"),
        )?;
        let samples = self.watch(&mut child, "calibrating: flooding the topics", |_| {})?;
        self.finished(&mut child, &self.args.out.join("simulate-calibrate.log"))?;
        let mid = samples.last().map_or(0.0, |s| s.t) / 2.0;
        let second: Vec<&Sample> = samples.iter().filter(|s| s.t >= mid).collect();
        let (Some(a), Some(b)) = (second.first(), second.last()) else {
            bail!("calibration took no samples");
        };
        let rate = (b.reading.consumed - a.reading.consumed) / (b.t - a.t).max(1e-9);
        if rate < 10.0 {
            bail!(
                "the members read almost nothing while the simulator flooded the topics: are they running on the same brokers and kafka.topic_prefix?"
            );
        }
        Ok(rate)
    }

    /// Waits until the lag is under half a second of the next step's rate
    /// (at least 1,000 records), or `--settle` passes.
    fn settle(&self, next_rate: f64) -> Result<()> {
        let limit = (next_rate / 2.0).max(1_000.0);
        let started = Instant::now();
        loop {
            let r = self.members.scrape()?;
            if r.lag <= limit || started.elapsed() >= self.args.settle || self.stop.is_cancelled() {
                return Ok(());
            }
            self.bar.set_message(format!(
                "waiting for the lag to drain: {} records",
                thousands(r.lag)
            ));
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// One step: `target` is the rate to reach, `request` what the
    /// simulator is asked for to reach it.
    fn step(&self, i: usize, pct: f64, target: f64, request: f64) -> Result<StepResult> {
        let log = self
            .args
            .out
            .join(format!("simulate-step{}-{pct}pct.log", i + 1));
        let mut child = self.simulate(
            &format!("step {}", i + 1),
            request,
            self.args.step_duration,
            i as u64 + 1,
            &log,
        )?;
        let n = self.args.steps.len();
        let samples = self.watch(&mut child, "", |s| {
            let p99 = s
                .last()
                .zip(s.first())
                .and_then(|(b, a)| b.reading.pipeline.since(&a.reading.pipeline).quantile(0.99));
            let (rate, lag) = match (s.first(), s.last()) {
                (Some(a), Some(b)) if b.t > a.t => (
                    (b.reading.consumed - a.reading.consumed) / (b.t - a.t),
                    a.reading.lag + (b.produced - a.produced)
                        - (b.reading.consumed - a.reading.consumed),
                ),
                _ => (0.0, 0.0),
            };
            self.bar.set_message(format!(
                "step {}/{n} ({pct}% = {}/s) {:.0}/{:.0} s: reading {}/s, lag {}, p99 {}",
                i + 1,
                thousands(target),
                s.last().map_or(0.0, |x| x.t),
                self.args.step_duration.as_secs_f64(),
                thousands(rate),
                thousands(lag.max(0.0)),
                p99.map_or("–".into(), |p| format!("{p:.2} s"))
            ));
        })?;
        let offered = self.finished(&mut child, &log)?;
        if samples.len() < 2 {
            bail!("step {} took fewer than two samples", i + 1);
        }
        Ok(step::summarise(
            pct,
            target,
            offered,
            &samples,
            self.args.p99_target.as_secs_f64(),
        ))
    }

    /// Starts `tradewind simulate --realtime` at `rate` for `duration`,
    /// with this run's configuration flags, its output going to `log`.
    fn simulate(
        &self,
        what: &str,
        rate: f64,
        duration: Duration,
        run: u64,
        log: &Path,
    ) -> Result<Child> {
        let exe = std::env::current_exe().context("finding the tradewind executable")?;
        let mut c = Command::new(exe);
        let f = self.flags;
        let global = [
            (
                "--config",
                f.config.as_ref().map(|p| p.display().to_string()),
            ),
            ("--brokers", f.brokers.clone()),
            ("--topic-prefix", f.topic_prefix.clone()),
            ("--clickhouse-url", f.clickhouse_url.clone()),
            ("--database", f.database.clone()),
        ];
        for (flag, value) in global {
            if let Some(v) = value {
                c.args([flag, &v]);
            }
        }
        // Seed and id range from the start time: a run takes fewer than
        // 1,000 ids per millisecond it lasts, so each run's ids lie clear
        // of every earlier run's.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        c.args(["simulate", "--realtime", "--rate"])
            .arg(format!("{}", rate.round().max(1.0) as u64))
            .arg("--duration")
            .arg(format!("{}ms", duration.as_millis()))
            .arg("--seed")
            .arg(now_ms.wrapping_add(run).to_string())
            .arg("--ids-after")
            .arg(now_ms.saturating_mul(1_000).to_string());
        if let Some(s) = &self.args.scenario {
            c.arg("--scenario").arg(s);
        }
        // A steady load: the daily cycle flattened (the user's own --set
        // comes after, so it wins).
        c.args(["--set", FLAT_DAY]);
        for s in &self.args.set {
            c.args(["--set", s]);
        }
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        c.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting the simulator for {what}"))
    }

    /// Samples once a second until the simulator exits.
    fn watch(
        &self,
        child: &mut Child,
        message: &str,
        progress: impl Fn(&[Sample]),
    ) -> Result<Vec<Sample>> {
        let started = Instant::now();
        let mut samples = Vec::new();
        let stack = procs::Stack {
            simulator: Some(child.id()),
            ..self.stack.clone()
        };
        if !message.is_empty() {
            self.bar.set_message(message.to_string());
        }
        loop {
            let reading = self.members.scrape()?;
            let produced = self.heads.total().context("reading end offsets")? as f64;
            samples.push(Sample {
                t: started.elapsed().as_secs_f64(),
                reading,
                produced,
                procs: procs::sample(&stack),
            });
            progress(&samples);
            if child.try_wait()?.is_some() {
                return Ok(samples);
            }
            if self.stop.is_cancelled() {
                // The simulator got the same signal (same process group)
                // and flushes; wait for it.
                child.wait()?;
                return Ok(samples);
            }
            let next = Duration::from_secs(samples.len() as u64);
            std::thread::sleep(next.saturating_sub(started.elapsed()));
        }
    }

    /// The simulator's exit: `(records, seconds)` from its closing line, or
    /// the error with the end of its log.
    fn finished(&self, child: &mut Child, log: &Path) -> Result<(u64, f64)> {
        let status = child.wait()?;
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let total = text.lines().rev().find_map(parse_total);
        match (status.success(), total) {
            (true, Some(t)) => Ok(t),
            _ => {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "the simulator failed ({status}); {}:\n{}",
                    log.display(),
                    tail.join("\n")
                )
            }
        }
    }
}

/// `TOTAL records=N bytes=B seconds=S …` → `(N, S)`.
fn parse_total(line: &str) -> Option<(u64, f64)> {
    let rest = line.strip_prefix("TOTAL ")?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    Some((
        field("records")?.parse().ok()?,
        field("seconds")?.parse().ok()?,
    ))
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
    use super::parse_total;

    #[test]
    fn the_simulators_closing_line_gives_records_and_seconds() {
        assert_eq!(
            parse_total(
                "TOTAL records=120000 bytes=5 seconds=30.012 events_per_sec=3998 mb_per_sec=0.01"
            ),
            Some((120_000, 30.012))
        );
        assert_eq!(parse_total("payments 5 6"), None);
    }

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
