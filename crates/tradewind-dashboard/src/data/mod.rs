//! What the dashboard shows, read from ClickHouse on every request for the
//! request's [`Selection`]: the range (ending at the newest window by
//! default) and the filters, over `FINAL` rows of the metric tables. Money
//! is turned into USD at each currency's latest FX quote; quantiles come
//! from the merged log-bucket histograms and distinct counts from the
//! merged HLL sketches, exactly as the README's SQL merges them.
//!
//! One module per stream ([`payments`], [`logistics`], [`iot`]), each with
//! one query-and-shape function per panel; the queries are the `.sql`
//! files of `tradewind-clickhouse`, bound by the names on their `-- binds:`
//! line ([`bind`]). Aliases differ from column names, which ClickHouse
//! 18.16 needs.

mod iot;
mod logistics;
mod payments;

use clickhouse::error::Result;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use tradewind_clickhouse::queries as q;
use tradewind_core::sketch::{Hll, LogHistogram};

pub use iot::{ColdChain, DeviceHealth, IotTick};
pub use logistics::{Sla, SlaTick};
pub use payments::{Buyers, Corridor, MethodHealth, PaymentSize, Tick};

use crate::selection::Selection;

/// The trends' resolution: windows are summed into at most about this
/// many points, each one of [`NICE_BUCKETS`] long (seconds).
const TREND_POINTS: u32 = 120;
const NICE_BUCKETS: [u32; 10] = [60, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400];

/// Everything on the page; also served as JSON at `/api/dashboard.json`.
#[derive(Debug, Default, Serialize)]
pub struct Dashboard {
    /// The range shown, Unix seconds, `[from, to)`; 0, 0 when empty.
    pub from: u32,
    pub to: u32,
    /// The newest window start in the tables.
    pub newest: u32,
    /// Seconds of event time per trend point.
    pub bucket_secs: u32,
    pub totals: Totals,
    pub corridors: Vec<Corridor>,
    pub methods: Vec<MethodHealth>,
    pub payment_sizes: Vec<PaymentSize>,
    pub buyers: Vec<Buyers>,
    /// Payments, failures and USD volume over time.
    pub timeline: Vec<Tick>,
    pub sla: Vec<Sla>,
    pub sla_trend: Vec<SlaTick>,
    pub cold_chain: Vec<ColdChain>,
    pub devices: Vec<DeviceHealth>,
    pub iot_trend: Vec<IotTick>,
    pub ledger: Vec<LedgerTotals>,
    /// How long each panel's query took, in load order; served as the
    /// `Server-Timing` header, not in the JSON.
    #[serde(skip)]
    pub timings: Vec<Timing>,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub payments: u64,
    pub captured: u64,
    pub failed: u64,
    pub refunded: u64,
    pub volume_usd: f64,
    pub delivered: u64,
    pub on_time: u64,
    pub breaches: u64,
    pub readings: u64,
    pub excursions: u64,
    /// Silences: each time a device went quiet.
    pub silent: u64,
    /// Distinct devices that went quiet in the range (HLL estimate).
    pub silent_devices: u64,
}

#[derive(Debug, Serialize)]
pub struct LedgerTotals {
    pub topic: String,
    pub seen: u64,
    pub aggregated: u64,
    pub too_late: u64,
    pub future_timestamp: u64,
    pub malformed: u64,
    pub unknown_enum: u64,
    pub invalid: u64,
    pub duplicate: u64,
}

/// The range and resolution of one request.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: u32,
    pub to: u32,
    pub bucket: u32,
}

/// `query` with its `?` bound by the names on its `-- binds:` line: the
/// range, the trend bucket, or a filter of `sel` (empty: any).
pub fn bind(
    ch: &clickhouse::Client,
    query: &str,
    sel: &Selection,
    r: Range,
) -> clickhouse::query::Query {
    let mut out = ch.query(query);
    for name in q::binds(query) {
        out = match name {
            "from" => out.bind(r.from),
            "to" => out.bind(r.to),
            "bucket" => out.bind(r.bucket),
            other => out.bind(sel.filter(other).unwrap_or_else(|| {
                panic!("query bind {other:?} names no range, bucket or filter")
            })),
        };
    }
    out
}

