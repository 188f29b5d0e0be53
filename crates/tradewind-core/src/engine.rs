//! The event-time engine for one metric family over the partitions of one
//! topic. Events go in with their source position; window rows, ledger rows
//! and rejections come out through [`Engine::take_output`].
//!
//! Rules (each partition on its own; all decisions depend only on the input
//! sequence, never on wall-clock time):
//! - **Future.** An event stamped more than `max_clock_skew` after the time
//!   Kafka received it (`record_time_ms`) is rejected `future_timestamp` and
//!   does not move the watermark.
//! - **Watermark** = highest accepted event time − `allowed_disorder`; it
//!   never moves backwards. A window closes (is emitted) once the watermark
//!   reaches its end, and is kept for `allowed_lateness` after that.
//! - **Too late.** An event is accepted only if every window it belongs to
//!   is still kept (its earliest window's end + lateness is above the
//!   watermark); otherwise it is rejected `too_late`. An accepted event for
//!   an already closed window is a *late correction*: the window is updated
//!   and re-emitted with a higher version.
//! - **Version** of a row = highest source offset folded into it. Events are
//!   folded in offset order, so a row's content is a function of its version:
//!   two rows with equal key and version are identical.
//! - **Ledger.** Each partition has one open ledger row, for the tumbling
//!   window holding the partition's highest event time. Rows cover
//!   contiguous offset ranges; a row is final once the frontier moves on.
//!   Rejections that arrive before a partition's first accepted event are
//!   booked in the first window the partition gets.
//!
//! Recovery: [`Engine::checkpoint`] gives the restart offset (the lowest
//! offset that still feeds a kept window or the open ledger row), the event
//! frontier just before it, the frontier at the checkpoint and the highest
//! processed offset. After [`Engine::restore`], replaying from the restart
//! offset repeats every decision exactly, skips windows already final at the
//! checkpoint, re-emits kept windows with identical content, and emits no
//! rejection for an offset at or below the highest processed one.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use crate::config::{CoreConfig, Timing};
use crate::family::Family;
use crate::Result;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceMeta {
    pub partition: i32,
    pub offset: i64,
    /// The Kafka record timestamp: when the broker (or producer) saw it.
    pub record_time_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    TooLate,
    FutureTimestamp,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooLate => "too_late",
            Reason::FutureTimestamp => "future_timestamp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub partition: i32,
    pub offset: i64,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow<K, A> {
    pub window_start: i64,
    pub key: K,
    pub partition: i32,
    pub version: i64,
    pub agg: A,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerRow {
    pub partition: i32,
    pub window_start: i64,
    pub seen: u64,
    pub aggregated: u64,
    pub corrected_late: u64,
    pub too_late: u64,
    pub future_timestamp: u64,
    pub first_offset: i64,
    pub last_offset: i64,
}

impl LedgerRow {
    pub fn version(&self) -> i64 {
        self.last_offset
    }
}

/// What the engine has emitted since the last [`Engine::take_output`].
#[derive(Debug, Clone)]
pub struct Output<K, A> {
    pub rows: Vec<WindowRow<K, A>>,
    pub ledger: Vec<LedgerRow>,
    pub rejections: Vec<Rejection>,
}

impl<K, A> Default for Output<K, A> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            ledger: Vec::new(),
            rejections: Vec::new(),
        }
    }
}

/// A partition's restart point, small enough for Kafka commit metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub restart_offset: i64,
    pub frontier_at_restart: i64,
    pub frontier_at_checkpoint: i64,
    pub highest_processed: i64,
    pub ledger_from: i64,
}

impl Checkpoint {
    /// `v1:<restart>:<frontier@restart>:<frontier>:<highest>:<ledger_from>`.
    pub fn to_metadata(&self) -> String {
        format!(
            "v1:{}:{}:{}:{}:{}",
            self.restart_offset,
            self.frontier_at_restart,
            self.frontier_at_checkpoint,
            self.highest_processed,
            self.ledger_from
        )
    }

    pub fn from_metadata(s: &str) -> Option<Self> {
        let mut it = s.strip_prefix("v1:")?.split(':').map(|p| p.parse::<i64>());
        let mut next = || it.next()?.ok();
        Some(Self {
            restart_offset: next()?,
            frontier_at_restart: next()?,
            frontier_at_checkpoint: next()?,
            highest_processed: next()?,
            ledger_from: next()?,
        })
    }
}

const NO_TIME: i64 = i64::MIN;

struct WindowState<A> {
    agg: A,
    version: i64,
    first_offset: i64,
    frontier_before: i64,
    closed: bool,
    dirty: bool,
}

