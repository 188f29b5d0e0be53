//! Event-level deduplication: each family names an event's identity (a
//! payment is its id and status, a reading its device and event time, a
//! logistics event its shipment and milestone, an FX quote its pair and
//! time). A partition remembers the identities it accepted; a repeat is a
//! *duplicate*: booked in the ledger, not folded into any window.
//!
//! Everything else about a duplicate is as if it were accepted: it moves
//! the frontier and applies its timer op (both idempotent for a repeat).
//! So whether an event counts as a duplicate changes only its window folds
//! and its ledger booking, and those two are what replay has to get right.
//!
//! **Horizon.** An identity is forgotten once its event time (the highest of
//! its repeats) is `dedup_horizon` behind the watermark. The horizon is at
//! least `window_size + allowed_lateness`, so every window a forgotten
//! identity's events fold into is final: a repeat after that is either
//! `too_late` or lands in a window that is final anyway.
//!
//! **Replay.** Remembered identities anchor the restart offset at the event
//! that introduced them, so a replay from the checkpoint meets the original
//! before any repeat. A forgotten identity whose last repeat is still in
//! the open ledger row keeps its anchor held until that row is final: a
//! replay that re-books the row then meets the original too. Once released,
//! a replayed repeat can only touch final windows and final ledger rows,
//! which the replay skips.
//!
//! Memory: per remembered identity one small hash-map entry (identity →
//! sequence number), one queue entry holding what is remembered, in
//! arrival order, and one heap entry; `cargo bench --bench core` reports
//! the bytes per identity.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use tradewind_proto as pb;

use crate::timers::{held_from_state, held_to_state};

/// The identities are already hashes: use them as they are.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Mixes the fields of an identity (at most four) into one 64-bit id.
pub fn identity(fields: &[u64]) -> u64 {
    let mut bytes = [0u8; 32];
    let n = fields.len().min(4);
    for (chunk, f) in bytes.chunks_exact_mut(8).zip(&fields[..n]) {
        chunk.copy_from_slice(&f.to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(&bytes[..n * 8])
}

/// `Seen::offset` of an identity that has been forgotten: its entry in
/// `seen` waits to reach the front, and its heap entries are stale.
const FORGOTTEN: i64 = i64::MIN;

struct Seen {
    /// Offset of the event that introduced the identity, or [`FORGOTTEN`].
    offset: i64,
    frontier_before: i64,
    /// Highest event time of the identity's events so far.
    time: i64,
    /// Offset of its latest repeat, -1 if none.
    last_repeat: i64,
}

pub(crate) struct Dedup {
    horizon: i64,
    /// Identity → its sequence number in `seen`.
    ids: HashMap<u64, u64, BuildHasherDefault<IdHasher>>,
    /// (id, what is remembered of it) in arrival order, so offsets
    /// increase; entry `i` has sequence number `base + i`. Entries of
    /// forgotten identities are dropped once they reach the front.
    seen: VecDeque<(u64, Seen)>,
    base: u64,
    /// (time, sequence number), earliest first: expiry reaches the entry in
    /// `seen` without hashing. An entry whose identity has since moved to a
    /// later time, or is forgotten, is skipped when it comes up.
    by_time: BinaryHeap<Reverse<(i64, u64)>>,
    /// Forgotten identities whose last repeat's ledger row is still open:
    /// (anchor offset, frontier before it, last repeat).
    held: Vec<(i64, i64, i64)>,
}

impl Dedup {
    pub(crate) fn new(horizon: i64) -> Self {
        Self {
            horizon,
            ids: HashMap::default(),
            seen: VecDeque::new(),
            base: 0,
            by_time: BinaryHeap::new(),
            held: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn slot(&self, seq: u64) -> usize {
        (seq - self.base) as usize
    }

    /// Remembers `id` as new (its first event).
    fn remember(&mut self, id: u64, s: Seen) {
        let seq = self.base + self.seen.len() as u64;
        self.ids.insert(id, seq);
        self.by_time.push(Reverse((s.time, seq)));
        self.seen.push_back((id, s));
    }

    /// Whether `id` was seen; remembers it if not.
    pub(crate) fn repeat(&mut self, id: u64, time: i64, offset: i64, frontier_before: i64) -> bool {
        if let Some(&seq) = self.ids.get(&id) {
            let i = self.slot(seq);
            let s = &mut self.seen[i].1;
            s.last_repeat = offset;
            if time > s.time {
                s.time = time;
                self.by_time.push(Reverse((time, seq)));
            }
            return true;
        }
        self.remember(
            id,
            Seen {
                offset,
                frontier_before,
                time,
                last_repeat: -1,
            },
        );
        false
    }

    /// Forgets identities past the horizon at watermark `wm`; `ledger_from`
    /// is the first offset of the open ledger row.
    pub(crate) fn expire(&mut self, wm: i64, ledger_from: i64) {
        while let Some(&Reverse((time, seq))) = self.by_time.peek() {
            if time.saturating_add(self.horizon) > wm {
                break;
            }
            self.by_time.pop();
            if seq < self.base {
                continue;
            }
            let i = self.slot(seq);
            let (id, s) = &mut self.seen[i];
            if s.offset != FORGOTTEN && s.time == time {
                if s.last_repeat >= ledger_from {
                    self.held.push((s.offset, s.frontier_before, s.last_repeat));
                }
                self.ids.remove(id);
                s.offset = FORGOTTEN;
            }
        }
        while self
            .seen
            .front()
            .is_some_and(|(_, s)| s.offset == FORGOTTEN)
        {
            self.seen.pop_front();
            self.base += 1;
        }
        self.held.retain(|h| h.2 >= ledger_from);
    }

    /// The lowest offset a replay must start from to rebuild this memory.
    pub(crate) fn anchor(&self) -> Option<(i64, i64)> {
        let remembered = self
            .seen
            .front()
            .filter(|(_, s)| s.offset != FORGOTTEN)
            .map(|(_, s)| (s.offset, s.frontier_before));
        let held = self.held.iter().map(|h| (h.0, h.1)).min();
        remembered.into_iter().chain(held).min()
    }
}

/// Snapshot form ([`crate::snapshot`]): the remembered identities and held
/// anchors; both queues are rebuilt from the identities (their stale
/// entries are skipped when they come up, so leaving them out changes
/// nothing).
impl Dedup {
    pub(crate) fn to_state(&self) -> pb::DedupState {
        let mut ids: Vec<pb::SeenId> = self
            .ids
            .iter()
            .map(|(id, seq)| {
                let s = &self.seen[self.slot(*seq)].1;
                pb::SeenId {
                    id: *id,
                    offset: s.offset,
                    frontier_before: s.frontier_before,
                    time: s.time,
                    last_repeat: s.last_repeat,
                }
            })
            .collect();
        ids.sort_unstable_by_key(|s| (s.offset, s.id));
        pb::DedupState {
            ids,
            held: self.held.iter().map(|h| held_to_state(*h)).collect(),
        }
    }

    pub(crate) fn from_state(horizon: i64, s: &pb::DedupState) -> Self {
        let mut d = Self::new(horizon);
        let mut ids = s.ids.clone();
        ids.sort_unstable_by_key(|s| (s.offset, s.id));
        for s in ids {
            d.remember(
                s.id,
                Seen {
                    offset: s.offset,
                    frontier_before: s.frontier_before,
                    time: s.time,
                    last_repeat: s.last_repeat,
                },
            );
        }
        d.held = s.held.iter().map(held_from_state).collect();
        d
    }
}
