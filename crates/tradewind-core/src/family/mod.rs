//! Metric families: what a window groups by, how an event folds into its
//! aggregate, and which entity timers it drives. The engine is generic over
//! them; each family is one row type (and one ClickHouse table).
//!
//! - [`PaymentCorridors`]: trade corridors from payments;
//! - [`LogisticsSla`]: deliveries, on-time share, transit quantiles and
//!   missing-milestone breaches per corridor and mode;
//! - [`IotHealth`]: readings, cold-chain excursions, silent devices, battery
//!   quantiles and distinct devices per device kind and country;
//! - [`FxQuotes`]: FX quotes, validated and booked but not windowed.

mod fx;
mod iot;
mod logistics;
mod payments;

use std::fmt::Debug;
use std::hash::Hash;

pub use fx::FxQuotes;
pub use iot::{IotAgg, IotHealth, IotKey};
pub use logistics::{LogisticsAgg, LogisticsKey, LogisticsSla};
pub use payments::{CorridorAgg, CorridorKey, PaymentCorridors};

pub use crate::timers::TimerOp;

/// One metric family: a keyed, mergeable aggregate over windows, plus
/// optional per-entity timers.
pub trait Family {
    type Event;
    type Key: Ord + Clone + Hash + Debug;
    type Agg: Default + Clone + PartialEq + Debug;
    /// What a fired timer folds into its window (often just the key).
    type Timer: Clone + Debug;

    fn event_time(&self, e: &Self::Event) -> i64;
    /// The window key an event feeds, if it feeds windows at all.
    fn key(&self, e: &Self::Event) -> Option<Self::Key>;
    fn fold(&self, agg: &mut Self::Agg, e: &Self::Event);
    /// The event's identity for deduplication ([`crate::dedup::identity`]
    /// of its identifying fields), or `None` if it has none.
    fn identity(&self, _e: &Self::Event) -> Option<u64> {
        None
    }

    fn timer_op(&self, _e: &Self::Event) -> TimerOp<Self::Timer> {
        TimerOp::None
    }
    fn timer_key(&self, _t: &Self::Timer) -> Self::Key {
        unreachable!("a family that sets timers maps them to keys")
    }
    fn fold_timer(&self, _agg: &mut Self::Agg, _t: &Self::Timer) {}
}