struct LedgerState {
    row: LedgerRow,
    frontier_before: i64,
    dirty: bool,
}

/// A fixed hasher, so iteration (and so emission) order is the same in
/// every run for the same input.
type Keyed<K, A> = HashMap<K, WindowState<A>, BuildHasherDefault<DefaultHasher>>;

struct Partition<K, A> {
    frontier: i64,
    /// Windows by start, then by key.
    windows: BTreeMap<i64, Keyed<K, A>>,
    /// Watermark up to which windows have been closed.
    closed_wm: i64,
    ledger: Option<LedgerState>,
    /// Replay bounds after a restore.
    highest_processed: i64,
    final_watermark: i64,
    ledger_from: i64,
    last_offset: i64,
}

impl<K, A> Partition<K, A> {
    fn new() -> Self {
        Self {
            frontier: NO_TIME,
            windows: BTreeMap::new(),
            ledger: None,
            closed_wm: NO_TIME,
            highest_processed: -1,
            final_watermark: NO_TIME,
            ledger_from: 0,
            last_offset: -1,
        }
    }
}

fn watermark(frontier: i64, disorder: i64) -> i64 {
    if frontier == NO_TIME {
        NO_TIME
    } else {
        frontier - disorder
    }
}

pub struct Engine<F: Family> {
    t: Timing,
    parts: HashMap<i32, Partition<F::Key, F::Agg>>,
    out: Output<F::Key, F::Agg>,
}

impl<F: Family> Engine<F> {
    pub fn new(cfg: &CoreConfig) -> Result<Self> {
        Ok(Self {
            t: cfg.timing()?,
            parts: HashMap::new(),
            out: Output::default(),
        })
    }

    /// Drains everything emitted so far.
    pub fn take_output(&mut self) -> Output<F::Key, F::Agg> {
        std::mem::take(&mut self.out)
    }

    /// Number of windows held in memory, over all partitions.
    pub fn live_windows(&self) -> usize {
        self.parts
            .values()
            .flat_map(|p| p.windows.values())
            .map(|w| w.len())
            .sum()
    }

    /// Folds one event. Offsets of a partition must increase.
    pub fn process(&mut self, meta: SourceMeta, event: &F::Event) {
        let t = self.t;
        let part = self
            .parts
            .entry(meta.partition)
            .or_insert_with(Partition::new);
        part.last_offset = meta.offset;
        let replaying = meta.offset <= part.highest_processed;
        let count_ledger = meta.offset >= part.ledger_from;
        let frontier_before = part.frontier;
        let wm = watermark(part.frontier, t.disorder);
        let et = F::event_time(event);

        let reason = if et > meta.record_time_ms.saturating_add(t.skew) {
            Some(Reason::FutureTimestamp)
        } else {
            let earliest_end = first_window_start(et, t) + t.size;
            (wm != NO_TIME && earliest_end + t.lateness <= wm).then_some(Reason::TooLate)
        };
        let mut late = false;
        if reason.is_none() {
            let last_start = et.div_euclid(t.slide) * t.slide;
            let mut start = first_window_start(et, t);
            let key = F::key(event);
            while start <= last_start {
                let end = start + t.size;
                late |= wm != NO_TIME && end <= wm;
                // Windows final at the checkpoint were fully emitted before it.
                let final_at_checkpoint =
                    part.final_watermark != NO_TIME && end + t.lateness <= part.final_watermark;
                if !final_at_checkpoint {
                    let w = part
                        .windows
                        .entry(start)
                        .or_default()
                        .entry(key.clone())
                        .or_insert_with(|| WindowState {
                            agg: F::Agg::default(),
                            version: meta.offset,
                            first_offset: meta.offset,
                            frontier_before,
                            closed: false,
                            dirty: false,
                        });
                    F::fold(&mut w.agg, event);
                    w.version = meta.offset;
                    w.dirty = true;
                }
                start += t.slide;
            }
            part.frontier = part.frontier.max(et);
        }

        if let Some(reason) = reason {
            if !replaying {
                self.out.rejections.push(Rejection {
                    partition: meta.partition,
                    offset: meta.offset,
                    reason,
                });
            }
        }
        if count_ledger {
            Self::ledger(part, &mut self.out, t, meta, frontier_before, reason, late);
        }
        Self::advance(part, &mut self.out, t, meta.partition);
    }

