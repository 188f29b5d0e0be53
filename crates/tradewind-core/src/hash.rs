//! The core's hasher for its in-memory maps: fixed (no random seed, so
//! every run makes the same decisions in the same order) and cheap for
//! the small integer keys the core uses (window keys of a few enum
//! numbers, partition numbers, entity ids). Each written word is folded
//! in with a 64×64→128-bit multiply, which spreads every input bit over
//! the whole hash, low bits included.

use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Folds words with a 128-bit multiply; see the module docs.
#[derive(Default, Clone, Copy)]
pub struct FoldHasher(u64);

impl FoldHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        let m = u128::from(self.0 ^ word).wrapping_mul(u128::from(K ^ 0x2d35_8dcc_aa6c_78a5));
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(last) ^ (rest.len() as u64) << 59);
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
    #[inline]
    fn write_i32(&mut self, n: i32) {
        self.mix(n as u32 as u64);
    }
    #[inline]
    fn write_i64(&mut self, n: i64) {
        self.mix(n as u64);
    }
}

/// `BuildHasher` for the core's maps.
pub type Fixed = BuildHasherDefault<FoldHasher>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hash};

    use super::*;

    fn hash(v: impl Hash) -> u64 {
        Fixed::default().hash_one(v)
    }

    #[test]
    fn small_keys_spread_over_low_and_high_bits() {
        let hashes: Vec<u64> = (0..4096i32).map(|i| hash((i % 64, i / 64))).collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 52).collect();
        assert!(low.len() > 2_400, "low bits: {}", low.len());
        assert!(high.len() > 2_400, "high bits: {}", high.len());
        assert_eq!(hash(7u64), hash(7u64));
    }
}
