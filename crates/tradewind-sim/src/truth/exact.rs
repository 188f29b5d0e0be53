//! Exact answers to the questions the aggregator's sketches answer
//! approximately, over everything the window rows count (each event once,
//! no clock-ahead device): payment-size quantiles per corridor and
//! currency, distinct buyers per corridor and method, transit-time
//! quantiles per lane and mode, and distinct devices and the battery p10
//! per device kind. Quantiles use the nearest-rank definition, as the
//! sketches do, so a test can hold each within the sketch's documented
//! error.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tradewind_proto::{Country, Currency, DeviceKind, PaymentMethod, TransportMode};

use crate::names::{CountryName, CurrencyName, DeviceKindName, MethodName, ModeName};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exact {
    pub payment_sizes: Vec<ExactSize>,
    pub buyers: Vec<ExactBuyers>,
    pub transit: Vec<ExactTransit>,
    pub devices: Vec<ExactDevices>,
}

/// Payment amounts of one corridor in one currency, minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactSize {
    pub payer: String,
    pub payee: String,
    pub currency: String,
    pub payments: u64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactBuyers {
    pub payer: String,
    pub payee: String,
    pub method: String,
    pub buyers: u64,
}

/// Transit times of delivered shipments, milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactTransit {
    pub origin: String,
    pub destination: String,
    pub mode: String,
    pub delivered: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactDevices {
    pub kind: String,
    pub devices: u64,
    /// Battery readings, per mille.
    pub battery_p10: u64,
}

/// The nearest-rank `q`-quantile of `values` (sorted here).
pub fn nearest_rank(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let n = values.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    values[rank - 1]
}

#[derive(Default)]
pub(crate) struct ExactBuilder {
    amounts: HashMap<(Country, Country, Currency), Vec<u64>>,
    buyers: HashMap<(Country, Country, PaymentMethod), HashSet<u64>>,
    transit: HashMap<(Country, Country, TransportMode), Vec<u64>>,
    devices: HashMap<DeviceKind, HashSet<u64>>,
    battery: HashMap<DeviceKind, Vec<u64>>,
}

impl ExactBuilder {
    pub(crate) fn payment(
        &mut self,
        corridor: (Country, Country),
        m: PaymentMethod,
        c: Currency,
        amount: i64,
        buyer: u64,
    ) {
        let (payer, payee) = corridor;
        self.amounts
            .entry((payer, payee, c))
            .or_default()
            .push(amount.max(0) as u64);
        self.buyers
            .entry((payer, payee, m))
            .or_default()
            .insert(buyer);
    }

    pub(crate) fn delivered(
        &mut self,
        lane: (Country, Country),
        mode: TransportMode,
        transit_ms: i64,
    ) {
        self.transit
            .entry((lane.0, lane.1, mode))
            .or_default()
            .push(transit_ms.max(0) as u64);
    }

    pub(crate) fn reading(&mut self, kind: DeviceKind, device: u64, battery_permille: u32) {
        self.devices.entry(kind).or_default().insert(device);
        self.battery
            .entry(kind)
            .or_default()
            .push(battery_permille as u64);
    }

    pub(crate) fn finish(&self) -> Exact {
        let amounts: BTreeMap<_, _> = self.amounts.iter().collect();
        let buyers: BTreeMap<_, _> = self.buyers.iter().collect();
        let transit: BTreeMap<_, _> = self.transit.iter().collect();
        let devices: BTreeMap<_, _> = self.devices.iter().collect();
        Exact {
            payment_sizes: amounts
                .into_iter()
                .map(|((payer, payee, currency), v)| {
                    let mut v = v.clone();
                    ExactSize {
                        payer: CountryName(*payer).to_string(),
                        payee: CountryName(*payee).to_string(),
                        currency: CurrencyName(*currency).to_string(),
                        payments: v.len() as u64,
                        p50: nearest_rank(&mut v, 0.5),
                        p95: nearest_rank(&mut v, 0.95),
                        p99: nearest_rank(&mut v, 0.99),
                    }
                })
                .collect(),
            buyers: buyers
                .into_iter()
                .map(|((payer, payee, method), ids)| ExactBuyers {
                    payer: CountryName(*payer).to_string(),
                    payee: CountryName(*payee).to_string(),
                    method: MethodName(*method).to_string(),
                    buyers: ids.len() as u64,
                })
                .collect(),
            transit: transit
                .into_iter()
                .map(|((origin, destination, mode), v)| {
                    let mut v = v.clone();
                    ExactTransit {
                        origin: CountryName(*origin).to_string(),
                        destination: CountryName(*destination).to_string(),
                        mode: ModeName(*mode).to_string(),
                        delivered: v.len() as u64,
                        p50_ms: nearest_rank(&mut v, 0.5),
                        p95_ms: nearest_rank(&mut v, 0.95),
                    }
                })
                .collect(),
            devices: devices
                .into_iter()
                .map(|(kind, ids)| {
                    let mut battery = self.battery[kind].clone();
                    ExactDevices {
                        kind: DeviceKindName(*kind).to_string(),
                        devices: ids.len() as u64,
                        battery_p10: nearest_rank(&mut battery, 0.1),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_the_sketch_definition() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(nearest_rank(&mut v, 0.5), 50);
        assert_eq!(nearest_rank(&mut v, 0.95), 95);
        assert_eq!(nearest_rank(&mut v, 0.0), 1);
        assert_eq!(nearest_rank(&mut v, 1.0), 100);
        assert_eq!(nearest_rank(&mut [], 0.5), 0);
    }
}
