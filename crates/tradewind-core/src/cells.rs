//! One window's cells: the aggregate state of each key, in the order the
//! keys first arrived, found through an open-addressing index of 8-byte
//! slots. A window's cells are freed together, never one by one, so the
//! index only ever grows.
//!
//! Compared with a `HashMap<K, WindowState<A>>` this keeps the cells
//! packed (a hash map at half load leaves as many empty cell-sized slots
//! as full ones) and makes emission order the arrival order, whatever the
//! hasher or the capacity.

use std::hash::{BuildHasher, Hash};

use crate::engine::WindowState;
use crate::hash::Fixed;

/// An index slot: `0` is empty; else the low 32 bits are the cell's
/// position + 1 and the high 32 bits the top of its key's hash.
type Slot = u64;

pub(crate) struct Cells<K, A> {
    cells: Vec<(K, WindowState<A>)>,
    index: Vec<Slot>,
}

impl<K, A> Default for Cells<K, A> {
    fn default() -> Self {
        Self {
            cells: Vec::new(),
            index: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, A> Cells<K, A> {
    /// Room for `n` keys without growing.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut c = Self {
            cells: Vec::with_capacity(n),
            index: Vec::new(),
        };
        c.grow_index(n);
        c
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// The state of `key`, made by `make` if the key is new.
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: &K,
        make: impl FnOnce() -> WindowState<A>,
    ) -> &mut WindowState<A> {
        let i = match self.find(key) {
            Ok(i) => i,
            Err(hash) => self.push(hash, key.clone(), make()),
        };
        &mut self.cells[i].1
    }

    /// Sets the state of `key`, replacing any it had.
    pub(crate) fn insert(&mut self, key: K, state: WindowState<A>) {
        match self.find(&key) {
            Ok(i) => self.cells[i].1 = state,
            Err(hash) => {
                self.push(hash, key, state);
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &WindowState<A>)> {
        self.cells.iter().map(|(k, w)| (k, w))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut WindowState<A>)> {
        self.cells.iter_mut().map(|(k, w)| (&*k, w))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &WindowState<A>> {
        self.cells.iter().map(|(_, w)| w)
    }

    pub(crate) fn into_cells(self) -> impl Iterator<Item = (K, WindowState<A>)> {
        self.cells.into_iter()
    }

    /// The key's position, or its hash if absent.
    fn find(&self, key: &K) -> Result<usize, u64> {
        let hash = Fixed::default().hash_one(key);
        if self.index.is_empty() {
            return Err(hash);
        }
        let mask = self.index.len() - 1;
        let tag = hash >> 32;
        let mut pos = hash as usize & mask;
        loop {
            let slot = self.index[pos];
            if slot == 0 {
                return Err(hash);
            }
            if slot >> 32 == tag {
                let i = (slot as u32 - 1) as usize;
                if self.cells[i].0 == *key {
                    return Ok(i);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    fn push(&mut self, hash: u64, key: K, state: WindowState<A>) -> usize {
        let i = self.cells.len();
        // At most 3/4 full: linear probing stays short.
        if (i + 1) * 4 > self.index.len() * 3 {
            self.grow_index(i + 1);
        }
        self.cells.push((key, state));
        self.place(hash, i);
        i
    }

    fn place(&mut self, hash: u64, i: usize) {
        let mask = self.index.len() - 1;
        let mut pos = hash as usize & mask;
        while self.index[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        self.index[pos] = (hash >> 32) << 32 | (i as u64 + 1);
    }

    /// Rebuilds the index with room for `n` keys.
    fn grow_index(&mut self, n: usize) {
        let slots = (n * 4).div_ceil(3).next_power_of_two().max(8);
        if slots <= self.index.len() {
            return;
        }
        assert!(
            slots <= u32::MAX as usize,
            "a window holds at most 2^32 keys"
        );
        self.index = vec![0; slots];
        let hasher = Fixed::default();
        for i in 0..self.cells.len() {
            let hash = hasher.hash_one(&self.cells[i].0);
            self.place(hash, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(v: i64) -> WindowState<i64> {
        WindowState {
            agg: v,
            version: v,
            first_offset: v,
            frontier_before: v,
            closed: false,
            dirty: false,
        }
    }

    #[test]
    fn finds_every_key_and_keeps_arrival_order() {
        let mut c = Cells::<(i32, i32), i64>::default();
        for i in 0..10_000i64 {
            let k = ((i * 7919 % 10_007) as i32, (i % 3) as i32);
            c.get_or_insert_with(&k, || state(i)).agg += 1;
        }
        assert_eq!(c.len(), 10_000);
        for (n, (k, w)) in c.iter().enumerate() {
            assert_eq!(w.version, n as i64);
            assert_eq!(w.agg, n as i64 + 1);
            assert_eq!(*k, ((n as i64 * 7919 % 10_007) as i32, (n % 3) as i32));
        }
        c.insert((0, 0), state(-1));
        assert_eq!(c.len(), 10_000);
        assert_eq!(c.get_or_insert_with(&(0, 0), || state(5)).agg, -1);
    }
}