/// Reads the dashboard for `sel`: the range, then one query per panel.
pub async fn load(ch: &clickhouse::Client, sel: &Selection) -> Result<Dashboard> {
    let (oldest, newest): (u32, u32) = ch.query(q::DASHBOARD_RANGE).fetch_one().await?;
    let (from, to) = sel.bounds(newest);
    let r = Range {
        from,
        to,
        bucket: bucket_secs(from.max(oldest), to),
    };
    let mut d = Dashboard {
        from,
        to,
        newest,
        bucket_secs: r.bucket,
        ..Default::default()
    };
    if newest == 0 {
        return Ok(d);
    }
    // The panels' queries run side by side; each is timed on its own.
    let rates = payments::fx_rates(ch).await?;
    let (
        corridors,
        methods,
        sizes,
        buyers,
        timeline,
        sla,
        sla_trend,
        cold,
        devices,
        iot_trend,
        ledger,
    ) = tokio::try_join!(
        timed("corridors", payments::corridors(ch, sel, r, &rates)),
        timed("methods", payments::methods(ch, sel, r)),
        timed("payment_sizes", payments::sizes(ch, sel, r)),
        timed("buyers", payments::buyers(ch, sel, r)),
        timed("payments_trend", payments::trend(ch, sel, r, &rates)),
        timed("sla", logistics::sla(ch, sel, r)),
        timed("sla_trend", logistics::trend(ch, sel, r)),
        timed("cold_chain", iot::cold_chain(ch, sel, r)),
        timed("devices", iot::devices(ch, sel, r)),
        timed("iot_trend", iot::trend(ch, sel, r)),
        timed("ledger", ledger(ch)),
    )?;
    let ((cold_chain, silent_devices), cold_timing) = cold;
    let t = &mut d.totals;
    t.volume_usd = corridors.0.iter().map(|c| c.volume_usd).sum();
    for m in &methods.0 {
        t.payments += m.payments;
        t.captured += m.captured;
        t.failed += m.failed;
        t.refunded += m.refunded;
    }
    for s in &sla.0 {
        t.delivered += s.delivered;
        t.on_time += s.on_time;
        t.breaches += s.breaches;
    }
    for c in &cold_chain {
        t.readings += c.readings;
        t.excursions += c.excursions;
        t.silent += c.silent;
    }
    t.silent_devices = silent_devices;
    d.timings = vec![
        corridors.1,
        methods.1,
        sizes.1,
        buyers.1,
        timeline.1,
        sla.1,
        sla_trend.1,
        cold_timing,
        devices.1,
        iot_trend.1,
        ledger.1,
    ];
    d.corridors = corridors.0;
    d.methods = methods.0;
    d.payment_sizes = sizes.0;
    d.buyers = buyers.0;
    d.timeline = timeline.0;
    d.sla = sla.0;
    d.sla_trend = sla_trend.0;
    d.cold_chain = cold_chain;
    d.devices = devices.0;
    d.iot_trend = iot_trend.0;
    d.ledger = ledger.0;
    Ok(d)
}

type Timing = (&'static str, std::time::Duration);

/// The ledger row as `dashboard_ledger.sql` returns it, named by its
/// aliases.
#[derive(Debug, Row, Serialize, Deserialize)]
struct LedgerRow {
    topic: String,
    #[serde(rename = "n_seen")]
    seen: u64,
    #[serde(rename = "n_agg")]
    aggregated: u64,
    #[serde(rename = "n_late")]
    too_late: u64,
    #[serde(rename = "n_future")]
    future_timestamp: u64,
    #[serde(rename = "n_bad")]
    malformed: u64,
    #[serde(rename = "n_enum")]
    unknown_enum: u64,
    #[serde(rename = "n_invalid")]
    invalid: u64,
    #[serde(rename = "n_dup")]
    duplicate: u64,
}

/// What happened to every record read, per topic, all time.
async fn ledger(ch: &clickhouse::Client) -> Result<Vec<LedgerTotals>> {
    let rows: Vec<LedgerRow> = ch.query(q::DASHBOARD_LEDGER).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|l| LedgerTotals {
            topic: l.topic,
            seen: l.seen,
            aggregated: l.aggregated,
            too_late: l.too_late,
            future_timestamp: l.future_timestamp,
            malformed: l.malformed,
            unknown_enum: l.unknown_enum,
            invalid: l.invalid,
            duplicate: l.duplicate,
        })
        .collect())
}

/// Runs one panel's query and says how long it took.
async fn timed<T>(
    panel: &'static str,
    query: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Timing)> {
    let started = std::time::Instant::now();
    let out = query.await?;
    Ok((out, (panel, started.elapsed())))
}

