//! The event-time engine for one metric family over the partitions of one
//! topic. Events go in with their source position; window rows, ledger rows
//! and rejections come out through [`Engine::take_output`].
//!
//! Rules (each partition on its own; every decision depends only on the
//! input sequence, never on wall-clock time):
//! - **Future.** An event stamped more than `max_clock_skew` after the time
//!   Kafka received it (`record_time_ms`) is rejected `future_timestamp` and
//!   does not move the watermark.
//! - **Watermark** = the partition's frontier − `allowed_disorder`; it
//!   never moves backwards. The frontier is the highest accepted event
//!   time, except that one event moves it at most `max_watermark_step`
//!   (the outlier guard), so a single far-ahead stamp cannot hijack it.
//!   A window closes (is emitted) once the watermark reaches its end, and
//!   is kept for `allowed_lateness` after that.
//! - **Duplicates.** An accepted event whose identity the partition
//!   remembers is a repeat: booked as a duplicate, folded into no window
//!   (see [`crate::dedup`] for the horizon and how replay stays exact).
//! - **Too late.** An event is accepted only if every window it belongs to
//!   is still kept (its earliest window's end + lateness is above the
//!   watermark); otherwise it is rejected `too_late`. An accepted event for
//!   an already closed window is a *late correction*: the window is updated
//!   and re-emitted with a higher version.
//! - **Timers** (see [`crate::timers`]) fire when the watermark crosses their
//!   deadline, before windows are closed or freed, and fold into the windows
//!   holding the deadline.
//! - **Version** of a row = highest source offset folded into it (for a
//!   timer, the offset whose watermark fired it). Events are folded in
//!   offset order, so two rows with equal key and version are identical.
//! - **Ledger.** Each partition has one open ledger row, for the tumbling
//!   window holding the partition's highest event time. Rows cover
//!   contiguous offset ranges; a row is final once the frontier moves on.
//!   Records that arrive before a partition's first accepted event (all of
//!   them rejected) are booked in the row of window
//!   [`crate::ledger::BEFORE_FIRST_EVENT`] (the Unix epoch), so a partition
//!   that only ever sees rejections still has ledger rows.
//!
//! Recovery: [`Engine::checkpoint`] gives the restart offset (the lowest
//! offset that still feeds a kept window, a live timer or the open ledger
//! row), the event-time frontier just before it and at the checkpoint, and
//! the highest processed offset. After [`Engine::restore`], replaying from
//! the restart offset repeats every decision exactly, skips windows already
//! final at the checkpoint, re-emits kept windows with identical content,
//! and emits no rejection for an offset at or below the highest processed.

use std::collections::{BTreeMap, HashMap};

use crate::cells::Cells;
use crate::config::{CoreConfig, Timing};
use crate::dedup::Dedup;
use crate::family::Family;
use crate::hash::Fixed;
use crate::ledger::{Booking, OpenLedger};
pub use crate::output::{Checkpoint, LedgerRow, Output, Reason, Rejection, SourceMeta, WindowRow};
use crate::timers::Timers;
use crate::Result;

pub(crate) const NO_TIME: i64 = i64::MIN;

pub(crate) struct WindowState<A> {
    pub(crate) agg: A,
    pub(crate) version: i64,
    pub(crate) first_offset: i64,
    pub(crate) frontier_before: i64,
    pub(crate) closed: bool,
    pub(crate) dirty: bool,
}

pub(crate) struct Partition<F: Family> {
    pub(crate) frontier: i64,
    /// Windows by start, then by key (in arrival order, so emission order
    /// is the same in every run for the same input).
    pub(crate) windows: BTreeMap<i64, Cells<F::Key, F::Agg>>,
    pub(crate) timers: Timers<F::Timer>,
    /// Watermark up to which windows have been closed.
    pub(crate) closed_wm: i64,
    pub(crate) ledger: OpenLedger,
    pub(crate) dedup: Dedup,
    /// Replay bounds after a restore: the restored checkpoint's highest
    /// processed offset and frontier. Both carry into later checkpoints, so
    /// a crash during a replay does not forget what the first life did.
    pub(crate) highest_processed: i64,
    pub(crate) final_frontier: i64,
    pub(crate) final_watermark: i64,
    pub(crate) last_offset: i64,
}

