//! Logistics SLA per origin, destination and transport mode. A DELIVERED
//! milestone carries its shipment's `created_time`, so transit time and
//! on-time status come from the event itself. A shipment's first milestone
//! arms a timer at `created_time + SLA`; DELIVERED disarms it. If the
//! watermark crosses the deadline first, a `missing_milestone` breach is
//! counted in the window holding the deadline, at that moment, not when the
//! delivery finally shows up.

use std::time::Duration;

use tradewind_proto::{LogisticsEvent, Milestone};

use super::{Family, TimerOp};
use crate::sketch::LogHistogram;

pub struct LogisticsSla {
    pub domestic_ms: i64,
    pub international_ms: i64,
}

impl LogisticsSla {
    pub fn new(domestic: Duration, international: Duration) -> Self {
        Self {
            domestic_ms: domestic.as_millis() as i64,
            international_ms: international.as_millis() as i64,
        }
    }

    fn sla(&self, e: &LogisticsEvent) -> i64 {
        if e.origin_country == e.destination_country {
            self.domestic_ms
        } else {
            self.international_ms
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogisticsKey {
    pub origin: i32,
    pub destination: i32,
    pub mode: i32,
}

/// On-time share = on_time / delivered; transit quantiles from the histogram
/// (milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogisticsAgg {
    pub delivered: u64,
    pub on_time: u64,
    pub transit_ms_sum: i64,
    pub transit_ms_max: i64,
    pub transit_hist: LogHistogram,
    pub breaches: u64,
}

fn key_of(e: &LogisticsEvent) -> LogisticsKey {
    LogisticsKey {
        origin: e.origin_country,
        destination: e.destination_country,
        mode: e.mode,
    }
}

impl Family for LogisticsSla {
    type Event = LogisticsEvent;
    type Key = LogisticsKey;
    type Agg = LogisticsAgg;
    type Timer = LogisticsKey;

    fn event_time(&self, e: &LogisticsEvent) -> i64 {
        e.event_time
    }

    /// A shipment's milestone: each is reported once.
    fn identity(&self, e: &LogisticsEvent) -> Option<u64> {
        Some(crate::dedup::identity(&[e.shipment_id, e.milestone as u64]))
    }

    fn key(&self, e: &LogisticsEvent) -> Option<LogisticsKey> {
        (e.milestone == Milestone::Delivered as i32).then(|| key_of(e))
    }

    fn fold(&self, a: &mut LogisticsAgg, e: &LogisticsEvent) {
        let transit = (e.event_time - e.created_time).max(0);
        a.delivered += 1;
        a.on_time += (transit <= self.sla(e)) as u64;
        a.transit_ms_sum += transit;
        a.transit_ms_max = a.transit_ms_max.max(transit);
        a.transit_hist.add(transit as u64);
    }

    fn timer_op(&self, e: &LogisticsEvent) -> TimerOp<LogisticsKey> {
        let deadline = e.created_time.saturating_add(self.sla(e));
        if e.milestone == Milestone::Delivered as i32 {
            TimerOp::Disarm {
                id: e.shipment_id,
                deadline,
            }
        } else {
            TimerOp::Arm {
                id: e.shipment_id,
                deadline,
                timer: key_of(e),
            }
        }
    }

    fn timer_key(&self, t: &LogisticsKey) -> LogisticsKey {
        *t
    }

    fn fold_timer(&self, a: &mut LogisticsAgg, _t: &LogisticsKey) {
        a.breaches += 1;
    }
}
