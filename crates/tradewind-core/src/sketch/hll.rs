//! [`Hll`]: a HyperLogLog sketch of 64-bit ids, in the smallest of three
//! forms that holds its set registers:
//! - inline: up to four registers inside the struct (no allocation), the
//!   common case for a row with a handful of distinct ids;
//! - sparse: a sorted vector of set registers;
//! - dense: all 4,096 registers, past 512 set ones.
//!
//! Set registers are kept packed as `index << 8 | rank` (rank ≥ 1), the
//! on-disk form, so sorting packed values sorts by index and the larger of
//! two packed values of one index has the higher rank. The form never
//! shows: equality and the on-disk form depend only on the registers.

/// Precision of [`Hll`]: 2^12 registers.
pub const HLL_P: u32 = 12;
const HLL_M: usize = 1 << HLL_P;

/// Above this many set registers the sparse form turns dense.
const SPARSE_MAX: usize = HLL_M / 8;
/// Registers kept inline.
const INLINE: usize = 4;

#[derive(Debug, Clone)]
enum Form {
    /// Set registers first, ascending; unused slots are 0 (no set
    /// register packs to 0, its rank is at least 1).
    Inline([u32; INLINE]),
    Sparse(Vec<u32>),
    Dense(Box<[u8; HLL_M]>),
}

/// A HyperLogLog sketch of 64-bit ids; see the module docs.
#[derive(Debug, Clone)]
pub struct Hll {
    form: Form,
}

impl Default for Hll {
    fn default() -> Self {
        Self {
            form: Form::Inline([0; INLINE]),
        }
    }
}

fn pack(idx: usize, rank: u8) -> u32 {
    (idx as u32) << 8 | rank as u32
}

impl Hll {
    fn set(&mut self, idx: usize, rank: u8) {
        if rank == 0 {
            return;
        }
        let packed = pack(idx, rank);
        let key = idx as u32;
        match &mut self.form {
            Form::Inline(regs) => {
                let n = regs.iter().position(|p| *p == 0).unwrap_or(INLINE);
                match regs[..n].binary_search_by_key(&key, |p| p >> 8) {
                    Ok(i) => regs[i] = regs[i].max(packed),
                    Err(i) if n < INLINE => {
                        regs.copy_within(i..n, i + 1);
                        regs[i] = packed;
                    }
                    Err(i) => {
                        let mut v = Vec::with_capacity(2 * INLINE);
                        v.extend_from_slice(&regs[..i]);
                        v.push(packed);
                        v.extend_from_slice(&regs[i..]);
                        self.form = Form::Sparse(v);
                    }
                }
            }
            Form::Sparse(v) => match v.binary_search_by_key(&key, |p| p >> 8) {
                Ok(i) => v[i] = v[i].max(packed),
                Err(i) => {
                    v.insert(i, packed);
                    if v.len() > SPARSE_MAX {
                        self.make_dense();
                    }
                }
            },
            Form::Dense(d) => d[idx] = d[idx].max(rank),
        }
    }

    fn make_dense(&mut self) {
        if !matches!(self.form, Form::Dense(_)) {
            let mut regs = Box::new([0u8; HLL_M]);
            for p in self.packed() {
                regs[(p >> 8) as usize] = p as u8;
            }
            self.form = Form::Dense(regs);
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
        if let Form::Dense(theirs) = &other.form {
            self.make_dense();
            if let Form::Dense(ours) = &mut self.form {
                for (a, b) in ours.iter_mut().zip(theirs.iter()) {
                    *a = (*a).max(*b);
                }
            }
        } else {
            for p in other.packed() {
                self.set((p >> 8) as usize, p as u8);
            }
        }
    }

    /// The set registers, packed, ascending by index.
    fn packed(&self) -> Packed<'_> {
        match &self.form {
            Form::Inline(regs) => Packed::Slice(regs.iter()),
            Form::Sparse(v) => Packed::Slice(v.iter()),
            Form::Dense(d) => Packed::Dense(d.iter().enumerate()),
        }
    }

    /// The dense on-disk form: 4,096 registers.
    pub fn registers(&self) -> Vec<u8> {
        if let Form::Dense(d) = &self.form {
            return d.to_vec();
        }
        let mut regs = vec![0u8; HLL_M];
        for p in self.packed() {
            regs[(p >> 8) as usize] = p as u8;
        }
        regs
    }

    pub fn estimate(&self) -> f64 {
        Self::estimate_registers(&self.registers())
    }

    /// The on-disk form: set registers only, as `index << 8 | rank`,
    /// ascending by index.
    pub fn to_packed(&self) -> Vec<u32> {
        self.packed().collect()
    }

    /// Reads the on-disk form back; entries may repeat an index (a union
    /// of rows), the highest rank wins. Out-of-range indexes and rank 0
    /// (an unset register) are ignored.
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

impl PartialEq for Hll {
    fn eq(&self, other: &Self) -> bool {
        self.packed().eq(other.packed())
    }
}

impl Eq for Hll {}

/// The set registers of any form, packed, ascending by index.
enum Packed<'a> {
    Slice(std::slice::Iter<'a, u32>),
    Dense(std::iter::Enumerate<std::slice::Iter<'a, u8>>),
}

impl Iterator for Packed<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            Packed::Slice(it) => it.find(|p| **p != 0).copied(),
            Packed::Dense(it) => it.find(|(_, r)| **r > 0).map(|(i, r)| pack(i, *r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sketches_fit_in_the_struct() {
        assert!(std::mem::size_of::<Hll>() <= 24);
        let mut h = Hll::default();
        let mut want = std::collections::BTreeMap::new();
        for id in 0..3_000u64 {
            h.add(id * 7919);
            let mut one = Hll::default();
            one.add(id * 7919);
            for p in one.to_packed() {
                let r = want.entry(p >> 8).or_insert(0);
                *r = (*r).max(p & 0xff);
            }
            let expect: Vec<u32> = want.iter().map(|(i, r)| i << 8 | r).collect();
            assert_eq!(h.to_packed(), expect, "after {id}");
        }
        assert!(matches!(h.form, Form::Dense(_)));
        assert_eq!(Hll::from_packed(&h.to_packed()), h);
    }
}