impl Dashboard {
    /// The panels' query times as a `Server-Timing` header value
    /// (`corridors;dur=12.3, ...`, milliseconds), which a browser's
    /// developer tools show per request.
    pub fn server_timing(&self) -> String {
        self.timings
            .iter()
            .map(|(name, d)| format!("{name};dur={:.1}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// At most about [`TREND_POINTS`] points between `from` and `to`, each a
/// round length of time.
fn bucket_secs(from: u32, to: u32) -> u32 {
    let wanted = to.saturating_sub(from) / TREND_POINTS;
    NICE_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= wanted)
        .unwrap_or(wanted.div_ceil(86_400) * 86_400)
}

/// The `q`-quantiles of a merged histogram (`sumMap` keys and counts).
fn quantiles<const N: usize>(keys: &[i16], counts: &[u64], qs: [f64; N]) -> [Option<f64>; N] {
    let h = LogHistogram::from_arrays(keys, counts);
    qs.map(|q| h.quantile(q))
}

/// The distinct count of a union of packed HLL entries.
fn distinct(entries: &[u32]) -> u64 {
    Hll::from_packed(entries).estimate().round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outer SELECT's column names: each item's alias, or the bare
    /// column.
    fn select_columns(sql: &str) -> Vec<String> {
        let code: String = sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join(" ");
        let start = code.find("SELECT").expect("a SELECT") + "SELECT".len();
        let (mut depth, mut items, mut item) = (0i32, Vec::new(), String::new());
        let rest = &code[start..];
        for (i, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            if depth == 0 && rest[i..].starts_with(" FROM ") {
                break;
            }
            item.push(ch);
        }
        items.push(item);
        items
            .iter()
            .map(|it| {
                let it = it.trim();
                it.rsplit_once(" AS ")
                    .map_or(it, |(_, alias)| alias)
                    .trim()
                    .to_string()
            })
            .collect()
    }

    /// ClickHouse 22 and later match a row's fields to the result's
    /// columns by name: every row type must be named as its query's
    /// aliases.
    #[test]
    fn row_types_are_named_as_their_queries_columns() {
        fn names<R: Row>() -> Vec<String> {
            R::COLUMN_NAMES.iter().map(|s| s.to_string()).collect()
        }
        let pairs: Vec<(&str, &str, Vec<String>)> = vec![
            (
                "corridors",
                q::DASHBOARD_CORRIDORS,
                names::<payments::CorridorMoney>(),
            ),
            (
                "fx_rates",
                q::DASHBOARD_FX_RATES,
                names::<payments::Quote>(),
            ),
            (
                "methods",
                q::DASHBOARD_METHODS,
                names::<payments::MethodRow>(),
            ),
            (
                "payment_sizes",
                q::DASHBOARD_PAYMENT_SIZES,
                names::<payments::SizeRow>(),
            ),
            (
                "buyers",
                q::DASHBOARD_BUYERS,
                names::<payments::BuyersRow>(),
            ),
            (
                "payments_trend",
                q::DASHBOARD_PAYMENTS_TREND,
                names::<payments::TrendRow>(),
            ),
            ("sla", q::DASHBOARD_SLA, names::<logistics::SlaRow>()),
            (
                "sla_trend",
                q::DASHBOARD_LOGISTICS_TREND,
                names::<logistics::SlaTickRow>(),
            ),
            (
                "cold_chain",
                q::DASHBOARD_COLD_CHAIN,
                names::<iot::ColdChainRow>(),
            ),
            ("devices", q::DASHBOARD_DEVICES, names::<iot::DeviceRow>()),
            (
                "iot_trend",
                q::DASHBOARD_IOT_TREND,
                names::<iot::TrendRow>(),
            ),
            ("ledger", q::DASHBOARD_LEDGER, names::<LedgerRow>()),
        ];
        for (name, sql, fields) in pairs {
            assert_eq!(select_columns(sql), fields, "{name}");
        }
    }

    #[test]
    fn trends_have_at_most_about_120_round_points() {
        assert_eq!(bucket_secs(0, 3600), 60);
        assert_eq!(bucket_secs(0, 86_400), 900);
        assert_eq!(bucket_secs(0, 7 * 86_400), 7200);
        assert_eq!(bucket_secs(0, 400 * 86_400), 4 * 86_400);
    }

    #[test]
    fn quantiles_and_distinct_counts_come_from_the_sketches() {
        let mut h = LogHistogram::default();
        for v in 1..=1000u64 {
            h.add(v);
        }
        let (k, c) = h.to_arrays();
        let [p50, p99] = quantiles(&k, &c, [0.5, 0.99]);
        assert!((p50.unwrap() - 500.0).abs() <= 500.0 * 0.01 + 1.0);
        assert!((p99.unwrap() - 990.0).abs() <= 990.0 * 0.01 + 1.0);
        let mut hll = Hll::default();
        (0..5000u64).for_each(|i| hll.add(i));
        let n = distinct(&hll.to_packed());
        assert!((n as f64 - 5000.0).abs() < 5000.0 * 0.05, "{n}");
    }
}
