//! The IoT panels: cold chain per country and device kind (excursions,
//! silences and distinct silent devices), device health per kind (distinct
//! devices from the HLL sketches, battery p10 from the battery histograms),
//! and the IoT trend.

use clickhouse::error::Result;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use tradewind_clickhouse::queries as q;
use tradewind_core::sketch::Hll;

use super::{bind, distinct, quantiles, Range};
use crate::selection::Selection;

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

/// Device health of one kind.
#[derive(Debug, Serialize)]
pub struct DeviceHealth {
    pub kind: String,
    pub readings: u64,
    /// Distinct devices that reported (HLL estimate).
    pub devices: u64,
    /// The 10th percentile of battery readings, percent.
    pub battery_p10_pct: Option<f64>,
}

/// One point of the IoT trend.
#[derive(Debug, Serialize)]
pub struct IotTick {
    /// Unix seconds where the point's bucket starts.
    pub start: u32,
    pub readings: u64,
    pub excursions: u64,
    pub silent: u64,
    pub silent_devices: u64,
}

// Rows as the queries return them, named by the queries' aliases (see
// `super::tests`).

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct ColdChainRow {
    country: String,
    kind: String,
    #[serde(rename = "n")]
    readings: u64,
    #[serde(rename = "exc")]
    excursions: u64,
    #[serde(rename = "quiet")]
    silent: u64,
    #[serde(rename = "quiet_sketch")]
    silent_sketch: Vec<u32>,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct DeviceRow {
    kind: String,
    #[serde(rename = "n")]
    readings: u64,
    sketch: Vec<u32>,
    #[serde(rename = "hist_keys")]
    keys: Vec<i16>,
    #[serde(rename = "hist_counts")]
    counts: Vec<u64>,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct TrendRow {
    #[serde(rename = "bucket")]
    start: u32,
    #[serde(rename = "n")]
    readings: u64,
    #[serde(rename = "exc")]
    excursions: u64,
    #[serde(rename = "quiet")]
    silent: u64,
    #[serde(rename = "quiet_sketch")]
    silent_sketch: Vec<u32>,
}

/// Cold chain per country and kind, and the distinct silent devices of
/// the whole range.
pub async fn cold_chain(
    ch: &clickhouse::Client,
    sel: &Selection,
    r: Range,
) -> Result<(Vec<ColdChain>, u64)> {
    let rows: Vec<ColdChainRow> = bind(ch, q::DASHBOARD_COLD_CHAIN, sel, r)
        .fetch_all()
        .await?;
    // The sketches merge by register (highest rank wins), so the union of
    // every row's entries estimates the distinct silent devices of the range.
    let mut all_silent = Hll::default();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let hll = Hll::from_packed(&r.silent_sketch);
        all_silent.merge(&hll);
        out.push(ColdChain {
            country: r.country,
            kind: r.kind,
            readings: r.readings,
            excursions: r.excursions,
            silent: r.silent,
            silent_devices: hll.estimate().round() as u64,
        });
    }
    Ok((out, all_silent.estimate().round() as u64))
}

/// Distinct devices and battery p10 per kind.
pub async fn devices(
    ch: &clickhouse::Client,
    sel: &Selection,
    r: Range,
) -> Result<Vec<DeviceHealth>> {
    let rows: Vec<DeviceRow> = bind(ch, q::DASHBOARD_DEVICES, sel, r).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|d| {
            let [p10] = quantiles(&d.keys, &d.counts, [0.1]);
            DeviceHealth {
                devices: distinct(&d.sketch),
                // Battery readings are per mille.
                battery_p10_pct: p10.map(|pm| pm / 10.0),
                kind: d.kind,
                readings: d.readings,
            }
        })
        .collect())
}

/// Readings, excursions and silences (and distinct silent devices) per
/// bucket.
pub async fn trend(ch: &clickhouse::Client, sel: &Selection, r: Range) -> Result<Vec<IotTick>> {
    let rows: Vec<TrendRow> = bind(ch, q::DASHBOARD_IOT_TREND, sel, r).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|t| IotTick {
            silent_devices: distinct(&t.silent_sketch),
            start: t.start,
            readings: t.readings,
            excursions: t.excursions,
            silent: t.silent,
        })
        .collect())
}
