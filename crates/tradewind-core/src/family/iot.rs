//! IoT health per device kind and country: readings, cold-chain excursions
//! (a cold-chain reading outside its temperature band), battery quantiles,
//! distinct devices, and silences: every reading pushes its device's
//! timer out to `event_time + gap`; if the watermark crosses it first, a
//! silence is counted in the window holding that moment (`silent`, one per
//! time a device goes quiet) and the device joins the window's HLL of
//! distinct silent devices (`silent_devices`), which merges across windows
//! into "how many devices went silent in this range".

use std::time::Duration;

use tradewind_proto::{DeviceKind, IotReading};

use super::{Family, TimerOp};
use crate::sketch::{Hll, LogHistogram};

pub struct IotHealth {
    pub silence_gap_ms: i64,
    /// Cold-chain band in centi-°C, inclusive.
    pub band_centi: (i32, i32),
}

impl IotHealth {
    pub fn new(silence_gap: Duration, band_c: [f64; 2]) -> Self {
        Self {
            silence_gap_ms: silence_gap.as_millis() as i64,
            band_centi: (
                (band_c[0] * 100.0).round() as i32,
                (band_c[1] * 100.0).round() as i32,
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IotKey {
    pub kind: i32,
    pub country: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IotAgg {
    pub readings: u64,
    pub excursions: u64,
    pub silent: u64,
    pub battery_hist: LogHistogram,
    pub devices: Hll,
    pub silent_devices: Hll,
}

fn key_of(e: &IotReading) -> IotKey {
    IotKey {
        kind: e.kind,
        country: e.country,
    }
}

impl Family for IotHealth {
    type Event = IotReading;
    type Key = IotKey;
    type Agg = IotAgg;
    /// The window key and the device.
    type Timer = (IotKey, u64);

    fn event_time(&self, e: &IotReading) -> i64 {
        e.event_time
    }

    /// A reading's device and event time.
    fn identity(&self, e: &IotReading) -> Option<u64> {
        Some(crate::dedup::identity(&[e.device_id, e.event_time as u64]))
    }

    fn key(&self, e: &IotReading) -> Option<IotKey> {
        Some(key_of(e))
    }

    fn fold(&self, a: &mut IotAgg, e: &IotReading) {
        a.readings += 1;
        if e.kind == DeviceKind::ColdChainContainer as i32 {
            let t = e.temperature_centi_c;
            a.excursions += (t < self.band_centi.0 || t > self.band_centi.1) as u64;
        }
        a.battery_hist.add(e.battery_permille as u64);
        a.devices.add(e.device_id);
    }

    fn timer_op(&self, e: &IotReading) -> TimerOp<(IotKey, u64)> {
        TimerOp::Extend {
            id: e.device_id,
            deadline: e.event_time.saturating_add(self.silence_gap_ms),
            timer: (key_of(e), e.device_id),
        }
    }

    fn timer_key(&self, t: &(IotKey, u64)) -> IotKey {
        t.0
    }

    fn fold_timer(&self, a: &mut IotAgg, t: &(IotKey, u64)) {
        a.silent += 1;
        a.silent_devices.add(t.1);
    }
}
