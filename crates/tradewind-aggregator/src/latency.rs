//! The two per-record latency histograms: Kafka record time, and event
//! time, to ClickHouse acknowledgement. They see every record, hundreds of
//! thousands a second, so they are counted here in fixed buckets with one
//! atomic add per bucket per commit, not through the `metrics` recorder
//! (which stores every sample until its upkeep folds them in). Their
//! buckets are those of every other `_seconds` histogram, and
//! [`crate::http`] appends them to `/metrics` in Prometheus' text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::{self as tm, SECONDS_BUCKETS};

const BUCKETS: usize = SECONDS_BUCKETS.len();

/// Kafka record time to ClickHouse acknowledgement.
pub static PIPELINE: Histogram = Histogram::new(
    tm::PIPELINE_SECONDS,
    "Kafka record time to ClickHouse acknowledgement.",
);
/// Event time to ClickHouse acknowledgement.
pub static END_TO_END: Histogram = Histogram::new(
    tm::END_TO_END_SECONDS,
    "Event time to ClickHouse acknowledgement.",
);

pub struct Histogram {
    name: &'static str,
    help: &'static str,
    /// Samples per bucket (not cumulative); the last is above every bound.
    counts: [AtomicU64; BUCKETS + 1],
    sum_ms: AtomicU64,
}

impl Histogram {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            counts: [const { AtomicU64::new(0) }; BUCKETS + 1],
            sum_ms: AtomicU64::new(0),
        }
    }

    /// Counts latencies given in milliseconds.
    pub fn record_ms(&self, samples: impl IntoIterator<Item = u64>) {
        let mut counts = [0u64; BUCKETS + 1];
        let mut sum = 0u64;
        for ms in samples {
            let secs = ms as f64 / 1000.0;
            counts[SECONDS_BUCKETS.partition_point(|b| *b < secs)] += 1;
            sum = sum.saturating_add(ms);
        }
        for (c, n) in self.counts.iter().zip(counts) {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum_ms.fetch_add(sum, Ordering::Relaxed);
    }

    /// Samples so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the histogram in Prometheus' text format (version 0.0.4),
    /// nothing before its first sample. The buckets are read once, so a
    /// commit recording meanwhile cannot make the cumulative counts
    /// disagree with `_count`.
    pub fn render(&self, out: &mut String) {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return;
        }
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, c) in SECONDS_BUCKETS.iter().zip(&counts) {
            cumulative += c;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
        out.push('\n');
    }
}

/// Both histograms, for the end of `/metrics`.
pub fn render() -> String {
    let mut out = String::new();
    PIPELINE.render(&mut out);
    END_TO_END.render(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_fall_in_the_first_bucket_at_or_above_them_and_render_cumulatively() {
        let h = Histogram::new("t_latency_seconds", "A test histogram.");
        let mut empty = String::new();
        h.render(&mut empty);
        assert!(empty.is_empty(), "nothing before the first sample");
        h.record_ms([5, 6, 1_000, 90_000_000]);
        let mut out = String::new();
        h.render(&mut out);
        assert!(
            out.contains("# TYPE t_latency_seconds histogram\n"),
            "{out}"
        );
        assert!(
            out.contains("t_latency_seconds_bucket{le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_latency_seconds_bucket{le=\"0.01\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_latency_seconds_bucket{le=\"0.5\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_latency_seconds_bucket{le=\"1\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("t_latency_seconds_bucket{le=\"86400\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("t_latency_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(out.contains("t_latency_seconds_sum 90001.011\n"), "{out}");
        assert!(out.contains("t_latency_seconds_count 4\n"), "{out}");
    }
}
