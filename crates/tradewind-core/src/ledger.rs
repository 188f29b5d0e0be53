//! The reconciliation ledger of one partition: events seen, aggregated,
//! corrected late and rejected by reason, with the offset range, per
//! tumbling window of the partition's event-time frontier. The frontier
//! only moves forward, so each row covers a contiguous run of offsets and
//! is final once the frontier leaves its window.

use crate::config::Timing;
use crate::engine::NO_TIME;

/// The ledger window of records that arrive before a partition's first
/// accepted event (all rejected, since nothing was accepted yet): the Unix
/// epoch, 1970-01-01 00:00:00. Placing them there depends only on the input,
/// so a partition that only ever sees rejections still books them, and a
/// replay books them identically.
pub const BEFORE_FIRST_EVENT: i64 = 0;
use crate::output::{LedgerRow, Reason};
use tradewind_proto as pb;

/// What became of one record, for its ledger row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Booking {
    /// Folded into its windows; `late` if a window was already closed.
    Aggregated {
        late: bool,
    },
    /// A repeat of an event already counted.
    Duplicate,
    Rejected(Reason),
}

pub(crate) struct OpenLedger {
    partition: i32,
    open: Option<Open>,
    /// After a restore: offsets below this belong to rows already final.
    skip_below: i64,
}

struct Open {
    row: LedgerRow,
    frontier_before: i64,
    dirty: bool,
}

impl OpenLedger {
    pub(crate) fn new(partition: i32) -> Self {
        Self {
            partition,
            open: None,
            skip_below: 0,
        }
    }

    pub(crate) fn skip_until(&mut self, offset: i64) {
        self.skip_below = offset;
    }

    /// Books one event; returns the previous row when this event moved the
    /// frontier into a new window (that row is then final).
    pub(crate) fn record(
        &mut self,
        t: Timing,
        frontier: i64,
        offset: i64,
        frontier_before: i64,
        booking: Booking,
    ) -> Option<LedgerRow> {
        if offset < self.skip_below {
            return None;
        }
        let window = if frontier == NO_TIME {
            BEFORE_FIRST_EVENT
        } else {
            frontier.div_euclid(t.size) * t.size
        };
        let mut done = None;
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.row.window_start != window)
        {
            done = self.open.take().map(|o| o.row);
        }
        let o = self.open.get_or_insert_with(|| Open {
            row: LedgerRow {
                partition: self.partition,
                window_start: window,
                first_offset: offset,
                ..Default::default()
            },
            frontier_before,
            dirty: false,
        });
        let r = &mut o.row;
        r.seen += 1;
        r.last_offset = offset;
        match booking {
            Booking::Aggregated { late } => {
                r.aggregated += 1;
                r.corrected_late += late as u64;
            }
            Booking::Duplicate => r.duplicate += 1,
            Booking::Rejected(Reason::TooLate) => r.too_late += 1,
            Booking::Rejected(Reason::FutureTimestamp) => r.future_timestamp += 1,
            Booking::Rejected(Reason::Malformed) => r.malformed += 1,
            Booking::Rejected(Reason::UnknownEnum) => r.unknown_enum += 1,
            Booking::Rejected(Reason::Invalid(_)) => r.invalid += 1,
        }
        o.dirty = true;
        done
    }

    /// The open row if it changed since the last flush.
    pub(crate) fn flush(&mut self) -> Option<LedgerRow> {
        let o = self.open.as_mut().filter(|o| o.dirty)?;
        o.dirty = false;
        Some(o.row.clone())
    }

    /// Where the ledger resumes when no row is open: `next`, unless a
    /// restore said rows before a later offset are already final.
    pub(crate) fn resume_at(&self, next: i64) -> i64 {
        next.max(self.skip_below)
    }

    /// First offset of the open row and the frontier before it.
    pub(crate) fn anchor(&self) -> Option<(i64, i64)> {
        self.open
            .as_ref()
            .map(|o| (o.row.first_offset, o.frontier_before))
    }
}

/// Snapshot form ([`crate::snapshot`]).
impl OpenLedger {
    pub(crate) fn to_state(&self) -> pb::OpenLedgerState {
        let mut s = pb::OpenLedgerState {
            skip_below: self.skip_below,
            ..Default::default()
        };
        if let Some(o) = &self.open {
            let r = &o.row;
            s.open = true;
            s.window_start = r.window_start;
            s.seen = r.seen;
            s.aggregated = r.aggregated;
            s.corrected_late = r.corrected_late;
            s.too_late = r.too_late;
            s.future_timestamp = r.future_timestamp;
            s.malformed = r.malformed;
            s.unknown_enum = r.unknown_enum;
            s.invalid = r.invalid;
            s.duplicate = r.duplicate;
            s.first_offset = r.first_offset;
            s.last_offset = r.last_offset;
            s.frontier_before = o.frontier_before;
            s.dirty = o.dirty;
        }
        s
    }

    pub(crate) fn from_state(partition: i32, s: &pb::OpenLedgerState) -> Self {
        let open = s.open.then_some(Open {
            row: LedgerRow {
                partition,
                window_start: s.window_start,
                seen: s.seen,
                aggregated: s.aggregated,
                corrected_late: s.corrected_late,
                too_late: s.too_late,
                future_timestamp: s.future_timestamp,
                malformed: s.malformed,
                unknown_enum: s.unknown_enum,
                invalid: s.invalid,
                duplicate: s.duplicate,
                first_offset: s.first_offset,
                last_offset: s.last_offset,
            },
            frontier_before: s.frontier_before,
            dirty: s.dirty,
        });
        Self {
            partition,
            open,
            skip_below: s.skip_below,
        }
    }
}
