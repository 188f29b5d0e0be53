//! The payments panels: corridor volumes in USD, payment health by method,
//! payment sizes (p50/p95/p99 from the amount histograms), distinct buyers
//! (HLL) per corridor and method, and the payments trend.

use std::collections::BTreeMap;

use clickhouse::error::Result;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use tradewind_clickhouse::queries as q;
use tradewind_proto::{Currency, Label};

use super::{bind, distinct, quantiles, Range};
use crate::selection::Selection;

#[derive(Debug, Serialize)]
pub struct Corridor {
    pub payer: String,
    pub payee: String,
    pub payments: u64,
    pub failed: u64,
    pub volume_usd: f64,
}

#[derive(Debug, Serialize)]
pub struct MethodHealth {
    pub method: String,
    pub payments: u64,
    pub captured: u64,
    pub failed: u64,
    pub refunded: u64,
}

/// Payment sizes of one corridor in one currency, in major units.
#[derive(Debug, Serialize)]
pub struct PaymentSize {
    pub payer: String,
    pub payee: String,
    pub currency: String,
    pub payments: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Distinct buyers of one corridor and method (HLL estimate).
#[derive(Debug, Serialize)]
pub struct Buyers {
    pub payer: String,
    pub payee: String,
    pub method: String,
    pub payments: u64,
    pub buyers: u64,
}

/// One point of the payments trend.
#[derive(Debug, Default, Serialize)]
pub struct Tick {
    /// Unix seconds where the point's bucket starts.
    pub start: u32,
    pub payments: u64,
    pub failed: u64,
    pub volume_usd: f64,
}

// Rows as the queries return them. Each serialised name is the query's
// column alias (see `super::tests`): ClickHouse 22 and later check them
// by name, and 18.16 needs aliases that differ from the columns summed.

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct CorridorMoney {
    payer: String,
    payee: String,
    currency: String,
    #[serde(rename = "n")]
    payments: u64,
    #[serde(rename = "bad")]
    failed: u64,
    #[serde(rename = "minor")]
    amount_minor: i64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct Quote {
    currency: String,
    #[serde(rename = "rate")]
    rate_e9: i64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct MethodRow {
    method: String,
    #[serde(rename = "n")]
    payments: u64,
    #[serde(rename = "ok")]
    captured: u64,
    #[serde(rename = "bad")]
    failed: u64,
    #[serde(rename = "back")]
    refunded: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct SizeRow {
    payer: String,
    payee: String,
    currency: String,
    #[serde(rename = "n")]
    payments: u64,
    #[serde(rename = "hist_keys")]
    keys: Vec<i16>,
    #[serde(rename = "hist_counts")]
    counts: Vec<u64>,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct BuyersRow {
    payer: String,
    payee: String,
    method: String,
    #[serde(rename = "n")]
    payments: u64,
    sketch: Vec<u32>,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct TrendRow {
    bucket: u32,
    currency: String,
    #[serde(rename = "n")]
    payments: u64,
    #[serde(rename = "bad")]
    failed: u64,
    #[serde(rename = "minor")]
    amount_minor: i64,
}

/// Decimal digits of a currency's minor unit (`JPY`: 0, most: 2).
fn minor_digits(currency: &str) -> u32 {
    Currency::parse_label(currency)
        .map(Currency::minor_digits)
        .unwrap_or(2)
}

/// Minor units of `currency` (a table label such as `JPY`) in USD, at
/// `rates` (units of the currency per USD, ×10⁹). Unknown rates count as
/// 1:1 rather than hiding the volume.
fn usd(minor: i64, currency: &str, rates: &BTreeMap<String, i64>) -> f64 {
    let units = minor as f64 / 10f64.powi(minor_digits(currency) as i32);
    match rates.get(currency) {
        Some(r) if *r > 0 => units / (*r as f64 / 1e9),
        _ => units,
    }
}

/// The latest rate of each currency, by its table label.
pub async fn fx_rates(ch: &clickhouse::Client) -> Result<BTreeMap<String, i64>> {
    Ok(ch
        .query(q::DASHBOARD_FX_RATES)
        .fetch_all::<Quote>()
        .await?
        .into_iter()
        .map(|q| (q.currency, q.rate_e9))
        .collect())
}

/// Corridor volumes in USD, largest first.
pub async fn corridors(
    ch: &clickhouse::Client,
    sel: &Selection,
    r: Range,
    rates: &BTreeMap<String, i64>,
) -> Result<Vec<Corridor>> {
    let money: Vec<CorridorMoney> = bind(ch, q::DASHBOARD_CORRIDORS, sel, r).fetch_all().await?;
    let mut corridors: BTreeMap<(String, String), Corridor> = BTreeMap::new();
    for m in money {
        let v = usd(m.amount_minor, &m.currency, rates);
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

/// Payment health by method.
pub async fn methods(
    ch: &clickhouse::Client,
    sel: &Selection,
    r: Range,
) -> Result<Vec<MethodHealth>> {
    let rows: Vec<MethodRow> = bind(ch, q::DASHBOARD_METHODS, sel, r).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|m| MethodHealth {
            method: m.method,
            payments: m.payments,
            captured: m.captured,
            failed: m.failed,
            refunded: m.refunded,
        })
        .collect())
}

/// Payment sizes per corridor and currency, busiest first.
pub async fn sizes(ch: &clickhouse::Client, sel: &Selection, r: Range) -> Result<Vec<PaymentSize>> {
    let rows: Vec<SizeRow> = bind(ch, q::DASHBOARD_PAYMENT_SIZES, sel, r)
        .fetch_all()
        .await?;
    let mut out: Vec<PaymentSize> = rows
        .into_iter()
        .filter_map(|s| {
            let scale = 10f64.powi(minor_digits(&s.currency) as i32);
            let [p50, p95, p99] = quantiles(&s.keys, &s.counts, [0.5, 0.95, 0.99]);
            Some(PaymentSize {
                p50: p50? / scale,
                p95: p95? / scale,
                p99: p99? / scale,
                payer: s.payer,
                payee: s.payee,
                currency: s.currency,
                payments: s.payments,
            })
        })
        .collect();
    out.sort_by_key(|x| std::cmp::Reverse(x.payments));
    Ok(out)
}

/// Distinct buyers per corridor and method, busiest first.
pub async fn buyers(ch: &clickhouse::Client, sel: &Selection, r: Range) -> Result<Vec<Buyers>> {
    let rows: Vec<BuyersRow> = bind(ch, q::DASHBOARD_BUYERS, sel, r).fetch_all().await?;
    let mut out: Vec<Buyers> = rows
        .into_iter()
        .map(|b| Buyers {
            buyers: distinct(&b.sketch),
            payer: b.payer,
            payee: b.payee,
            method: b.method,
            payments: b.payments,
        })
        .collect();
    out.sort_by_key(|x| std::cmp::Reverse(x.payments));
    Ok(out)
}

/// Payments, failures and USD volume per bucket.
pub async fn trend(
    ch: &clickhouse::Client,
    sel: &Selection,
    r: Range,
    rates: &BTreeMap<String, i64>,
) -> Result<Vec<Tick>> {
    let rows: Vec<TrendRow> = bind(ch, q::DASHBOARD_PAYMENTS_TREND, sel, r)
        .fetch_all()
        .await?;
    let mut out: Vec<Tick> = Vec::new();
    for row in rows {
        if out.last().is_none_or(|t| t.start != row.bucket) {
            out.push(Tick {
                start: row.bucket,
                ..Tick::default()
            });
        }
        let t = out.last_mut().expect("pushed above");
        t.payments += row.payments;
        t.failed += row.failed;
        t.volume_usd += usd(row.amount_minor, &row.currency, rates);
    }
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