impl<F: Family> Partition<F> {
    pub(crate) fn new(partition: i32, t: Timing) -> Self {
        Self {
            frontier: NO_TIME,
            windows: BTreeMap::new(),
            timers: Timers::new(t),
            closed_wm: NO_TIME,
            ledger: OpenLedger::new(partition),
            dedup: Dedup::new(t.dedup_horizon.unwrap_or(i64::MAX)),
            highest_processed: -1,
            final_frontier: NO_TIME,
            final_watermark: NO_TIME,
            last_offset: -1,
        }
    }

    fn watermark(&self, disorder: i64) -> i64 {
        if self.frontier == NO_TIME {
            NO_TIME
        } else {
            self.frontier - disorder
        }
    }
}

/// The current fold: which offset it comes from and the frontier before it.
#[derive(Clone, Copy)]
struct At {
    offset: i64,
    frontier_before: i64,
    wm: i64,
}

pub struct Engine<F: Family> {
    pub(crate) t: Timing,
    family: F,
    pub(crate) parts: HashMap<i32, Partition<F>, Fixed>,
    out: Output<F::Key, F::Agg>,
}

impl<F: Family> Engine<F> {
    pub fn new(cfg: &CoreConfig, family: F) -> Result<Self> {
        Ok(Self {
            t: cfg.timing()?,
            family,
            parts: HashMap::default(),
            out: Output::default(),
        })
    }

    /// The event-time watermark of `partition` (ms), once it has one.
    pub fn watermark(&self, partition: i32) -> Option<i64> {
        let wm = self.parts.get(&partition)?.watermark(self.t.disorder);
        (wm != NO_TIME).then_some(wm)
    }

    /// Whether anything waits to be taken by [`Engine::take_output`].
    pub fn has_output(&self) -> bool {
        !(self.out.rows.is_empty() && self.out.ledger.is_empty() && self.out.rejections.is_empty())
    }

    /// Drains everything emitted so far. The next batch starts with room
    /// for as many rows as this one and a quarter more, so a steady stream
    /// does not regrow it.
    pub fn take_output(&mut self) -> Output<F::Key, F::Agg> {
        let next = Output {
            rows: Vec::with_capacity(self.out.rows.len() + self.out.rows.len() / 4),
            ..Output::default()
        };
        std::mem::replace(&mut self.out, next)
    }

    /// Windows (one per key) held in memory, over all partitions.
    pub fn live_windows(&self) -> usize {
        self.parts
            .values()
            .flat_map(|p| p.windows.values())
            .map(|w| w.len())
            .sum()
    }

    /// Event identities remembered for deduplication, over all partitions.
    pub fn remembered_ids(&self) -> usize {
        self.parts.values().map(|p| p.dedup.len()).sum()
    }

    /// Entities with a live timer or tombstone, over all partitions.
    pub fn live_entities(&self) -> usize {
        self.parts.values().map(|p| p.timers.len()).sum()
    }

    /// Folds one event. Offsets of a partition must increase. Returns the
    /// decision: `None` if the event was accepted, else why it was
    /// rejected (also during a replay, when the rejection itself is not
    /// emitted again).
    pub fn process(&mut self, meta: SourceMeta, event: &F::Event) -> Option<Reason> {
        let t = self.t;
        let part = self
            .parts
            .entry(meta.partition)
            .or_insert_with(|| Partition::new(meta.partition, t));
        part.last_offset = meta.offset;
        let at = At {
            offset: meta.offset,
            frontier_before: part.frontier,
            wm: part.watermark(t.disorder),
        };
        let et = self.family.event_time(event);

        let reason = if et > meta.record_time_ms.saturating_add(t.skew) {
            Some(Reason::FutureTimestamp)
        } else {
            let earliest_end = first_window_start(et, t) + t.size;
            (at.wm != NO_TIME && earliest_end + t.lateness <= at.wm).then_some(Reason::TooLate)
        };
        let late =
            reason.is_none() && at.wm != NO_TIME && first_window_start(et, t) + t.size <= at.wm;
        let duplicate = reason.is_none()
            && t.dedup_horizon.is_some()
            && self
                .family
                .identity(event)
                .is_some_and(|id| part.dedup.repeat(id, et, meta.offset, at.frontier_before));
        if reason.is_none() {
            if let Some(key) = self.family.key(event).filter(|_| !duplicate) {
                let family = &self.family;
                fold_windows(part, t, et, key, at, |agg| family.fold(agg, event));
            }
            part.timers.apply(
                self.family.timer_op(event),
                at.wm,
                meta.offset,
                at.frontier_before,
            );
            part.frontier = advance_frontier(part.frontier, et, t.max_step);
        }

        if let Some(reason) = reason {
            if meta.offset > part.highest_processed {
                self.out.rejections.push(Rejection {
                    partition: meta.partition,
                    offset: meta.offset,
                    reason,
                });
            }
        }
        if let Some(done) = part.ledger.record(
            t,
            part.frontier,
            at.offset,
            at.frontier_before,
            match reason {
                Some(r) => Booking::Rejected(r),
                None if duplicate => Booking::Duplicate,
                None => Booking::Aggregated { late },
            },
        ) {
            self.out.ledger.push(done);
        }
        self.advance(meta.partition, at);
        reason
    }

