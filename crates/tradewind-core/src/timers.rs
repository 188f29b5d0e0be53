//! Keyed entity state with event-time timers, for what is not a window:
//! shipments waiting for DELIVERED before their deadline, devices that must
//! report again within a gap. Families describe each accepted event as a
//! [`TimerOp`]; the engine fires a timer when the partition's watermark
//! crosses its deadline and folds it into the windows holding the deadline.
//!
//! An entity lives until the window holding its deadline is final. Every op
//! ignores deadlines at or below the watermark, so a forgotten entity
//! behaves like a remembered one whose deadline has passed; and while any
//! window it can still fold into is kept, the entity is kept too, so the
//! checkpoint's restart offset (at most the entity's anchor) replays what
//! it needs. Memory is bounded by deadlines, not by the stream's length.
//!
//! Anchors. An armed entity (a shipment) stays anchored at the event that
//! created it, since its deadline depends on that event: it holds the
//! restart offset back for up to its deadline (state snapshots are the
//! remedy, see the README). An extended entity (a device) depends only on
//! the event that set its latest deadline, so an extension may move the
//! anchor there, which keeps a device that never stops reporting from
//! holding the restart offset back forever. A replay that starts between
//! the old anchor and the new one meets the entity's readings from that
//! stretch first, with lower deadlines; the move is made only if none of
//! them could fire before the new anchor is replayed (each deadline is
//! above the watermark at the move). And a deadline that already fired
//! into a window that is not final yet keeps its old anchor held until that
//! window is final, so the replay fires it again.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};

use crate::config::Timing;
use crate::hash::Fixed;
use tradewind_proto as pb;

/// How an accepted event changes its entity's timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOp<T> {
    /// Nothing to track.
    None,
    /// Start a timer for a new entity (e.g. a shipment's first milestone).
    /// An entity already known keeps its timer.
    Arm { id: u64, deadline: i64, timer: T },
    /// Start or push out a timer (e.g. a device's reading: silent after a gap).
    Extend { id: u64, deadline: i64, timer: T },
    /// The awaited event happened (e.g. DELIVERED): the timer will not fire.
    /// Remembered until the deadline, in case the entity's first events
    /// arrive after this one.
    Disarm { id: u64, deadline: i64 },
}

struct Entity<T> {
    deadline: i64,
    /// The payload to fold when the deadline passes; `None` once disarmed.
    timer: Option<T>,
    fired: bool,
    /// When the window holding the deadline is final, so the entity can go.
    expires: i64,
    /// Offset of the event that created the entity, and the event-time
    /// frontier before it: replaying from there rebuilds it exactly.
    anchor: i64,
    frontier_before: i64,
    /// The lowest deadline of the entity's events after its anchor; the
    /// anchor may move only while this is above the watermark.
    since_anchor: i64,
    /// Earlier anchors still needed: (anchor, frontier_before, expiry) of
    /// deadlines that fired into windows that are not final yet.
    held: Vec<(i64, i64, i64)>,
}

pub(crate) struct Timers<T> {
    t: Timing,
    entities: HashMap<u64, Entity<T>, Fixed>,
    /// (deadline, id) to fire and (expiry, id) to forget, earliest first;
    /// entries made stale by `Extend` are skipped when popped. Deadlines
    /// and expiries of an entity only grow, so no pair is queued twice.
    deadlines: BinaryHeap<Reverse<(i64, u64)>>,
    expiries: BinaryHeap<Reverse<(i64, u64)>>,
}

