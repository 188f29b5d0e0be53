//! The aggregator members a load test watches. Each `--metrics` address
//! (`host:port`) is resolved at every scrape to all the addresses it names,
//! so compose's `aggregator` service name reaches every replica of
//! `--scale aggregator=N`. Their `/metrics` are summed into one
//! [`Reading`]: records read, consumer lag, and the two latency histograms.

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

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

/// The members' numbers at one moment, summed over every member. Read
/// counts and histograms are running totals of what the members did since
/// the load test's first scrape, summed from each member's own increases:
/// a member that restarts (its counters start again from 0), misses a
/// scrape or joins later does not make the totals jump.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Members that answered this time.
    pub members: usize,
    pub consumed: f64,
    /// Lag of every known member, a silent one's last figure carried
    /// forward (for up to [`FORGET_AFTER`] scrapes).
    pub lag: f64,
    pub pipeline: Buckets,
    pub end_to_end: Buckets,
}

/// One member's own figures, as its `/metrics` says.
#[derive(Debug, Clone, Default)]
struct Member {
    consumed: f64,
    lag: f64,
    pipeline: Buckets,
    end_to_end: Buckets,
    /// Scrapes in a row this member did not answer.
    missed: u32,
}

impl Member {
    fn parse(text: &str) -> Result<Self> {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = Scrape::parse(lines).context("parsing /metrics")?;
        let mut m = Member::default();
        for s in scrape.samples {
            match (s.metric.as_str(), s.value) {
                (CONSUMED, Value::Counter(v) | Value::Untyped(v)) => m.consumed += v,
                (LAG, Value::Gauge(v) | Value::Untyped(v)) => m.lag += v.max(0.0),
                (PIPELINE, Value::Histogram(b)) => m.pipeline.add(&pairs(&b)),
                (END_TO_END, Value::Histogram(b)) => m.end_to_end.add(&pairs(&b)),
                _ => {}
            }
        }
        Ok(m)
    }
}

/// A member silent for this many scrapes in a row is forgotten (scaled
/// down, or moved to another address).
const FORGET_AFTER: u32 = 10;

/// A counter's increase from `old` to `new`; a drop is a restart, after
/// which everything counted is new (as Prometheus' `rate` reads resets).
fn increase(new: f64, old: f64) -> f64 {
    if new >= old {
        new - old
    } else {
        new
    }
}

impl Buckets {
    /// The observations since `old`, or all of them after a restart.
    fn increase(&self, old: &Buckets) -> Buckets {
        if self.count() < old.count() {
            self.clone()
        } else {
            self.since(old)
        }
    }
}

fn pairs(b: &[prometheus_parse::HistogramCount]) -> Vec<(f64, f64)> {
    b.iter().map(|h| (h.less_than, h.count)).collect()
}

/// What the load test has seen of the members so far.
#[derive(Default)]
struct Seen {
    members: HashMap<SocketAddr, Member>,
    consumed: f64,
    pipeline: Buckets,
    end_to_end: Buckets,
    scraped: bool,
}

/// The `--metrics` addresses.
pub struct Members {
    specs: Vec<String>,
    seen: Mutex<Seen>,
}

impl Members {
    /// Checks that at least one member answers.
    pub fn new(specs: Vec<String>) -> Result<Self> {
        let m = Self {
            specs,
            seen: Mutex::new(Seen::default()),
        };
        let r = m.scrape();
        if r.members == 0 {
            bail!(
                "no aggregator answered on {}: start one (`tradewind aggregate`) or pass --metrics HOST:PORT",
                m.specs.join(", ")
            );
        }
        Ok(m)
    }

    /// Every member's address, each once. A name that resolves to several
    /// loopback addresses (`localhost`: `::1` and `127.0.0.1`) is one
    /// member, so only its first is kept; a name that does not resolve
    /// now (every replica restarting) has no member this time.
    fn addresses(&self) -> BTreeSet<SocketAddr> {
        let mut out = BTreeSet::new();
        for spec in &self.specs {
            match spec.to_socket_addrs() {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if addrs.iter().all(|a| a.ip().is_loopback()) {
                        out.extend(addrs.first().copied());
                    } else {
                        out.extend(addrs);
                    }
                }
                Err(e) => tracing::debug!(%spec, error = %e, "--metrics does not resolve now"),
            }
        }
        out
    }

    /// Scrapes every member now and folds in what each did since its last
    /// answer. A member that does not answer is left out of this reading.
    pub fn scrape(&self) -> Reading {
        let mut got = Vec::new();
        for addr in self.addresses() {
            let host = addr.to_string();
            match super::super::health::get_at(addr, &host, "/metrics", Duration::from_secs(3)) {
                Ok((200, body)) => match Member::parse(&body) {
                    Ok(m) => got.push((addr, m)),
                    Err(e) => tracing::debug!(%addr, error = %e, "unreadable /metrics"),
                },
                Ok((status, _)) => tracing::debug!(%addr, status, "/metrics did not answer 200"),
                Err(e) => tracing::debug!(%addr, error = %e, "a member did not answer"),
            }
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let answered = got.len();
        for m in seen.members.values_mut() {
            m.missed += 1;
        }
        for (addr, new) in got {
            match seen.members.get(&addr).cloned() {
                Some(old) => {
                    seen.consumed += increase(new.consumed, old.consumed);
                    let p = new.pipeline.increase(&old.pipeline);
                    let e = new.end_to_end.increase(&old.end_to_end);
                    seen.pipeline.add(&p.0);
                    seen.end_to_end.add(&e.0);
                }
                // A member that joins after the first scrape: all it did
                // happened during the test.
                None if seen.scraped => {
                    seen.consumed += new.consumed;
                    seen.pipeline.add(&new.pipeline.0);
                    seen.end_to_end.add(&new.end_to_end.0);
                }
                None => {}
            }
            seen.members.insert(addr, new);
        }
        seen.members.retain(|_, m| m.missed <= FORGET_AFTER);
        seen.scraped = true;
        Reading {
            members: answered,
            consumed: seen.consumed,
            lag: seen.members.values().map(|m| m.lag).sum(),
            pipeline: seen.pipeline.clone(),
            end_to_end: seen.end_to_end.clone(),
        }
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
    fn a_members_metrics_are_parsed_and_summed_over_series() {
        let m = Member::parse(ONE).unwrap();
        assert_eq!(m.consumed, 1_000.0);
        assert_eq!(m.lag, 42.0);
        assert_eq!(m.pipeline.count(), 100.0);
        assert_eq!(m.pipeline.0[1], (1.0, 90.0));
        assert!(m.end_to_end.quantile(0.5).is_none());
    }

    #[test]
    fn restarts_count_from_zero_not_backwards() {
        assert_eq!(increase(1_500.0, 1_000.0), 500.0);
        assert_eq!(increase(200.0, 1_000.0), 200.0);
        let old = Buckets(vec![(1.0, 50.0), (f64::INFINITY, 60.0)]);
        let after_restart = Buckets(vec![(1.0, 5.0), (f64::INFINITY, 6.0)]);
        assert_eq!(after_restart.increase(&old), after_restart);
        let later = Buckets(vec![(1.0, 70.0), (f64::INFINITY, 90.0)]);
        assert_eq!(later.increase(&old).count(), 30.0);
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
