//! FX quotes: not windowed (no key, no aggregate), but run through the
//! engine like every other stream, so a quote stamped in the future or
//! past its lateness is rejected with the same rules, every quote is
//! booked in the ledger, and a partition restarts from a checkpoint. The
//! caller writes an accepted quote to `fx_rates` itself, with its offset
//! as the row's version.

use tradewind_proto::FxRate;

use super::Family;

pub struct FxQuotes;

impl Family for FxQuotes {
    type Event = FxRate;
    type Key = ();
    type Agg = ();
    type Timer = ();

    fn event_time(&self, e: &FxRate) -> i64 {
        e.event_time
    }

    /// A quote's pair and time.
    fn identity(&self, e: &FxRate) -> Option<u64> {
        Some(crate::dedup::identity(&[
            e.base as u64,
            e.quote as u64,
            e.event_time as u64,
        ]))
    }

    fn key(&self, _: &FxRate) -> Option<()> {
        None
    }

    fn fold(&self, _: &mut (), _: &FxRate) {}
}
