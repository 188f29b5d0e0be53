//! Trade corridors from payments, per payer, payee, method, channel and
//! currency (the wire enums' numbers). Money stays in integer minor units of
//! the row's currency; USD normalisation happens at query time from
//! `fx_rates`.

use tradewind_proto::{Payment, PaymentStatus};

use super::Family;
use crate::sketch::{Hll, LogHistogram};

pub struct PaymentCorridors;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorridorKey {
    pub payer: i32,
    pub payee: i32,
    pub method: i32,
    pub channel: i32,
    pub currency: i32,
}

/// Counts and sums add, min/max fold, the histogram merges bucket-wise.
/// Failure rate = failed / payments; refund rate = refunded / payments.
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
    /// Distinct buyers.
    pub buyers: Hll,
}

impl Family for PaymentCorridors {
    type Event = Payment;
    type Key = CorridorKey;
    type Agg = CorridorAgg;
    type Timer = ();

    fn event_time(&self, e: &Payment) -> i64 {
        e.event_time
    }

    /// A payment's id and status: a refund of a captured payment is a new
    /// event, a second CAPTURED of the same payment is a repeat.
    fn identity(&self, e: &Payment) -> Option<u64> {
        Some(crate::dedup::identity(&[e.payment_id, e.status as u64]))
    }

    fn key(&self, e: &Payment) -> Option<CorridorKey> {
        Some(CorridorKey {
            payer: e.payer_country,
            payee: e.payee_country,
            method: e.method,
            channel: e.channel,
            currency: e.currency,
        })
    }

    fn fold(&self, a: &mut CorridorAgg, e: &Payment) {
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
        // Saturating, never wrapping: see `validate` for the per-payment bound.
        a.amount_minor = a.amount_minor.saturating_add(e.amount_minor);
        a.amount_min = a.amount_min.min(e.amount_minor);
        a.amount_max = a.amount_max.max(e.amount_minor);
        a.amount_hist.add(e.amount_minor.max(0) as u64);
        a.buyers.add(e.buyer_id);
    }
}
