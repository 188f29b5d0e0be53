//! Ground truth: what the simulator produced, tallied from its own event
//! structs (never from decoded Kafka records), so tests can check consumers
//! and the aggregator against it.
//!
//! Every produced record passes through [`TruthBuilder::record`] (topic
//! counts and an order-independent checksum); every decodable event also
//! through one of the `*_event` methods (per-window aggregates keyed by
//! event time). [`TruthBuilder::finish`] sorts it all into a [`Truth`] that
//! serialises to JSON.
//!
//! Conventions, chosen so a consumer can compare either way:
//! - window rows count each event once: a duplicate (the same record
//!   again) is left out of the counts and only noted in the row's
//!   `duplicates`, as Tradewind's deduplication does;
//! - events from devices whose clock runs ahead are left out of the window
//!   rows (a correct aggregator rejects them) and counted per topic instead;
//! - late and jittered records are in their event-time window.

mod exact;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tradewind_proto::{
    Country, Currency, DeviceKind, FxRate, IotReading, LogisticsEvent, Milestone, Payment,
    PaymentChannel, PaymentMethod, PaymentStatus, Stream, TransportMode,
};

use self::exact::ExactBuilder;
pub use self::exact::{nearest_rank, Exact, ExactBuyers, ExactDevices, ExactSize, ExactTransit};
use crate::names::{ChannelName, CountryName, CurrencyName, DeviceKindName, MethodName, ModeName};

/// Order-independent checksum of one Kafka record: sum these (wrapping) over
/// a topic to compare what was produced with what was consumed.
pub fn record_checksum(key: &[u8], payload: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(payload, xxhash_rust::xxh3::xxh3_64(key))
}