impl<T: Clone> Timers<T> {
    pub(crate) fn new(t: Timing) -> Self {
        Self {
            t,
            entities: HashMap::default(),
            deadlines: BinaryHeap::new(),
            expiries: BinaryHeap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entities.len()
    }

    fn expiry(&self, deadline: i64) -> i64 {
        deadline.div_euclid(self.t.slide) * self.t.slide + self.t.size + self.t.lateness
    }

    /// Applies `op` of the event at `offset`, given the watermark before it.
    pub(crate) fn apply(&mut self, op: TimerOp<T>, wm: i64, offset: i64, frontier_before: i64) {
        let (id, deadline, timer, extend) = match op {
            TimerOp::None => return,
            TimerOp::Arm {
                id,
                deadline,
                timer,
            } => (id, deadline, Some(timer), false),
            TimerOp::Extend {
                id,
                deadline,
                timer,
            } => (id, deadline, Some(timer), true),
            TimerOp::Disarm { id, deadline } => (id, deadline, None, false),
        };
        let expires = self.expiry(deadline);
        match self.entities.entry(id) {
            Entry::Vacant(v) => {
                if deadline > wm {
                    v.insert(Entity {
                        deadline,
                        timer,
                        fired: false,
                        expires,
                        anchor: offset,
                        frontier_before,
                        since_anchor: i64::MAX,
                        held: Vec::new(),
                    });
                    self.deadlines.push(Reverse((deadline, id)));
                    self.expiries.push(Reverse((expires, id)));
                }
            }
            Entry::Occupied(mut o) => {
                let e = o.get_mut();
                if timer.is_none() {
                    e.timer = None;
                } else if extend && deadline > e.deadline && deadline > wm {
                    e.held.retain(|h| h.2 > wm);
                    if e.timer.is_some() && e.since_anchor > wm {
                        // No event since the anchor can fire before this
                        // one is replayed: the state depends on it alone.
                        if e.fired && e.expires > wm {
                            e.held.push((e.anchor, e.frontier_before, e.expires));
                        }
                        e.anchor = offset;
                        e.frontier_before = frontier_before;
                        e.since_anchor = i64::MAX;
                    } else {
                        e.since_anchor = e.since_anchor.min(deadline);
                    }
                    e.deadline = deadline;
                    e.timer = timer;
                    e.fired = false;
                    self.deadlines.push(Reverse((deadline, id)));
                    if expires != e.expires {
                        e.expires = expires;
                        self.expiries.push(Reverse((expires, id)));
                    }
                } else if extend && deadline > wm {
                    // Changes nothing now, but a replay starting after the
                    // anchor would meet it first. (A deadline at or below
                    // the watermark is ignored by every replay too.)
                    e.since_anchor = e.since_anchor.min(deadline);
                }
            }
        }
    }

    /// Fires every armed timer whose deadline is at or below `wm`, in
    /// deadline order, and forgets entities whose deadline window is final.
    pub(crate) fn due(&mut self, wm: i64) -> Vec<(i64, T)> {
        let mut fired = Vec::new();
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if deadline > wm {
                break;
            }
            self.deadlines.pop();
            if let Some(e) = self.entities.get_mut(&id) {
                if e.deadline == deadline && !e.fired {
                    e.fired = true;
                    if let Some(t) = &e.timer {
                        fired.push((deadline, t.clone()));
                    }
                }
            }
        }
        while let Some(&Reverse((expires, id))) = self.expiries.peek() {
            if expires > wm {
                break;
            }
            self.expiries.pop();
            if self.entities.get(&id).is_some_and(|e| e.expires == expires) {
                self.entities.remove(&id);
            }
        }
        fired
    }
    /// The lowest anchor of any live entity, with its frontier.
    pub(crate) fn earliest_anchor(&self) -> Option<(i64, i64)> {
        self.entities
            .values()
            .flat_map(|e| {
                std::iter::once((e.anchor, e.frontier_before))
                    .chain(e.held.iter().map(|h| (h.0, h.1)))
            })
            .min_by_key(|a| a.0)
    }
}

/// Snapshot form ([`crate::snapshot`]): the entities carry everything; the
/// deadline and expiry queues are rebuilt from them (their stale entries
/// are skipped when they come up, so leaving them out changes nothing).
impl<T: Clone> Timers<T> {
    pub(crate) fn to_state(&self, encode: impl Fn(&T) -> pb::TimerPayload) -> Vec<pb::TimerEntity> {
        let mut out: Vec<pb::TimerEntity> = self
            .entities
            .iter()
            .map(|(id, e)| pb::TimerEntity {
                id: *id,
                deadline: e.deadline,
                timer: e.timer.as_ref().map(&encode),
                fired: e.fired,
                expires: e.expires,
                anchor: e.anchor,
                frontier_before: e.frontier_before,
                since_anchor: e.since_anchor,
                held: e.held.iter().map(|h| held_to_state(*h)).collect(),
            })
            .collect();
        out.sort_unstable_by_key(|e| e.id);
        out
    }

    pub(crate) fn from_state<E>(
        t: Timing,
        entities: Vec<pb::TimerEntity>,
        decode: impl Fn(pb::TimerPayload) -> Result<T, E>,
    ) -> Result<Self, E> {
        let mut timers = Self::new(t);
        for s in entities {
            let timer = s.timer.map(&decode).transpose()?;
            if !s.fired {
                timers.deadlines.push(Reverse((s.deadline, s.id)));
            }
            timers.expiries.push(Reverse((s.expires, s.id)));
            timers.entities.insert(
                s.id,
                Entity {
                    deadline: s.deadline,
                    timer,
                    fired: s.fired,
                    expires: s.expires,
                    anchor: s.anchor,
                    frontier_before: s.frontier_before,
                    since_anchor: s.since_anchor,
                    held: s.held.iter().map(held_from_state).collect(),
                },
            );
        }
        Ok(timers)
    }
}

pub(crate) fn held_to_state(h: (i64, i64, i64)) -> pb::HeldAnchor {
    pb::HeldAnchor {
        offset: h.0,
        frontier_before: h.1,
        until: h.2,
    }
}

pub(crate) fn held_from_state(h: &pb::HeldAnchor) -> (i64, i64, i64) {
    (h.offset, h.frontier_before, h.until)
}