    /// Books a record the caller could not turn into an event (undecodable,
    /// unknown enum): counted in the ledger and rejected, nothing else.
    pub fn record_invalid(&mut self, partition: i32, offset: i64, reason: Reason) {
        let t = self.t;
        let part = self
            .parts
            .entry(partition)
            .or_insert_with(|| Partition::new(partition, t));
        part.last_offset = offset;
        if offset > part.highest_processed {
            self.out.rejections.push(Rejection {
                partition,
                offset,
                reason,
            });
        }
        let frontier = part.frontier;
        if let Some(done) =
            part.ledger
                .record(t, frontier, offset, frontier, Booking::Rejected(reason))
        {
            self.out.ledger.push(done);
        }
    }

    /// Fires due timers, emits windows the watermark has newly closed, and
    /// frees (after emitting any change) windows past their lateness.
    fn advance(&mut self, partition: i32, at: At) {
        let t = self.t;
        let Some(part) = self.parts.get_mut(&partition) else {
            return;
        };
        let wm = part.watermark(t.disorder);
        if wm == NO_TIME || wm <= part.closed_wm {
            return;
        }
        for (deadline, timer) in part.timers.due(wm) {
            let key = self.family.timer_key(&timer);
            let family = &self.family;
            fold_windows(part, t, deadline, key, at, |agg| {
                family.fold_timer(agg, &timer)
            });
        }
        let out = &mut self.out;
        let mut emit = |start: i64, key: &F::Key, w: &mut WindowState<F::Agg>| {
            out.rows.push(WindowRow {
                window_start: start,
                key: key.clone(),
                partition,
                version: w.version,
                agg: w.agg.clone(),
            });
            w.closed = true;
            w.dirty = false;
        };
        // Close: windows whose end is in (closed_wm, wm].
        let from = if part.closed_wm == NO_TIME {
            i64::MIN
        } else {
            part.closed_wm - t.size + 1
        };
        for (start, keyed) in part.windows.range_mut(from..=wm - t.size) {
            for (key, w) in keyed.iter_mut().filter(|(_, w)| !w.closed || w.dirty) {
                emit(*start, key, w);
            }
        }
        part.closed_wm = wm;
        let ledger_from = part.ledger.anchor().map_or(i64::MAX, |a| a.0);
        part.dedup.expire(wm, ledger_from);
        // Free: windows whose end + lateness <= wm, oldest first.
        while let Some(entry) = part.windows.first_entry() {
            if entry.key() + t.size + t.lateness > wm {
                break;
            }
            let start = *entry.key();
            for (key, mut w) in entry
                .remove()
                .into_cells()
                .filter(|(_, w)| !w.closed || w.dirty)
            {
                emit(start, &key, &mut w);
            }
        }
    }

    /// Emits every changed row, open windows and the open ledger rows
    /// included, so the sink can acknowledge them before offsets are
    /// committed.
    pub fn flush(&mut self) {
        let mut partitions: Vec<i32> = self.parts.keys().copied().collect();
        partitions.sort_unstable();
        for partition in partitions {
            let part = self.parts.get_mut(&partition).expect("listed");
            for (start, keyed) in part.windows.iter_mut() {
                for (key, w) in keyed.iter_mut().filter(|(_, w)| w.dirty) {
                    self.out.rows.push(WindowRow {
                        window_start: *start,
                        key: key.clone(),
                        partition,
                        version: w.version,
                        agg: w.agg.clone(),
                    });
                    w.dirty = false;
                }
            }
            self.out.ledger.extend(part.ledger.flush());
        }
    }

