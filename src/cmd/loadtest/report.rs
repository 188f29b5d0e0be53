//! The load test's report: `report.md` (the verdict, one table row per
//! step, CPU and memory per process, and the three plots) and
//! `report.json` (the same numbers for scripts).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::plot::thousands;
use super::step::{capacity, highest_sustainable, Capacity, Quantiles, StepResult};

/// How the test was run, for the report's header.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub started: String,
    pub host: String,
    pub estimate: f64,
    pub estimate_from: String,
    pub step_seconds: f64,
    pub p99_target_seconds: f64,
    pub metrics: Vec<String>,
    pub command: String,
    /// Why the run ended before its last step, if it did.
    pub stopped: Option<String>,
}

#[derive(Serialize)]
struct Json<'a> {
    setup: &'a Setup,
    highest_sustainable_rate: Option<f64>,
    steps: &'a [StepResult],
}

/// Writes `report.md` and `report.json` into `dir`; returns the Markdown.
pub fn write(dir: &Path, setup: &Setup, steps: &[StepResult]) -> Result<String> {
    let best = highest_sustainable(steps).map(|s| s.offered_rate);
    let md = markdown(setup, steps, best);
    std::fs::write(dir.join("report.md"), &md).context("writing report.md")?;
    let json = serde_json::to_string_pretty(&Json {
        setup,
        highest_sustainable_rate: best,
        steps,
    })?;
    std::fs::write(dir.join("report.json"), json).context("writing report.json")?;
    Ok(md)
}

/// The one-line verdict.
pub fn verdict(steps: &[StepResult], p99_target: f64) -> String {
    match capacity(steps) {
        Capacity::Found(s) => format!(
            "Highest sustainable rate: {} records/s ({}% of the estimate): lag bounded and p99 {} ≤ {p99_target} s; the next step up was not sustained.",
            thousands(s.offered_rate),
            s.percent,
            secs(s.pipeline.p99)
        ),
        Capacity::AtLeast(s) => format!(
            "Highest sustainable rate: at least {} records/s ({}% of the estimate, the highest step offered; p99 {}): capacity not reached, {}.",
            thousands(s.offered_rate),
            s.percent,
            secs(s.pipeline.p99),
            if s.generator_limited {
                "and the simulator could not offer more on this host: run it from another machine"
            } else {
                "rerun with a higher --estimate or more steps"
            }
        ),
        Capacity::NoneSustained => format!(
            "Highest sustainable rate: below every step: the lowest let lag grow or missed the p99 target of {p99_target} s. Start lower with --estimate."
        ),
    }
}

fn markdown(setup: &Setup, steps: &[StepResult], best: Option<f64>) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Tradewind load test\n");
    let _ = writeln!(m, "**{}**\n", verdict(steps, setup.p99_target_seconds));
    if let Some(why) = &setup.stopped {
        let _ = writeln!(
            m,
            "The run ended early ({why}); the steps below are those it finished.\n"
        );
    }
    let _ = writeln!(m, "- started: {} on `{}`", setup.started, setup.host);
    let _ = writeln!(m, "- command: `{}`", setup.command);
    let _ = writeln!(
        m,
        "- first estimate: {} records/s ({})",
        thousands(setup.estimate),
        setup.estimate_from
    );
    let _ = writeln!(
        m,
        "- each step: {} s of `tradewind simulate --realtime --rate <target>`; members scraped every second at {}",
        setup.step_seconds,
        setup.metrics.join(", ")
    );
    let _ = writeln!(
        m,
        "- sustainable, at the rate offered: lag grew by at most 5% of the offered rate per second while the simulator ran and ended under 5 s of records, and p99 record time → ClickHouse ack ≤ {} s (a simulator that offered under 90% of the target is noted)\n",
        setup.p99_target_seconds
    );
    let _ = writeln!(m, "![throughput](throughput.svg)\n");
    let _ = writeln!(m, "![lag](lag.svg)\n");
    let _ = writeln!(m, "![latency](latency.svg)\n");
    let _ = writeln!(m, "## Steps\n");
    let _ = writeln!(
        m,
        "| step | target/s | offered/s | processed/s | lag start → end (max) | lag trend/s | record→ack p50 / p99 / p99.9 | event→queryable p50 / p99 / p99.9 | members | verdict |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|");
    for s in steps {
        let _ = writeln!(
            m,
            "| {}% | {} | {} | {} | {} → {} ({}) | {:+.0} | {} | {} | {} | {} |",
            s.percent,
            thousands(s.target_rate),
            thousands(s.offered_rate),
            thousands(s.processed_rate),
            thousands(s.lag_start),
            thousands(s.lag_end),
            thousands(s.lag_max),
            s.lag_slope,
            triple(&s.pipeline),
            triple(&s.end_to_end),
            if s.members_min == s.members {
                s.members.to_string()
            } else {
                format!("{}–{}", s.members_min, s.members)
            },
            judgement(s, best)
        );
    }
    let _ = writeln!(m, "\n## CPU and memory per process\n");
    let _ = writeln!(
        m,
        "Cores busy on average during the step (1.0 = one core) and the highest resident memory.\n"
    );
    let _ = writeln!(m, "| step | process | pid | cores | RSS max |");
    let _ = writeln!(m, "|---|---|---|---|---|");
    for s in steps {
        for p in &s.procs {
            let _ = writeln!(
                m,
                "| {}% | {} | {} | {:.2} | {} MiB |",
                s.percent,
                p.role,
                p.pid,
                p.cores,
                thousands(p.rss_max_bytes as f64 / 1_048_576.0)
            );
        }
    }
    let _ = writeln!(
        m,
        "\nThe simulator shares the machine with the stack; on a small host its CPU is part of what limits the rates reached."
    );
    m
}

fn judgement(s: &StepResult, best: Option<f64>) -> String {
    let mut why = Vec::new();
    if !s.lag_bounded {
        why.push("lag grew");
    }
    if !s.within_target {
        why.push("p99 over target");
    }
    let mut verdict = match (s.sustainable, best == Some(s.offered_rate)) {
        (true, true) => "**sustained (highest)**".to_string(),
        (true, false) => "sustained".to_string(),
        _ => why.join(", "),
    };
    if s.generator_limited {
        verdict.push_str(" (simulator offered under 90% of the target)");
    }
    verdict
}

fn secs(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v < 1.0 => format!("{:.0} ms", v * 1e3),
        Some(v) => format!("{v:.1} s"),
    }
}

fn triple(q: &Quantiles) -> String {
    format!("{} / {} / {}", secs(q.p50), secs(q.p99), secs(q.p999))
}
