//! One step of a load test, summarised: the samples taken each second while
//! the simulator offered one rate become the step's rates, lag trend,
//! latency quantiles and per-process CPU and memory, and the verdict on
//! whether the stack sustained that rate.
//!
//! A step is **sustainable** when, at the rate the simulator really
//! offered, both of these hold (a simulator that offered less than 90% of
//! the target is noted, since then the load generator, not the stack, set
//! the rate):
//! - lag stayed bounded: over the simulator's run, lag grew by at most 5%
//!   of the offered rate per second (at least 50 records/s, so the
//!   sawtooth of batched reads on a quiet stack is not growth), and ended
//!   under five seconds' worth of records (at least 1,000);
//! - the p99 from record time to ClickHouse acknowledgement stayed under
//!   the target (`--p99-target`).
//!
//! Lag here is per second: the members' `tradewind_consumer_lag_records`
//! at the step's start (librdkafka statistics, every
//! `aggregator.stats_interval`), carried forward by what was written to the
//! source topics (their end offsets) minus what the members have taken
//! through (their `tradewind_consumed_records_total`, which counts a record
//! once ClickHouse has acknowledged its batch): records written and not
//! yet through the pipeline.

use serde::Serialize;

use super::members::{Buckets, Reading};
use super::procs::{self, ProcSample, ProcUsage};

/// One sample: seconds since the step began, the members' reading and the
/// processes.
pub struct Sample {
    pub t: f64,
    pub reading: Reading,
    /// Records ever written to the source topics (summed end offsets).
    pub produced: f64,
    pub procs: Vec<ProcSample>,
}

/// Latency quantiles in seconds (`None`: nothing acknowledged).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
}