/// How a record came to be, beyond being a plain event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub duplicate: bool,
    pub late: bool,
    pub jittered: bool,
    pub clock_ahead: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicTruth {
    /// Every record produced, duplicates and poison included.
    pub records: u64,
    pub bytes: u64,
    pub duplicates: u64,
    pub poison: u64,
    pub late: u64,
    pub jittered: u64,
    pub clock_ahead: u64,
    /// Wrapping sum of [`record_checksum`] over all records.
    pub checksum: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRow {
    pub window_start_ms: i64,
    pub payer: String,
    pub payee: String,
    pub method: String,
    pub channel: String,
    pub currency: String,
    pub count: u64,
    pub duplicates: u64,
    pub amount_minor: i64,
    pub captured: u64,
    pub failed: u64,
    pub refunded: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogisticsRow {
    pub window_start_ms: i64,
    pub origin: String,
    pub destination: String,
    pub mode: String,
    pub events: u64,
    pub duplicates: u64,
    pub created: u64,
    pub delivered: u64,
    pub on_time: u64,
    pub transit_ms_sum: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IotRow {
    pub window_start_ms: i64,
    pub kind: String,
    pub country: String,
    pub readings: u64,
    pub duplicates: u64,
    pub excursions: u64,
    pub battery_permille_sum: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRow {
    pub window_start_ms: i64,
    pub pair: String,
    pub quotes: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub start_ms: i64,
    pub window_ms: i64,
    pub sla_domestic_ms: i64,
    pub sla_international_ms: i64,
    pub topics: BTreeMap<String, TopicTruth>,
    pub payments: Vec<PaymentRow>,
    pub logistics: Vec<LogisticsRow>,
    pub iot: Vec<IotRow>,
    pub fx: Vec<FxRow>,
    /// Exact answers for the sketch-based panels (quantiles, distinct
    /// counts) over everything the window rows count.
    #[serde(default)]
    pub exact: Exact,
}

impl Truth {
    /// Records over all topics.
    pub fn total_records(&self) -> u64 {
        self.topics.values().map(|t| t.records).sum()
    }
}

type PayKey = (
    i64,
    Country,
    Country,
    PaymentMethod,
    PaymentChannel,
    Currency,
);
type LogKey = (i64, Country, Country, TransportMode);
type IotKey = (i64, DeviceKind, Country);
type FxKey = (i64, Currency, Currency);

#[derive(Default)]
pub(crate) struct TruthBuilder {
    windows: bool,
    window_ms: i64,
    sla: (i64, i64),
    topics: [TopicTruth; 4],
    pay: HashMap<PayKey, PaymentRow>,
    log: HashMap<LogKey, LogisticsRow>,
    iot: HashMap<IotKey, IotRow>,
    fx: HashMap<FxKey, FxRow>,
    exact: ExactBuilder,
}

fn topic_index(s: Stream) -> usize {
    match s {
        Stream::Payments => 0,
        Stream::Iot => 1,
        Stream::Logistics => 2,
        Stream::Fx => 3,
    }
}

impl TruthBuilder {
    /// `windows` turns the per-window tallies on; topic counts are always kept.
    pub(crate) fn new(
        windows: bool,
        window_ms: i64,
        sla_domestic_ms: i64,
        sla_international_ms: i64,
    ) -> Self {
        Self {
            windows,
            window_ms,
            sla: (sla_domestic_ms, sla_international_ms),
            ..Default::default()
        }
    }

    pub(crate) fn record(
        &mut self,
        stream: Stream,
        key: &[u8],
        payload: &[u8],
        flags: Flags,
        poison: bool,
    ) {
        let t = &mut self.topics[topic_index(stream)];
        t.records += 1;
        t.bytes += payload.len() as u64;
        t.checksum = t.checksum.wrapping_add(record_checksum(key, payload));
        t.duplicates += flags.duplicate as u64;
        t.poison += poison as u64;
        t.late += flags.late as u64;
        t.jittered += flags.jittered as u64;
        t.clock_ahead += flags.clock_ahead as u64;
    }

    fn window(&self, t: i64) -> i64 {
        t.div_euclid(self.window_ms) * self.window_ms
    }

    pub(crate) fn payment(&mut self, p: &Payment, f: Flags) {
        if !self.windows || f.clock_ahead {
            return;
        }
        let (payer, payee, method, channel, currency) = (
            p.payer_country(),
            p.payee_country(),
            p.method(),
            p.channel(),
            p.currency(),
        );
        let key = (
            self.window(p.event_time),
            payer,
            payee,
            method,
            channel,
            currency,
        );
        if f.duplicate {
            // Counted once: a repeat is only noted.
            if let Some(row) = self.pay.get_mut(&key) {
                row.duplicates += 1;
            }
            return;
        }
        let row = self.pay.entry(key).or_insert_with(|| PaymentRow {
            window_start_ms: key.0,
            payer: CountryName(payer).to_string(),
            payee: CountryName(payee).to_string(),
            method: MethodName(method).to_string(),
            channel: ChannelName(channel).to_string(),
            currency: CurrencyName(currency).to_string(),
            count: 0,
            duplicates: 0,
            amount_minor: 0,
            captured: 0,
            failed: 0,
            refunded: 0,
        });
        row.count += 1;
        row.amount_minor += p.amount_minor;
        self.exact
            .payment((payer, payee), method, currency, p.amount_minor, p.buyer_id);
        match p.status() {
            PaymentStatus::Captured => row.captured += 1,
            PaymentStatus::Failed => row.failed += 1,
            PaymentStatus::Refunded => row.refunded += 1,
            _ => {}
        }
    }

    pub(crate) fn logistics(&mut self, e: &LogisticsEvent, f: Flags) {
        if !self.windows || f.clock_ahead {
            return;
        }
        let (origin, dest, mode) = (e.origin_country(), e.destination_country(), e.mode());
        let key = (self.window(e.event_time), origin, dest, mode);
        if f.duplicate {
            if let Some(row) = self.log.get_mut(&key) {
                row.duplicates += 1;
            }
            return;
        }
        let sla = if origin == dest {
            self.sla.0
        } else {
            self.sla.1
        };
        let row = self.log.entry(key).or_insert_with(|| LogisticsRow {
            window_start_ms: key.0,
            origin: CountryName(origin).to_string(),
            destination: CountryName(dest).to_string(),
            mode: ModeName(mode).to_string(),
            events: 0,
            duplicates: 0,
            created: 0,
            delivered: 0,
            on_time: 0,
            transit_ms_sum: 0,
        });
        row.events += 1;
        match e.milestone() {
            Milestone::Created => row.created += 1,
            Milestone::Delivered => {
                let transit = e.event_time - e.created_time;
                row.delivered += 1;
                row.transit_ms_sum += transit;
                self.exact.delivered((origin, dest), mode, transit);
                row.on_time += (transit <= sla) as u64;
            }
            _ => {}
        }
    }

    pub(crate) fn iot(&mut self, r: &IotReading, f: Flags, excursion: bool) {
        if !self.windows || f.clock_ahead {
            return;
        }
        let key = (self.window(r.event_time), r.kind(), r.country());
        if f.duplicate {
            if let Some(row) = self.iot.get_mut(&key) {
                row.duplicates += 1;
            }
            return;
        }
        let row = self.iot.entry(key).or_insert_with(|| IotRow {
            window_start_ms: key.0,
            kind: DeviceKindName(key.1).to_string(),
            country: CountryName(key.2).to_string(),
            readings: 0,
            duplicates: 0,
            excursions: 0,
            battery_permille_sum: 0,
        });
        row.readings += 1;
        row.excursions += excursion as u64;
        self.exact.reading(key.1, r.device_id, r.battery_permille);
        row.battery_permille_sum += r.battery_permille as u64;
    }

    pub(crate) fn fx(&mut self, q: &FxRate, f: Flags) {
        if !self.windows || f.clock_ahead {
            return;
        }
        let key = (self.window(q.event_time), q.base(), q.quote());
        if f.duplicate {
            if let Some(row) = self.fx.get_mut(&key) {
                row.duplicates += 1;
            }
            return;
        }
        let row = self.fx.entry(key).or_insert_with(|| FxRow {
            window_start_ms: key.0,
            pair: format!("{}/{}", CurrencyName(key.1), CurrencyName(key.2)),
            quotes: 0,
            duplicates: 0,
        });
        row.quotes += 1;
    }

    pub(crate) fn topics(&self) -> BTreeMap<String, TopicTruth> {
        Stream::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), self.topics[topic_index(*s)].clone()))
            .collect()
    }

    pub(crate) fn finish(&self, seed: u64, start_ms: i64) -> Truth {
        fn sorted<K: Ord + Copy, V: Clone>(m: &HashMap<K, V>) -> Vec<V> {
            let mut v: Vec<(K, V)> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
            v.sort_by_key(|e| e.0);
            v.into_iter().map(|(_, v)| v).collect()
        }
        Truth {
            seed,
            start_ms,
            window_ms: self.window_ms,
            sla_domestic_ms: self.sla.0,
            sla_international_ms: self.sla.1,
            topics: self.topics(),
            payments: sorted(&self.pay),
            logistics: sorted(&self.log),
            iot: sorted(&self.iot),
            fx: sorted(&self.fx),
            exact: self.exact.finish(),
        }
    }
}