    /// The restart point of `partition` as of now. Call after [`Engine::flush`]
    /// and after the sink has acknowledged everything emitted.
    pub fn checkpoint(&self, partition: i32) -> Option<Checkpoint> {
        let part = self.parts.get(&partition)?;
        let mut restart = (part.last_offset + 1, part.frontier);
        let windows = part
            .windows
            .values()
            .flat_map(|k| k.values())
            .map(|w| (w.first_offset, w.frontier_before));
        let candidates = windows
            .chain(part.timers.earliest_anchor())
            .chain(part.ledger.anchor())
            .chain(part.dedup.anchor());
        for c in candidates {
            if c.0 < restart.0 {
                restart = c;
            }
        }
        Some(Checkpoint {
            restart_offset: restart.0,
            frontier_at_restart: restart.1,
            frontier_at_checkpoint: part.frontier.max(part.final_frontier),
            highest_processed: part.last_offset.max(part.highest_processed),
            ledger_from: part
                .ledger
                .anchor()
                .map(|a| a.0)
                .unwrap_or_else(|| part.ledger.resume_at(part.last_offset + 1)),
        })
    }

    /// Prepares `partition` to replay from `cp.restart_offset`.
    pub fn restore(&mut self, partition: i32, cp: &Checkpoint) {
        let mut p = Partition::new(partition, self.t);
        p.frontier = cp.frontier_at_restart;
        p.highest_processed = cp.highest_processed;
        p.final_frontier = cp.frontier_at_checkpoint;
        p.final_watermark = if cp.frontier_at_checkpoint == NO_TIME {
            NO_TIME
        } else {
            cp.frontier_at_checkpoint - self.t.disorder
        };
        p.ledger.skip_until(cp.ledger_from);
        p.last_offset = cp.restart_offset - 1;
        // Windows at or below the restart frontier's watermark were closed
        // before the restart point; mark them so they are not re-closed.
        p.closed_wm = p.watermark(self.t.disorder);
        self.parts.insert(partition, p);
    }

    /// Drops a partition's state (after a rebalance revoked it).
    pub fn drop_partition(&mut self, partition: i32) {
        self.parts.remove(&partition);
    }
}

/// Folds into every window that holds `time`, unless the window was
/// already final at the checkpoint this partition was restored from.
fn fold_windows<F: Family>(
    part: &mut Partition<F>,
    t: Timing,
    time: i64,
    key: F::Key,
    at: At,
    fold: impl Fn(&mut F::Agg),
) {
    let last_start = time.div_euclid(t.slide) * t.slide;
    let mut start = first_window_start(time, t);
    while start <= last_start {
        let end = start + t.size;
        let final_at_checkpoint =
            part.final_watermark != NO_TIME && end + t.lateness <= part.final_watermark;
        if !final_at_checkpoint {
            let cells = match part.windows.get_mut(&start) {
                Some(cells) => cells,
                None => {
                    // A new window: room for as many keys as the latest
                    // one, and a quarter more.
                    let hint = part.windows.last_key_value().map_or(0, |(_, c)| c.len());
                    let hint = hint + hint / 4;
                    part.windows
                        .entry(start)
                        .or_insert(Cells::with_capacity(hint))
                }
            };
            let w = cells.get_or_insert_with(&key, || WindowState {
                agg: F::Agg::default(),
                version: at.offset,
                first_offset: at.offset,
                frontier_before: at.frontier_before,
                closed: false,
                dirty: false,
            });
            fold(&mut w.agg);
            w.version = at.offset;
            w.dirty = true;
        }
        start += t.slide;
    }
}

/// The frontier after accepting an event at `et`: the highest event time,
/// but at most `max_step` past the previous frontier.
pub(crate) fn advance_frontier(frontier: i64, et: i64, max_step: i64) -> i64 {
    if frontier == NO_TIME {
        et
    } else {
        frontier.max(et.min(frontier.saturating_add(max_step)))
    }
}

/// Start of the earliest window that contains `t`.
pub(crate) fn first_window_start(t: i64, timing: Timing) -> i64 {
    let last = t.div_euclid(timing.slide) * timing.slide;
    last - timing.size + timing.slide
}
