//! The validation rules: which fields each message must set and the ranges
//! its values must fall in. A decoded record that breaks one is rejected
//! `invalid`, and its DLQ record names the first offending field in the
//! `invalid.field` header. The README's "Validation rules" lists the same
//! bounds; change both together.
//!
//! Times are checked for plausibility here (not before 2000-01-01); a time
//! ahead of the record's Kafka time is the core's `future_timestamp`.

use tradewind_core::Reason;
use tradewind_proto::{FxRate, IotReading, LogisticsEvent, Payment};

/// 2000-01-01T00:00:00Z: no event Tradewind aggregates is older.
pub const EARLIEST_EVENT_MS: i64 = 946_684_800_000;
/// The largest single payment, in minor units of its currency: 10^12 (ten
/// billion yuan, a trillion yen). Bounding each amount is what keeps the
/// per-window sums far from `i64` overflow; the core also saturates them.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;
/// A shipment in transit longer than a year is a data error.
pub const MAX_TRANSIT_MS: i64 = 366 * 24 * 3_600_000;
/// Physical ranges of IoT readings: °C × 100, ‰ and micro-degrees.
pub const TEMPERATURE_CENTI_C: (i32, i32) = (-8_000, 10_000);
pub const PERMILLE_MAX: u32 = 1_000;
/// FX rates as `rate × 10^9`: from 10^-6 to 10^6 units of the quote
/// currency per unit of the base currency.
pub const FX_RATE_E9: (i64, i64) = (1_000, 1_000_000_000_000_000);

fn check(ok: bool, field: &'static str) -> Result<(), Reason> {
    if ok {
        Ok(())
    } else {
        Err(Reason::Invalid(field))
    }
}

fn time(t: i64, field: &'static str) -> Result<(), Reason> {
    check(t >= EARLIEST_EVENT_MS, field)
}

pub fn payment(p: &Payment) -> Result<(), Reason> {
    check(p.payment_id != 0, "payment_id")?;
    time(p.event_time, "event_time")?;
    check(
        p.amount_minor > 0 && p.amount_minor <= MAX_AMOUNT_MINOR,
        "amount_minor",
    )?;
    check(p.method != 0, "method")?;
    check(p.channel != 0, "channel")?;
    check(p.payer_country != 0, "payer_country")?;
    check(p.payee_country != 0, "payee_country")?;
    check(p.currency != 0, "currency")?;
    check(p.status != 0, "status")
}

pub fn reading(r: &IotReading) -> Result<(), Reason> {
    check(r.device_id != 0, "device_id")?;
    time(r.event_time, "event_time")?;
    check(r.kind != 0, "kind")?;
    check(r.country != 0, "country")?;
    let (lo, hi) = TEMPERATURE_CENTI_C;
    check(
        (lo..=hi).contains(&r.temperature_centi_c),
        "temperature_centi_c",
    )?;
    check(r.humidity_permille <= PERMILLE_MAX, "humidity_permille")?;
    check(r.battery_permille <= PERMILLE_MAX, "battery_permille")?;
    check(r.lat_micro_deg.abs() <= 90_000_000, "lat_micro_deg")?;
    check(r.lon_micro_deg.abs() <= 180_000_000, "lon_micro_deg")
}

pub fn logistics(e: &LogisticsEvent) -> Result<(), Reason> {
    check(e.shipment_id != 0, "shipment_id")?;
    time(e.event_time, "event_time")?;
    check(e.mode != 0, "mode")?;
    check(e.origin_country != 0, "origin_country")?;
    check(e.destination_country != 0, "destination_country")?;
    check(e.milestone != 0, "milestone")?;
    time(e.created_time, "created_time")?;
    let transit = e.event_time.saturating_sub(e.created_time);
    check((0..=MAX_TRANSIT_MS).contains(&transit), "created_time")
}

pub fn fx(q: &FxRate) -> Result<(), Reason> {
    check(q.base != 0, "base")?;
    check(q.quote != 0 && q.quote != q.base, "quote")?;
    time(q.event_time, "event_time")?;
    let (lo, hi) = FX_RATE_E9;
    check((lo..=hi).contains(&q.rate_e9), "rate_e9")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradewind_proto::Milestone;

    fn good_payment() -> Payment {
        Payment {
            payment_id: 1,
            event_time: 1_800_000_000_000,
            method: 1,
            channel: 1,
            payer_country: 1,
            payee_country: 2,
            currency: 1,
            amount_minor: 100,
            status: 2,
            ..Default::default()
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(payment(&good_payment()), Ok(()));
        let bad = |f: fn(&mut Payment)| {
            let mut p = good_payment();
            f(&mut p);
            payment(&p).unwrap_err().field()
        };
        assert_eq!(bad(|p| p.payment_id = 0), Some("payment_id"));
        assert_eq!(bad(|p| p.amount_minor = 0), Some("amount_minor"));
        assert_eq!(bad(|p| p.amount_minor = -5), Some("amount_minor"));
        assert_eq!(bad(|p| p.amount_minor = i64::MAX), Some("amount_minor"));
        assert_eq!(bad(|p| p.event_time = -1), Some("event_time"));
        assert_eq!(bad(|p| p.status = 0), Some("status"));
        // An empty payload decodes as an all-default message: invalid, not 1970.
        assert_eq!(
            payment(&Payment::default()).unwrap_err().field(),
            Some("payment_id")
        );

        let delivered = LogisticsEvent {
            shipment_id: 9,
            event_time: 1_800_000_000_000,
            mode: 1,
            origin_country: 1,
            destination_country: 2,
            milestone: Milestone::Delivered as i32,
            created_time: 0,
            ..Default::default()
        };
        assert_eq!(
            logistics(&delivered).unwrap_err().field(),
            Some("created_time")
        );
        let ahead = LogisticsEvent {
            created_time: 1_800_000_000_001,
            ..delivered
        };
        assert_eq!(logistics(&ahead).unwrap_err().field(), Some("created_time"));

        let quote = FxRate {
            base: 1,
            quote: 2,
            rate_e9: 1,
            event_time: 1_800_000_000_000,
        };
        assert_eq!(fx(&quote).unwrap_err().field(), Some("rate_e9"));
        assert_eq!(
            fx(&FxRate {
                rate_e9: 140_000_000,
                ..quote
            }),
            Ok(())
        );
    }
}
