//! The logistics panels: delivery SLA per lane and mode, with transit-time
//! p50/p95 from the merged transit histograms against the promise (one day
//! domestic, three days international by default), and the SLA trend.

use clickhouse::error::Result;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use tradewind_clickhouse::queries as q;

use super::{bind, quantiles, Range};
use crate::selection::Selection;

#[derive(Debug, Serialize)]
pub struct Sla {
    pub origin: String,
    pub destination: String,
    pub mode: String,
    pub delivered: u64,
    pub on_time: u64,
    pub breaches: u64,
    pub transit_ms_sum: i64,
    /// Transit time quantiles of delivered shipments, hours.
    pub transit_p50_h: Option<f64>,
    pub transit_p95_h: Option<f64>,
}

/// One point of the SLA trend.
#[derive(Debug, Serialize)]
pub struct SlaTick {
    /// Unix seconds where the point's bucket starts.
    pub start: u32,
    pub delivered: u64,
    pub on_time: u64,
    pub breaches: u64,
}

// Rows as the queries return them, named by the queries' aliases (see
// `super::tests`).

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct SlaRow {
    origin: String,
    destination: String,
    mode: String,
    #[serde(rename = "n")]
    delivered: u64,
    #[serde(rename = "ok")]
    on_time: u64,
    #[serde(rename = "br")]
    breaches: u64,
    #[serde(rename = "transit")]
    transit_ms_sum: i64,
    #[serde(rename = "hist_keys")]
    keys: Vec<i16>,
    #[serde(rename = "hist_counts")]
    counts: Vec<u64>,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct SlaTickRow {
    #[serde(rename = "bucket")]
    start: u32,
    #[serde(rename = "n")]
    delivered: u64,
    #[serde(rename = "ok")]
    on_time: u64,
    #[serde(rename = "br")]
    breaches: u64,
}

const MS_PER_HOUR: f64 = 3_600_000.0;

/// Delivery SLA per lane and mode, busiest first.
pub async fn sla(ch: &clickhouse::Client, sel: &Selection, r: Range) -> Result<Vec<Sla>> {
    let rows: Vec<SlaRow> = bind(ch, q::DASHBOARD_SLA, sel, r).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|s| {
            let [p50, p95] = quantiles(&s.keys, &s.counts, [0.5, 0.95]);
            Sla {
                origin: s.origin,
                destination: s.destination,
                mode: s.mode,
                delivered: s.delivered,
                on_time: s.on_time,
                breaches: s.breaches,
                transit_ms_sum: s.transit_ms_sum,
                transit_p50_h: p50.map(|ms| ms / MS_PER_HOUR),
                transit_p95_h: p95.map(|ms| ms / MS_PER_HOUR),
            }
        })
        .collect())
}

/// Deliveries, on-time deliveries and breaches per bucket.
pub async fn trend(ch: &clickhouse::Client, sel: &Selection, r: Range) -> Result<Vec<SlaTick>> {
    let rows: Vec<SlaTickRow> = bind(ch, q::DASHBOARD_LOGISTICS_TREND, sel, r)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|t| SlaTick {
            start: t.start,
            delivered: t.delivered,
            on_time: t.on_time,
            breaches: t.breaches,
        })
        .collect())
}
