//! Metric families: what a window groups by and how an event folds into its
//! aggregate. The engine is generic over them.

use std::fmt::Debug;
use std::hash::Hash;

use tradewind_proto::{Payment, PaymentStatus};

use crate::sketch::LogHistogram;

/// One metric family: a keyed, mergeable aggregate over windows.
pub trait Family {
    type Event;
    type Key: Ord + Clone + Hash + Debug;
    type Agg: Default + Clone + PartialEq + Debug;

    fn event_time(e: &Self::Event) -> i64;
    fn key(e: &Self::Event) -> Self::Key;
    fn fold(agg: &mut Self::Agg, e: &Self::Event);
}

/// Trade corridors from payments: per payer, payee, method, channel and
/// currency (the wire enums' numbers).
pub struct PaymentCorridors;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorridorKey {
    pub payer: i32,
    pub payee: i32,
    pub method: i32,
    pub channel: i32,
    pub currency: i32,
}

/// Everything is exact and mergeable: counts and sums add, min/max fold,
/// the histogram merges bucket-wise. Money stays in integer minor units of
/// `currency`; USD normalisation happens at query time from `fx_rates`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorridorAgg {
    pub payments: u64,
    pub captured: u64,
    pub failed: u64,
    pub refunded: u64,
    pub amount_minor: i64,
    pub amount_min: i64,
    pub amount_max: i64,
    pub amount_hist: LogHistogram,
}

impl Family for PaymentCorridors {
    type Event = Payment;
    type Key = CorridorKey;
    type Agg = CorridorAgg;

    fn event_time(e: &Payment) -> i64 {
        e.event_time
    }

    fn key(e: &Payment) -> CorridorKey {
        CorridorKey {
            payer: e.payer_country,
            payee: e.payee_country,
            method: e.method,
            channel: e.channel,
            currency: e.currency,
        }
    }

    fn fold(a: &mut CorridorAgg, e: &Payment) {
        if a.payments == 0 {
            a.amount_min = e.amount_minor;
            a.amount_max = e.amount_minor;
        }
        a.payments += 1;
        match PaymentStatus::try_from(e.status) {
            Ok(PaymentStatus::Captured) => a.captured += 1,
            Ok(PaymentStatus::Failed) => a.failed += 1,
            Ok(PaymentStatus::Refunded) => a.refunded += 1,
            _ => {}
        }
        a.amount_minor += e.amount_minor;
        a.amount_min = a.amount_min.min(e.amount_minor);
        a.amount_max = a.amount_max.max(e.amount_minor);
        a.amount_hist.add(e.amount_minor.max(0) as u64);
    }
}
