//! Mergeable sketches for what count/sum/min/max cannot answer exactly:
//! [`LogHistogram`] for quantiles and [`Hll`] for distinct counts. Rows
//! carry them per source partition; ClickHouse merges them across
//! partitions at query time.
//!
//! On-disk forms and their merges:
//! - `LogHistogram` → `hist_keys Array(Int16), hist_counts Array(UInt64)`,
//!   sparse buckets sorted by key; merge with `sumMap(hist_keys, hist_counts)`
//!   (ClickHouse 18.16 and 25.x). Bucket `k` holds values in
//!   `(γ^(k-1), γ^k]` with γ = 1.01/0.99; key `i16::MIN` holds zeros.
//!   A quantile is read by walking the merged buckets in key order and
//!   taking `2γ^k/(γ+1)` of the bucket that crosses the rank: relative
//!   error at most 1% for any value ≥ 1.
//! - `Hll` → `sketch Array(UInt32)`: only the set registers, each packed
//!   as `index << 8 | rank` ([`Hll::to_packed`]). A row with a handful of
//!   distinct ids costs a few bytes instead of 4 KiB of dense registers,
//!   which is what kept ClickHouse busy under load. ClickHouse 18.16 has no
//!   `maxMap`, so the merge is: collect with `groupUniqArrayArray`, sort
//!   descending, keep the first entry per index (its highest rank). The
//!   `*_merged` views do that and also estimate in SQL; the same estimate
//!   in Rust is [`Hll::estimate_packed`] (standard error about 1.6%).

use std::collections::BTreeMap;

/// Relative accuracy of [`LogHistogram`] quantiles.
pub const HIST_ALPHA: f64 = 0.01;
const ZERO_KEY: i16 = i16::MIN;

fn gamma() -> f64 {
    (1.0 + HIST_ALPHA) / (1.0 - HIST_ALPHA)
}

/// A log-bucket histogram of non-negative integers (DDSketch-style).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHistogram {
    buckets: BTreeMap<i16, u64>,
}

impl LogHistogram {
    pub fn key(v: u64) -> i16 {
        if v == 0 {
            return ZERO_KEY;
        }
        ((v as f64).ln() / gamma().ln()).ceil() as i16
    }

    pub fn add(&mut self, v: u64) {
        *self.buckets.entry(Self::key(v)).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &LogHistogram) {
        for (k, c) in &other.buckets {
            *self.buckets.entry(*k).or_insert(0) += c;
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// The on-disk form: sorted keys and their counts.
    pub fn to_arrays(&self) -> (Vec<i16>, Vec<u64>) {
        self.buckets.iter().map(|(k, c)| (*k, *c)).unzip()
    }

    pub fn from_arrays(keys: &[i16], counts: &[u64]) -> Self {
        let mut h = Self::default();
        for (k, c) in keys.iter().zip(counts) {
            *h.buckets.entry(*k).or_insert(0) += c;
        }
        h
    }

    /// The `q`-quantile (0..=1), by the nearest-rank definition.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (k, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                if *k == ZERO_KEY {
                    return Some(0.0);
                }
                let g = gamma();
                return Some(2.0 * g.powi(*k as i32) / (g + 1.0));
            }
        }
        None
    }
}

/// Precision of [`Hll`]: 2^12 registers.
pub const HLL_P: u32 = 12;
const HLL_M: usize = 1 << HLL_P;

/// Above this many set registers the sparse form turns dense.
const SPARSE_MAX: usize = HLL_M / 8;

/// A HyperLogLog sketch of 64-bit ids. Small sketches keep only their set
/// registers (sparse), so a row with a handful of distinct buyers costs
/// bytes, not 4 KiB; the on-disk form is always the dense array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hll {
    sparse: Vec<(u16, u8)>,
    dense: Vec<u8>,
}

impl Hll {
    fn set(&mut self, idx: usize, rank: u8) {
        if !self.dense.is_empty() {
            self.dense[idx] = self.dense[idx].max(rank);
            return;
        }
        match self.sparse.binary_search_by_key(&(idx as u16), |e| e.0) {
            Ok(i) => self.sparse[i].1 = self.sparse[i].1.max(rank),
            Err(i) => {
                self.sparse.insert(i, (idx as u16, rank));
                if self.sparse.len() > SPARSE_MAX {
                    self.dense = self.registers();
                    self.sparse = Vec::new();
                }
            }
        }
    }

    pub fn add(&mut self, id: u64) {
        let h = xxhash_rust::xxh3::xxh3_64(&id.to_le_bytes());
        let idx = (h >> (64 - HLL_P)) as usize;
        let rest = h << HLL_P;
        let rank = (rest.leading_zeros().min(64 - HLL_P) + 1) as u8;
        self.set(idx, rank);
    }

    pub fn merge(&mut self, other: &Hll) {
        if other.dense.is_empty() {
            for (i, r) in &other.sparse {
                self.set(*i as usize, *r);
            }
        } else {
            if self.dense.is_empty() {
                self.dense = self.registers();
                self.sparse = Vec::new();
            }
            for (a, b) in self.dense.iter_mut().zip(&other.dense) {
                *a = (*a).max(*b);
            }
        }
    }

    /// The dense on-disk form: 4,096 registers.
    pub fn registers(&self) -> Vec<u8> {
        if !self.dense.is_empty() {
            return self.dense.clone();
        }
        let mut regs = vec![0u8; HLL_M];
        for (i, r) in &self.sparse {
            regs[*i as usize] = *r;
        }
        regs
    }

    pub fn estimate(&self) -> f64 {
        Self::estimate_registers(&self.registers())
    }

    /// The on-disk form: set registers only, as `index << 8 | rank`,
    /// ascending by index.
    pub fn to_packed(&self) -> Vec<u32> {
        if self.dense.is_empty() {
            return self
                .sparse
                .iter()
                .map(|(i, r)| (*i as u32) << 8 | *r as u32)
                .collect();
        }
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, r)| **r > 0)
            .map(|(i, r)| (i as u32) << 8 | *r as u32)
            .collect()
    }

    /// Reads the on-disk form back; entries may repeat an index (a union
    /// of rows), the highest rank wins. Out-of-range indexes are ignored.
    pub fn from_packed(packed: &[u32]) -> Self {
        let mut h = Self::default();
        for p in packed {
            let idx = (p >> 8) as usize;
            if idx < HLL_M {
                h.set(idx, (p & 0xff) as u8);
            }
        }
        h
    }

    /// Estimate from packed registers, e.g. a `*_merged` view's
    /// `buyers_hll`. Matches the views' SQL estimate.
    pub fn estimate_packed(packed: &[u32]) -> f64 {
        Self::from_packed(packed).estimate()
    }

    /// Estimate from raw registers, e.g. the result of `maxForEach(hll)`.
    pub fn estimate_registers(regs: &[u8]) -> f64 {
        let m = regs.len() as f64;
        if regs.is_empty() {
            return 0.0;
        }
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = regs.iter().map(|r| 2f64.powi(-(*r as i32))).sum();
        let raw = alpha * m * m / sum;
        let zeros = regs.iter().filter(|r| **r == 0).count();
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln() // linear counting for small cardinalities
        } else {
            raw
        }
    }
}
