//! The load test's moves against the stack: the calibration flood, the
//! wait for the lag to drain, one step (a simulator child at one rate,
//! sampled once a second), and reading what the simulator says it did.
//! A Ctrl-C reaches the simulator too (it flushes and prints its totals);
//! the step it cut short is left out of the verdict.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;
use tradewind_kafka::admin::TopicHeads;

use super::members::Members;
use super::plot::thousands;
use super::procs;
use super::step::{self, Sample, StepResult};
use super::LoadtestArgs;
use crate::config::ConfigFlags;

/// A steady load: every local hour equally busy (a step's rate does not
/// drift with the time of day), and no simulated transport delays
/// (jitter, late records), so event time → queryable measures the stack,
/// not the scenario. The user's own `--set` comes after and wins.
const STEADY: [&str; 3] = [
    "daily_cycle.hourly=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
    "disorder.jitter_rate=0",
    "disorder.late_rate=0",
];

/// What every step shares.
pub struct Run<'a> {
    pub flags: &'a ConfigFlags,
    pub args: &'a LoadtestArgs,
    pub members: Members,
    pub heads: TopicHeads,
    pub stack: procs::Stack,
    pub stop: CancellationToken,
    pub bar: ProgressBar,
}

impl Run<'_> {
    /// Floods the topics for `--calibrate` and returns the rate the members
    /// read over its second half.
    pub fn calibrate(&self) -> Result<f64> {
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
    /// (at least 1,000 records); the lag left when `--settle` passes is the
    /// error.
    pub fn settle(&self, next_rate: f64) -> std::result::Result<(), f64> {
        let limit = (next_rate / 2.0).max(1_000.0);
        let started = Instant::now();
        loop {
            let r = self.members.scrape();
            if r.lag <= limit || self.stop.is_cancelled() {
                return Ok(());
            }
            if started.elapsed() >= self.args.settle {
                return Err(r.lag);
            }
            self.bar.set_message(format!(
                "waiting for the lag to drain: {} records",
                thousands(r.lag)
            ));
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// One step: `target` is the rate to reach, `request` what the
    /// simulator is asked for to reach it. `None` when a signal cut it
    /// short.
    pub fn step(
        &self,
        i: usize,
        pct: f64,
        target: f64,
        request: f64,
    ) -> Result<Option<StepResult>> {
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
                "step {} ({pct}% = {}/s) {:.0}/{:.0} s: reading {}/s, lag {}, p99 {}",
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
        if self.stop.is_cancelled() {
            return Ok(None);
        }
        if samples.len() < 2 {
            bail!("step {} took fewer than two samples", i + 1);
        }
        Ok(Some(step::summarise(
            pct,
            target,
            offered,
            &samples,
            self.args.p99_target.as_secs_f64(),
        )))
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
        for set in STEADY {
            c.args(["--set", set]);
        }
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
            let reading = self.members.scrape();
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
                // The simulator may not have had the signal (compose, or a
                // signal sent to this process only): pass it on, then
                // wait while it flushes.
                let _ = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status();
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
}
