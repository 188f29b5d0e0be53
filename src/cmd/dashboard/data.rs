//! What the dashboard shows, read from ClickHouse on every request: the
//! latest `hours` of event time (ending at the newest window), summed over
//! `FINAL` rows of the metric tables, and money turned into USD at each
//! currency's latest FX quote.
//!
//! Every query sums versioned rows of the base tables with `FINAL`; that
//! equals the `*_merged` views' totals and lets ClickHouse prune by
//! `window_start`, the first column of every sort key. Aliases differ from
//! column names, which ClickHouse 18.16 needs.

use std::collections::BTreeMap;

use clickhouse::error::Result;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use tradewind_clickhouse::queries as q;
use tradewind_core::sketch::Hll;
use tradewind_proto::Currency;

/// The timeline's resolution: windows are summed into at most about this
/// many bars, each one of [`NICE_BUCKETS`] long (seconds).
const TIMELINE_BARS: u32 = 120;
const NICE_BUCKETS: [u32; 10] = [60, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400];

/// Everything on the page; also served as JSON at `/api/dashboard.json`.
#[derive(Debug, Default, Serialize)]
pub struct Dashboard {
    /// Unix seconds of the first and last window shown (0, 0 when empty).
    pub from: u32,
    pub to: u32,
    /// Seconds of event time per timeline bar.
    pub bucket_secs: u32,
    pub totals: Totals,
    pub corridors: Vec<Corridor>,
    pub methods: Vec<MethodHealth>,
    pub timeline: Vec<Tick>,
    pub sla: Vec<Sla>,
    pub cold_chain: Vec<ColdChain>,
    pub ledger: Vec<LedgerTotals>,
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
pub struct Corridor {
    pub payer: String,
    pub payee: String,
    pub payments: u64,
    pub failed: u64,
    pub volume_usd: f64,
}

#[derive(Debug, Row, Deserialize, Serialize)]
pub struct MethodHealth {
    pub method: String,
    pub payments: u64,
    pub captured: u64,
    pub failed: u64,
    pub refunded: u64,
}

#[derive(Debug, Row, Deserialize, Serialize)]
pub struct Tick {
    /// Unix seconds where the bar starts.
    pub start: u32,
    pub payments: u64,
    pub failed: u64,
}

#[derive(Debug, Row, Deserialize, Serialize)]
pub struct Sla {
    pub origin: String,
    pub destination: String,
    pub mode: String,
    pub delivered: u64,
    pub on_time: u64,
    pub breaches: u64,
    pub transit_ms_sum: i64,
}

#[derive(Debug, Row, Deserialize)]
struct ColdChainRow {
    country: String,
    kind: String,
    readings: u64,
    excursions: u64,
    silent: u64,
    silent_sketch: Vec<u32>,
}

#[derive(Debug, Serialize)]
pub struct ColdChain {
    pub country: String,
    pub kind: String,
    pub readings: u64,
    pub excursions: u64,
    pub silent: u64,
    /// Distinct devices that went quiet (HLL estimate).
    pub silent_devices: u64,
}

#[derive(Debug, Row, Deserialize, Serialize)]
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

#[derive(Debug, Row, Deserialize)]
struct CorridorMoney {
    payer: String,
    payee: String,
    currency: String,
    payments: u64,
    failed: u64,
    amount_minor: i64,
}

#[derive(Debug, Row, Deserialize)]
struct Quote {
    currency: String,
    rate_e9: i64,
}

/// Minor units of `currency` (a table label such as `JPY`) in USD, at
/// `rates` (units of the currency per USD, ×10⁹). Unknown rates count as
/// 1:1 rather than hiding the volume.
fn usd(minor: i64, currency: &str, rates: &BTreeMap<String, i64>) -> f64 {
    let digits = Currency::from_str_name(&format!("CURRENCY_{currency}"))
        .map(Currency::minor_digits)
        .unwrap_or(2);
    let units = minor as f64 / 10f64.powi(digits as i32);
    match rates.get(currency) {
        Some(r) if *r > 0 => units / (*r as f64 / 1e9),
        _ => units,
    }
}

/// Reads the dashboard for the latest `hours` of data (0: all of it): the
/// range, then one query per panel (each in `queries/` of
/// `tradewind-clickhouse`).
pub async fn load(ch: &clickhouse::Client, hours: u32) -> Result<Dashboard> {
    let (first, to): (u32, u32) = ch.query(q::DASHBOARD_RANGE).fetch_one().await?;
    // The other tables' windows may start before the first payment window,
    // so "everything" has no lower bound at all.
    let from = if hours == 0 {
        0
    } else {
        to.saturating_sub(hours * 3600)
    };
    let mut d = Dashboard {
        from,
        to,
        bucket_secs: bucket_secs(from.max(first), to),
        ..Default::default()
    };
    if to == 0 {
        return Ok(d);
    }
    let rates = fx_rates(ch).await?;
    d.corridors = corridors(ch, from, &rates, &mut d.totals).await?;
    d.methods = methods(ch, from, &mut d.totals).await?;
    d.timeline = timeline(ch, from, d.bucket_secs).await?;
    d.sla = sla(ch, from, &mut d.totals).await?;
    d.cold_chain = cold_chain(ch, from, &mut d.totals).await?;
    d.ledger = ch.query(q::DASHBOARD_LEDGER).fetch_all().await?;
    Ok(d)
}

/// At most about [`TIMELINE_BARS`] bars between `from` and `to`, each a
/// round length of time.
fn bucket_secs(from: u32, to: u32) -> u32 {
    let wanted = to.saturating_sub(from) / TIMELINE_BARS;
    NICE_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= wanted)
        .unwrap_or(wanted.div_ceil(86_400) * 86_400)
}

