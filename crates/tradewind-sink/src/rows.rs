//! Table rows, one struct per ClickHouse table, built from the core's
//! window and ledger rows. Window starts are stored as `DateTime` (whole
//! seconds); versions are the core's source offsets.

use clickhouse::Row;
use serde::Serialize;
use tradewind_core::family::{
    CorridorAgg, CorridorKey, IotAgg, IotKey, LogisticsAgg, LogisticsKey,
};
use tradewind_core::{LedgerRow, WindowRow};

use tradewind_proto::{
    label_of, Country, Currency, DeviceKind, PaymentChannel, PaymentMethod, TransportMode,
};

fn code3(s: &str) -> [u8; 3] {
    let mut out = *b"???";
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b;
    }
    out
}

fn secs(ms: i64) -> u32 {
    (ms.div_euclid(1000)).clamp(0, u32::MAX as i64) as u32
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct CorridorRecord {
    pub window_start: u32,
    pub payer: String,
    pub payee: String,
    pub method: String,
    pub channel: String,
    pub currency: String,
    pub topic: String,
    pub partition: i32,
    pub version: u64,
    pub payments: u64,
    pub captured: u64,
    pub failed: u64,
    pub refunded: u64,
    pub amount_minor: i64,
    pub amount_min: i64,
    pub amount_max: i64,
    pub amount_hist_keys: Vec<i16>,
    pub amount_hist_counts: Vec<u64>,
    pub buyers_sketch: Vec<u32>,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct LogisticsRecord {
    pub window_start: u32,
    pub origin: String,
    pub destination: String,
    pub mode: String,
    pub topic: String,
    pub partition: i32,
    pub version: u64,
    pub delivered: u64,
    pub on_time: u64,
    pub transit_ms_sum: i64,
    pub transit_ms_max: i64,
    pub transit_hist_keys: Vec<i16>,
    pub transit_hist_counts: Vec<u64>,
    pub breaches: u64,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct IotRecord {
    pub window_start: u32,
    pub kind: String,
    pub country: String,
    pub topic: String,
    pub partition: i32,
    pub version: u64,
    pub readings: u64,
    pub excursions: u64,
    pub silent: u64,
    pub battery_hist_keys: Vec<i16>,
    pub battery_hist_counts: Vec<u64>,
    pub devices_sketch: Vec<u32>,
    pub silent_devices_sketch: Vec<u32>,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct LedgerRecord {
    pub topic: String,
    pub partition: i32,
    pub window_start: u32,
    pub version: u64,
    pub seen: u64,
    pub aggregated: u64,
    pub corrected_late: u64,
    pub too_late: u64,
    pub future_timestamp: u64,
    pub malformed: u64,
    pub unknown_enum: u64,
    pub invalid: u64,
    pub duplicate: u64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct FxRecord {
    /// `FixedString(3)` columns: three raw bytes each.
    pub base: [u8; 3],
    pub quote: [u8; 3],
    pub event_time: u32,
    pub event_time_ms: i64,
    pub rate_e9: i64,
    pub version: u64,
}

/// Everything emitted since the last acknowledged write. Add rows with the
/// `push_*` methods, which keep [`Batch::approx_bytes`] current.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub corridors: Vec<CorridorRecord>,
    pub logistics: Vec<LogisticsRecord>,
    pub iot: Vec<IotRecord>,
    pub ledger: Vec<LedgerRecord>,
    pub fx: Vec<FxRecord>,
    bytes: usize,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.corridors.len()
            + self.logistics.len()
            + self.iot.len()
            + self.ledger.len()
            + self.fx.len()
    }

    /// A rough size of the pending rows, for the sink's byte limit. Kept
    /// as a running sum by the `push_*` methods: the pipeline asks after
    /// every record, so it must not walk the rows.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `older` rows (a write that failed) in front of these, so the
    /// next write carries both.
    pub fn absorb_older(&mut self, mut older: Batch) {
        older.corridors.append(&mut self.corridors);
        older.logistics.append(&mut self.logistics);
        older.iot.append(&mut self.iot);
        older.ledger.append(&mut self.ledger);
        older.fx.append(&mut self.fx);
        older.bytes += self.bytes;
        *self = older;
    }

    /// Empties the batch and keeps its buffers for the next rows.
    pub fn clear(&mut self) {
        self.corridors.clear();
        self.logistics.clear();
        self.iot.clear();
        self.ledger.clear();
        self.fx.clear();
        self.bytes = 0;
    }

    pub fn push_corridor(&mut self, topic: &str, r: WindowRow<CorridorKey, CorridorAgg>) {
        let (keys, counts) = r.agg.amount_hist.to_arrays();
        let buyers = r.agg.buyers.to_packed();
        self.bytes += 96 + keys.len() * 10 + buyers.len() * 4;
        self.corridors.push(CorridorRecord {
            window_start: secs(r.window_start),
            payer: label_of::<Country>(r.key.payer),
            payee: label_of::<Country>(r.key.payee),
            method: label_of::<PaymentMethod>(r.key.method),
            channel: label_of::<PaymentChannel>(r.key.channel),
            currency: label_of::<Currency>(r.key.currency),
            topic: topic.to_string(),
            partition: r.partition,
            version: r.version as u64,
            payments: r.agg.payments,
            captured: r.agg.captured,
            failed: r.agg.failed,
            refunded: r.agg.refunded,
            amount_minor: r.agg.amount_minor,
            amount_min: r.agg.amount_min,
            amount_max: r.agg.amount_max,
            amount_hist_keys: keys,
            amount_hist_counts: counts,
            buyers_sketch: buyers,
        });
    }

    pub fn push_logistics(&mut self, topic: &str, r: WindowRow<LogisticsKey, LogisticsAgg>) {
        let (keys, counts) = r.agg.transit_hist.to_arrays();
        self.bytes += 96 + keys.len() * 10;
        self.logistics.push(LogisticsRecord {
            window_start: secs(r.window_start),
            origin: label_of::<Country>(r.key.origin),
            destination: label_of::<Country>(r.key.destination),
            mode: label_of::<TransportMode>(r.key.mode),
            topic: topic.to_string(),
            partition: r.partition,
            version: r.version as u64,
            delivered: r.agg.delivered,
            on_time: r.agg.on_time,
            transit_ms_sum: r.agg.transit_ms_sum,
            transit_ms_max: r.agg.transit_ms_max,
            transit_hist_keys: keys,
            transit_hist_counts: counts,
            breaches: r.agg.breaches,
        });
    }

    pub fn push_iot(&mut self, topic: &str, r: WindowRow<IotKey, IotAgg>) {
        let (keys, counts) = r.agg.battery_hist.to_arrays();
        let devices = r.agg.devices.to_packed();
        let silent_devices = r.agg.silent_devices.to_packed();
        self.bytes += 80 + keys.len() * 10 + (devices.len() + silent_devices.len()) * 4;
        self.iot.push(IotRecord {
            window_start: secs(r.window_start),
            kind: label_of::<DeviceKind>(r.key.kind),
            country: label_of::<Country>(r.key.country),
            topic: topic.to_string(),
            partition: r.partition,
            version: r.version as u64,
            readings: r.agg.readings,
            excursions: r.agg.excursions,
            silent: r.agg.silent,
            battery_hist_keys: keys,
            battery_hist_counts: counts,
            devices_sketch: devices,
            silent_devices_sketch: silent_devices,
        });
    }

    pub fn push_ledger(&mut self, topic: &str, l: LedgerRow) {
        self.bytes += 96;
        self.ledger.push(LedgerRecord {
            topic: topic.to_string(),
            partition: l.partition,
            window_start: secs(l.window_start),
            version: l.last_offset as u64,
            seen: l.seen,
            aggregated: l.aggregated,
            corrected_late: l.corrected_late,
            too_late: l.too_late,
            future_timestamp: l.future_timestamp,
            malformed: l.malformed,
            unknown_enum: l.unknown_enum,
            invalid: l.invalid,
            duplicate: l.duplicate,
            first_offset: l.first_offset,
            last_offset: l.last_offset,
        });
    }

    pub fn push_fx(&mut self, q: &tradewind_proto::FxRate, offset: i64) {
        self.bytes += 96;
        self.fx.push(FxRecord {
            base: code3(&label_of::<Currency>(q.base)),
            quote: code3(&label_of::<Currency>(q.quote)),
            event_time: secs(q.event_time),
            event_time_ms: q.event_time,
            rate_e9: q.rate_e9,
            version: offset.max(0) as u64,
        });
    }
}