    fn ledger(
        part: &mut Partition<F::Key, F::Agg>,
        out: &mut Output<F::Key, F::Agg>,
        t: Timing,
        meta: SourceMeta,
        frontier_before: i64,
        reason: Option<Reason>,
        late: bool,
    ) {
        let window = if part.frontier == NO_TIME {
            NO_TIME
        } else {
            part.frontier.div_euclid(t.size) * t.size
        };
        match &mut part.ledger {
            // The first row takes the frontier's window once there is one.
            Some(l) if l.row.window_start == NO_TIME => l.row.window_start = window,
            Some(l) if l.row.window_start != window => {
                out.ledger.push(l.row.clone());
                part.ledger = None;
            }
            _ => {}
        }
        let l = part.ledger.get_or_insert_with(|| LedgerState {
            row: LedgerRow {
                partition: meta.partition,
                window_start: window,
                first_offset: meta.offset,
                ..Default::default()
            },
            frontier_before,
            dirty: false,
        });
        let r = &mut l.row;
        r.seen += 1;
        r.last_offset = meta.offset;
        match reason {
            None => {
                r.aggregated += 1;
                r.corrected_late += late as u64;
            }
            Some(Reason::TooLate) => r.too_late += 1,
            Some(Reason::FutureTimestamp) => r.future_timestamp += 1,
        }
        l.dirty = true;
    }

    /// Emits windows the watermark has newly closed; frees (after emitting
    /// any change) windows past their lateness.
    fn advance(
        part: &mut Partition<F::Key, F::Agg>,
        out: &mut Output<F::Key, F::Agg>,
        t: Timing,
        partition: i32,
    ) {
        let wm = watermark(part.frontier, t.disorder);
        if wm == NO_TIME || wm <= part.closed_wm {
            return;
        }
        let emit = |out: &mut Output<F::Key, F::Agg>,
                    start: i64,
                    key: &F::Key,
                    w: &mut WindowState<F::Agg>| {
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
            for (key, w) in keyed.iter_mut() {
                if !w.closed || w.dirty {
                    emit(out, *start, key, w);
                }
            }
        }
        part.closed_wm = wm;
        // Free: windows whose end + lateness <= wm, oldest first.
        while let Some(entry) = part.windows.first_entry() {
            if entry.key() + t.size + t.lateness > wm {
                break;
            }
            let start = *entry.key();
            for (key, mut w) in entry.remove() {
                if !w.closed || w.dirty {
                    emit(out, start, &key, &mut w);
                }
            }
        }
    }

    /// Emits every changed row, open windows and open ledger rows included,
    /// so the sink can acknowledge them before offsets are committed.
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
            // A row is placed once the partition has an event time; until then
            // its offsets stay behind the restart point instead.
            if let Some(l) = part
                .ledger
                .as_mut()
                .filter(|l| l.dirty && l.row.window_start != NO_TIME)
            {
                self.out.ledger.push(l.row.clone());
                l.dirty = false;
            }
        }
    }

    /// The restart point of `partition` as of now. Call after [`flush`] and
    /// after the sink has acknowledged everything emitted.
    pub fn checkpoint(&self, partition: i32) -> Option<Checkpoint> {
        let part = self.parts.get(&partition)?;
        let mut restart = (part.last_offset + 1, part.frontier);
        for w in part.windows.values().flat_map(|k| k.values()) {
            if w.first_offset < restart.0 {
                restart = (w.first_offset, w.frontier_before);
            }
        }
        let ledger_from = part
            .ledger
            .as_ref()
            .map(|l| l.row.first_offset)
            .unwrap_or(part.last_offset + 1);
        if let Some(l) = &part.ledger {
            if l.row.first_offset < restart.0 {
                restart = (l.row.first_offset, l.frontier_before);
            }
        }
        Some(Checkpoint {
            restart_offset: restart.0,
            frontier_at_restart: restart.1,
            frontier_at_checkpoint: part.frontier,
            highest_processed: part.last_offset,
            ledger_from,
        })
    }

    /// Prepares `partition` to replay from `cp.restart_offset`.
    pub fn restore(&mut self, partition: i32, cp: &Checkpoint) {
        let mut p = Partition::new();
        p.frontier = cp.frontier_at_restart;
        p.highest_processed = cp.highest_processed;
        p.final_watermark = watermark(cp.frontier_at_checkpoint, self.t.disorder);
        p.ledger_from = cp.ledger_from;
        p.last_offset = cp.restart_offset - 1;
        self.parts.insert(partition, p);
    }

    /// Drops a partition's state (after a rebalance revoked it).
    pub fn drop_partition(&mut self, partition: i32) {
        self.parts.remove(&partition);
    }
}

/// Start of the earliest window that contains `t`.
fn first_window_start(t: i64, timing: Timing) -> i64 {
    let last = t.div_euclid(timing.slide) * timing.slide;
    last - timing.size + timing.slide
}