/// The latest rate of each currency, by its table label.
async fn fx_rates(ch: &clickhouse::Client) -> Result<BTreeMap<String, i64>> {
    Ok(ch
        .query(q::DASHBOARD_FX_RATES)
        .fetch_all::<Quote>()
        .await?
        .into_iter()
        .map(|q| (q.currency, q.rate_e9))
        .collect())
}

/// Corridor volumes in USD, largest first; adds the total volume.
async fn corridors(
    ch: &clickhouse::Client,
    from: u32,
    rates: &BTreeMap<String, i64>,
    totals: &mut Totals,
) -> Result<Vec<Corridor>> {
    let money: Vec<CorridorMoney> = ch
        .query(q::DASHBOARD_CORRIDORS)
        .bind(from)
        .fetch_all()
        .await?;
    let mut corridors: BTreeMap<(String, String), Corridor> = BTreeMap::new();
    for m in money {
        let v = usd(m.amount_minor, &m.currency, rates);
        totals.volume_usd += v;
        let c = corridors
            .entry((m.payer.clone(), m.payee.clone()))
            .or_insert_with(|| Corridor {
                payer: m.payer,
                payee: m.payee,
                payments: 0,
                failed: 0,
                volume_usd: 0.0,
            });
        c.payments += m.payments;
        c.failed += m.failed;
        c.volume_usd += v;
    }
    let mut out: Vec<Corridor> = corridors.into_values().collect();
    out.sort_by(|a, b| b.volume_usd.total_cmp(&a.volume_usd));
    Ok(out)
}

/// Payment health by method; adds the payment counts.
async fn methods(
    ch: &clickhouse::Client,
    from: u32,
    totals: &mut Totals,
) -> Result<Vec<MethodHealth>> {
    let methods: Vec<MethodHealth> = ch
        .query(q::DASHBOARD_METHODS)
        .bind(from)
        .fetch_all()
        .await?;
    for m in &methods {
        totals.payments += m.payments;
        totals.captured += m.captured;
        totals.failed += m.failed;
        totals.refunded += m.refunded;
    }
    Ok(methods)
}

async fn timeline(ch: &clickhouse::Client, from: u32, bucket: u32) -> Result<Vec<Tick>> {
    ch.query(q::DASHBOARD_TIMELINE)
        .bind(bucket)
        .bind(bucket)
        .bind(from)
        .fetch_all()
        .await
}

/// Delivery SLA per lane; adds the delivery counts.
async fn sla(ch: &clickhouse::Client, from: u32, totals: &mut Totals) -> Result<Vec<Sla>> {
    let sla: Vec<Sla> = ch.query(q::DASHBOARD_SLA).bind(from).fetch_all().await?;
    for s in &sla {
        totals.delivered += s.delivered;
        totals.on_time += s.on_time;
        totals.breaches += s.breaches;
    }
    Ok(sla)
}

/// Cold chain per country and device kind; adds the reading counts and the
/// distinct silent devices of the whole range.
async fn cold_chain(
    ch: &clickhouse::Client,
    from: u32,
    totals: &mut Totals,
) -> Result<Vec<ColdChain>> {
    let rows: Vec<ColdChainRow> = ch
        .query(q::DASHBOARD_COLD_CHAIN)
        .bind(from)
        .fetch_all()
        .await?;
    // The sketches merge by register (highest rank wins), so the union of
    // every row's entries estimates the distinct silent devices of the range.
    let mut all_silent = Hll::default();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let hll = Hll::from_packed(&r.silent_sketch);
        all_silent.merge(&hll);
        totals.readings += r.readings;
        totals.excursions += r.excursions;
        totals.silent += r.silent;
        out.push(ColdChain {
            country: r.country,
            kind: r.kind,
            readings: r.readings,
            excursions: r.excursions,
            silent: r.silent,
            silent_devices: hll.estimate().round() as u64,
        });
    }
    totals.silent_devices = all_silent.estimate().round() as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_turns_into_usd_by_minor_digits_and_rate() {
        let rates = BTreeMap::from([
            ("JPY".to_string(), 150_000_000_000),
            ("EUR".into(), 900_000_000),
        ]);
        assert!((usd(15_000, "JPY", &rates) - 100.0).abs() < 1e-9);
        assert!((usd(9_000, "EUR", &rates) - 100.0).abs() < 1e-9);
        assert!((usd(12_345, "USD", &rates) - 123.45).abs() < 1e-9);
    }
}