impl Quantiles {
    fn of(b: &Buckets) -> Self {
        Self {
            p50: b.quantile(0.5),
            p99: b.quantile(0.99),
            p999: b.quantile(0.999),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Share of the first estimate, in percent.
    pub percent: f64,
    pub target_rate: f64,
    /// What the simulator produced per second.
    pub offered_rate: f64,
    /// What the members read per second.
    pub processed_rate: f64,
    pub lag_start: f64,
    pub lag_end: f64,
    pub lag_max: f64,
    /// Lag growth while the simulator ran, records per second.
    pub lag_slope: f64,
    /// `(seconds into the step, lag)`.
    pub lag_series: Vec<(f64, f64)>,
    /// Kafka record time to ClickHouse acknowledgement.
    pub pipeline: Quantiles,
    /// Event time to ClickHouse acknowledgement (queryable).
    pub end_to_end: Quantiles,
    /// Most and fewest members that answered a scrape during the step.
    pub members: usize,
    pub members_min: usize,
    pub procs: Vec<ProcUsage>,
    pub generator_limited: bool,
    pub lag_bounded: bool,
    pub within_target: bool,
    pub sustainable: bool,
}

/// Summarises a step. `offered` is the simulator's own count and time.
pub fn summarise(
    percent: f64,
    target_rate: f64,
    offered: (u64, f64),
    samples: &[Sample],
    p99_target: f64,
) -> StepResult {
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    // The simulator's run: it ends just before the last sample; its
    // start-up (connecting, checking topics) comes before.
    let run_from = last.t - offered.1;
    let run: Vec<&Sample> = samples.iter().filter(|s| s.t >= run_from).collect();
    let run = if run.len() >= 2 {
        run
    } else {
        samples.iter().collect()
    };
    let (a, b) = (run[0], run[run.len() - 1]);
    let lag_at = |s: &Sample| {
        (first.reading.lag + (s.produced - first.produced)
            - (s.reading.consumed - first.reading.consumed))
            .max(0.0)
    };
    let lag_series: Vec<(f64, f64)> = samples.iter().map(|s| (s.t, lag_at(s))).collect();
    let during: Vec<(f64, f64)> = run.iter().map(|s| (s.t, lag_at(s))).collect();
    let offered_rate = offered.0 as f64 / offered.1.max(1e-9);
    let lag_slope = slope(&during);
    let lag_end = lag_at(last);
    let pipeline = Quantiles::of(&last.reading.pipeline.since(&first.reading.pipeline));
    let end_to_end = Quantiles::of(&last.reading.end_to_end.since(&first.reading.end_to_end));
    let generator_limited = offered_rate < 0.9 * target_rate;
    let lag_bounded = lag_slope <= (0.05 * offered_rate).max(50.0)
        && lag_end <= (5.0 * offered_rate).max(1_000.0);
    let within_target = pipeline.p99.is_some_and(|p| p <= p99_target);
    let procs: Vec<(f64, Vec<ProcSample>)> =
        samples.iter().map(|s| (s.t, s.procs.clone())).collect();
    StepResult {
        percent,
        target_rate,
        offered_rate,
        processed_rate: (b.reading.consumed - a.reading.consumed).max(0.0) / (b.t - a.t).max(1e-9),
        lag_start: first.reading.lag,
        lag_end,
        lag_max: lag_series.iter().map(|p| p.1).fold(0.0, f64::max),
        lag_slope,
        lag_series,
        pipeline,
        end_to_end,
        members: samples.iter().map(|s| s.reading.members).max().unwrap_or(0),
        members_min: samples.iter().map(|s| s.reading.members).min().unwrap_or(0),
        procs: procs::usage(&procs),
        generator_limited,
        lag_bounded,
        within_target,
        sustainable: lag_bounded && within_target,
    }
}

/// Least-squares slope of `(x, y)` points; 0 with fewer than two.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// What the steps say about the stack's capacity.
#[derive(Debug, Clone, Copy)]
pub enum Capacity<'a> {
    /// The highest sustainable step below the first the stack failed.
    Found(&'a StepResult),
    /// Every step was sustained: the capacity is higher than the highest.
    AtLeast(&'a StepResult),
    /// No step was sustained.
    NoneSustained,
}

/// Walks the steps by rising offered rate: the first step the stack fails
/// (lag or p99) ends the walk, and the last sustained step before it is
/// the capacity. A sustained step above a failed one does not count: once
/// lag has grown, a later pass is as likely luck as capacity.
pub fn capacity(steps: &[StepResult]) -> Capacity<'_> {
    let mut by_rate: Vec<&StepResult> = steps.iter().collect();
    by_rate.sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
    let mut best = None;
    for s in by_rate {
        if !s.sustainable {
            return best.map_or(Capacity::NoneSustained, Capacity::Found);
        }
        best = Some(s);
    }
    best.map_or(Capacity::NoneSustained, Capacity::AtLeast)
}

/// The next step (percent of the estimate) that would narrow the
/// capacity down, if any: half the lowest step when none was sustained,
/// half as much again as the highest when all were, else the midpoint
/// between the capacity step and the first step above it, while they are
/// more than 10 points apart.
pub fn refinement(steps: &[StepResult]) -> Option<f64> {
    let lowest = steps
        .iter()
        .map(|s| s.percent)
        .fold(f64::INFINITY, f64::min);
    let highest = steps.iter().map(|s| s.percent).fold(0.0, f64::max);
    match capacity(steps) {
        Capacity::NoneSustained => Some(lowest / 2.0),
        Capacity::AtLeast(_) => Some(highest * 1.5),
        Capacity::Found(best) => {
            let above = steps
                .iter()
                .filter(|s| s.percent > best.percent)
                .map(|s| s.percent)
                .fold(f64::INFINITY, f64::min);
            (above.is_finite() && above - best.percent > 10.0).then(|| (best.percent + above) / 2.0)
        }
    }
}

/// The offered rate of the capacity step, if there is one.
pub fn highest_sustainable(steps: &[StepResult]) -> Option<&StepResult> {
    match capacity(steps) {
        Capacity::Found(s) | Capacity::AtLeast(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample at `t`: records written and read so far, and latencies
    /// (`fast` under 0.5 s, `slow` under 10 s).
    fn sample(t: f64, produced: f64, consumed: f64, fast: f64, slow: f64) -> Sample {
        let b = Buckets(vec![
            (0.5, fast),
            (10.0, fast + slow),
            (f64::INFINITY, fast + slow),
        ]);
        Sample {
            t,
            reading: Reading {
                members: 2,
                consumed,
                lag: 0.0,
                pipeline: b.clone(),
                end_to_end: b,
            },
            produced,
            procs: Vec::new(),
        }
    }

    fn run(f: impl Fn(f64) -> Sample) -> Vec<Sample> {
        (0..=10).map(|i| f(i as f64)).collect()
    }

    #[test]
    fn a_step_that_keeps_up_is_sustainable() {
        // Reads come in batches: lag saws between 0 and 300.
        let s = run(|t| {
            sample(
                t,
                1_000.0 * t + (t % 2.0) * 300.0,
                1_000.0 * t,
                1_000.0 * t,
                0.0,
            )
        });
        let r = summarise(50.0, 1_000.0, (10_000, 10.0), &s, 5.0);
        assert!((r.processed_rate - 1_000.0).abs() < 1e-9);
        assert!(r.lag_max >= 300.0 && r.lag_end == 0.0);
        assert!(r.lag_bounded && r.within_target && !r.generator_limited);
        assert!(r.sustainable);
        assert!(r.pipeline.p99.unwrap() <= 0.5);
        assert_eq!(r.members, 2);
    }

    #[test]
    fn growing_lag_or_slow_acks_or_a_slow_generator_are_not() {
        let growing = run(|t| sample(t, 1_000.0 * t, 800.0 * t, 100.0 * t, 0.0));
        let r = summarise(100.0, 1_000.0, (10_000, 10.0), &growing, 5.0);
        assert!((r.lag_slope - 200.0).abs() < 1e-9);
        assert_eq!(r.lag_end, 2_000.0);
        assert!(!r.lag_bounded && !r.sustainable);

        let slow = run(|t| sample(t, 1_000.0 * t, 1_000.0 * t, 90.0 * t, 10.0 * t));
        let r = summarise(100.0, 1_000.0, (10_000, 10.0), &slow, 5.0);
        assert!(r.lag_bounded && !r.within_target && !r.sustainable);

        let keeping_up = run(|t| sample(t, 1_000.0 * t, 1_000.0 * t, 100.0 * t, 0.0));
        let r = summarise(100.0, 2_000.0, (10_000, 10.0), &keeping_up, 5.0);
        assert!(
            r.generator_limited && r.sustainable,
            "sustained at what was offered"
        );
    }

    #[test]
    fn rates_come_from_the_simulators_run_not_its_start_up() {
        // Nothing for 4 s while the simulator starts, then 1,000/s for 6 s.
        let s = run(|t| {
            let n = 1_000.0 * (t - 4.0).max(0.0);
            sample(t, n, n, n, 0.0)
        });
        let r = summarise(100.0, 1_000.0, (6_000, 6.0), &s, 5.0);
        assert!((r.processed_rate - 1_000.0).abs() < 1e-9);
        assert!(r.sustainable);
    }

    #[test]
    fn capacity_is_the_last_sustained_step_before_the_first_failure() {
        let base = run(|t| sample(t, 0.0, 0.0, 0.0, 0.0));
        // `lag`: lag stayed bounded; `gen`: the simulator offered the target.
        let step = |rate: f64, lag: bool, gen: bool| StepResult {
            offered_rate: rate,
            lag_bounded: lag,
            within_target: true,
            generator_limited: !gen,
            sustainable: lag,
            ..summarise(0.0, 0.0, (0, 1.0), &base, 1.0)
        };
        let rate = |c: Capacity| match c {
            Capacity::Found(s) | Capacity::AtLeast(s) => s.offered_rate,
            _ => -1.0,
        };
        let steps = [
            step(100.0, true, true),
            step(300.0, false, true),
            step(200.0, true, true),
        ];
        assert!(matches!(capacity(&steps), Capacity::Found(_)));
        assert_eq!(rate(capacity(&steps)), 200.0);
        // A pass above a failure is not capacity.
        let steps = [
            step(100.0, true, true),
            step(200.0, false, true),
            step(300.0, true, true),
        ];
        assert_eq!(rate(capacity(&steps)), 100.0);
        // All sustained: at least the top step.
        let steps = [step(100.0, true, true), step(200.0, true, true)];
        assert!(matches!(capacity(&steps), Capacity::AtLeast(s) if s.offered_rate == 200.0));
        // A step the simulator fell short on counts at what it offered.
        let steps = [
            step(100.0, true, true),
            step(150.0, true, false),
            step(200.0, false, true),
        ];
        assert_eq!(rate(capacity(&steps)), 150.0);
        let failed = [step(100.0, false, true)];
        assert!(matches!(capacity(&failed), Capacity::NoneSustained));
        assert!(highest_sustainable(&failed).is_none());
    }

    #[test]
    fn refinement_narrows_the_knee() {
        let base = run(|t| sample(t, 0.0, 0.0, 0.0, 0.0));
        let step = |pct: f64, ok: bool| StepResult {
            percent: pct,
            offered_rate: pct * 10.0,
            lag_bounded: ok,
            within_target: true,
            generator_limited: false,
            sustainable: ok,
            ..summarise(0.0, 0.0, (0, 1.0), &base, 1.0)
        };
        assert_eq!(
            refinement(&[step(25.0, false), step(50.0, false)]),
            Some(12.5)
        );
        assert_eq!(
            refinement(&[step(25.0, true), step(50.0, true)]),
            Some(75.0)
        );
        assert_eq!(
            refinement(&[step(25.0, true), step(50.0, false)]),
            Some(37.5)
        );
        assert_eq!(refinement(&[step(25.0, true), step(31.0, false)]), None);
    }
}
