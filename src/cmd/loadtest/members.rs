//! The aggregator members a load test watches. Each `--metrics` address
//! (`host:port`) is resolved at every scrape to all the addresses it names,
//! so compose's `aggregator` service name reaches every replica of
//! `--scale aggregator=N`. Their `/metrics` are summed into one
//! [`Reading`]: records read, consumer lag, and the two latency histograms.

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use prometheus_parse::{Scrape, Value};

const CONSUMED: &str = "tradewind_consumed_records_total";
const LAG: &str = "tradewind_consumer_lag_records";
/// Kafka record time to ClickHouse acknowledgement.
const PIPELINE: &str = "tradewind_pipeline_latency_seconds";
/// Event time to ClickHouse acknowledgement: when the event is queryable.
const END_TO_END: &str = "tradewind_end_to_end_latency_seconds";

/// A cumulative histogram: `(upper bound, observations at or below it)`,
/// by rising bound, the last one `+Inf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, f64)>);

impl Buckets {
    /// Adds another member's histogram (same bounds, or new ones merged in).
    fn add(&mut self, other: &[(f64, f64)]) {
        for &(le, count) in other {
            match self.0.iter_mut().find(|(l, _)| *l == le) {
                Some((_, c)) => *c += count,
                None => self.0.push((le, count)),
            }
        }
        self.0.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// The observations made after `earlier` was read.
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|&(le, c)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(l, _)| *l == le)
                        .map_or(0.0, |b| b.1);
                    (le, (c - before).max(0.0))
                })
                .collect(),
        )
    }

    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |b| b.1)
    }

    /// The `q` quantile, interpolated linearly inside its bucket as
    /// Prometheus' `histogram_quantile` does. A quantile in the `+Inf`
    /// bucket reads as the highest finite bound (a lower bound of the
    /// truth). `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(le, cum) in &self.0 {
            if cum >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let inside = cum - below;
                let frac = if inside > 0.0 {
                    (rank - below) / inside
                } else {
                    1.0
                };
                return Some(lower + (le - lower) * frac);
            }
            (lower, below) = (le, cum);
        }
        Some(lower)
    }
}

/// The members' numbers at one moment, summed over every member.
#[derive(Debug, Clone)]
pub struct Reading {
    pub at: Instant,
    /// Members that answered.
    pub members: usize,
    pub consumed: f64,
    pub lag: f64,
    pub pipeline: Buckets,
    pub end_to_end: Buckets,
}

impl Reading {
    fn empty() -> Self {
        Self {
            at: Instant::now(),
            members: 0,
            consumed: 0.0,
            lag: 0.0,
            pipeline: Buckets::default(),
            end_to_end: Buckets::default(),
        }
    }

    /// Folds one member's `/metrics` text in.
    pub fn add_exposition(&mut self, text: &str) -> Result<()> {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = Scrape::parse(lines).context("parsing /metrics")?;
        self.members += 1;
        for s in scrape.samples {
            match (s.metric.as_str(), s.value) {
                (CONSUMED, Value::Counter(v) | Value::Untyped(v)) => self.consumed += v,
                (LAG, Value::Gauge(v) | Value::Untyped(v)) => self.lag += v.max(0.0),
                (PIPELINE, Value::Histogram(b)) => self.pipeline.add(&pairs(&b)),
                (END_TO_END, Value::Histogram(b)) => self.end_to_end.add(&pairs(&b)),
                _ => {}
            }
        }
        Ok(())
    }
}

fn pairs(b: &[prometheus_parse::HistogramCount]) -> Vec<(f64, f64)> {
    b.iter().map(|h| (h.less_than, h.count)).collect()
}

/// The `--metrics` addresses.
pub struct Members {
    specs: Vec<String>,
}

impl Members {
    /// Checks that every address resolves and at least one member answers.
    pub fn new(specs: Vec<String>) -> Result<Self> {
        let m = Self { specs };
        let r = m.scrape()?;
        if r.members == 0 {
            bail!(
                "no aggregator answered on {}: start one (`tradewind aggregate`) or pass --metrics HOST:PORT",
                m.specs.join(", ")
            );
        }
        Ok(m)
    }

    /// Scrapes every member now. A member that does not answer is left
    /// out of this reading (it may be restarting); an address that does
    /// not resolve is an error.
    pub fn scrape(&self) -> Result<Reading> {
        let mut reading = Reading::empty();
        for spec in &self.specs {
            let addrs = spec
                .to_socket_addrs()
                .with_context(|| format!("resolving --metrics {spec}"))?;
            for addr in addrs {
                let got =
                    super::super::health::get_at(addr, spec, "/metrics", Duration::from_secs(3));
                match got {
                    Ok((200, body)) => reading.add_exposition(&body)?,
                    Ok((status, _)) => {
                        tracing::debug!(%addr, status, "a member's /metrics did not answer 200")
                    }
                    Err(e) => tracing::debug!(%addr, error = %e, "a member did not answer"),
                }
            }
        }
        reading.at = Instant::now();
        Ok(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "# TYPE tradewind_consumed_records_total counter
tradewind_consumed_records_total{topic=\"tw.payments\"} 700
tradewind_consumed_records_total{topic=\"tw.iot\"} 300
# TYPE tradewind_consumer_lag_records gauge
tradewind_consumer_lag_records{topic=\"tw.payments\",partition=\"0\"} 40
tradewind_consumer_lag_records{topic=\"tw.payments\",partition=\"1\"} 2
# TYPE tradewind_pipeline_latency_seconds histogram
tradewind_pipeline_latency_seconds_bucket{le=\"0.5\"} 10
tradewind_pipeline_latency_seconds_bucket{le=\"1\"} 90
tradewind_pipeline_latency_seconds_bucket{le=\"2.5\"} 100
tradewind_pipeline_latency_seconds_bucket{le=\"+Inf\"} 100
tradewind_pipeline_latency_seconds_sum 80
tradewind_pipeline_latency_seconds_count 100
";

    #[test]
    fn members_are_summed() {
        let mut r = Reading::empty();
        r.add_exposition(ONE).unwrap();
        r.add_exposition(ONE).unwrap();
        assert_eq!(r.members, 2);
        assert_eq!(r.consumed, 2_000.0);
        assert_eq!(r.lag, 84.0);
        assert_eq!(r.pipeline.count(), 200.0);
        assert_eq!(r.pipeline.0[1], (1.0, 180.0));
        assert!(r.end_to_end.quantile(0.5).is_none());
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket_and_diff_between_readings() {
        let b = Buckets(vec![
            (0.5, 10.0),
            (1.0, 90.0),
            (2.5, 100.0),
            (f64::INFINITY, 100.0),
        ]);
        // rank 50 of 100: 40 of the 80 between 0.5 and 1.
        assert!((b.quantile(0.5).unwrap() - 0.75).abs() < 1e-9);
        assert!((b.quantile(0.99).unwrap() - 2.35).abs() < 1e-9);
        let earlier = Buckets(vec![
            (0.5, 10.0),
            (1.0, 10.0),
            (2.5, 10.0),
            (f64::INFINITY, 10.0),
        ]);
        let d = b.since(&earlier);
        assert_eq!(d.count(), 90.0);
        assert!(d.quantile(0.5).unwrap() > 0.5 && d.quantile(0.5).unwrap() < 1.0);
        let over = Buckets(vec![(1.0, 1.0), (f64::INFINITY, 10.0)]);
        assert_eq!(over.quantile(0.99), Some(1.0));
    }
}
