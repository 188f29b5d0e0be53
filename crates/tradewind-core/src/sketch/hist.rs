//! [`LogHistogram`]: log-bucket counts of non-negative integers, in the
//! smallest of three forms that fits them:
//! - one bucket inline (no allocation): a row with a handful of equal-ish
//!   values, the most common case for a fine-grained key;
//! - sparse: sorted `(key, count)` pairs, while the buckets are scattered;
//! - flat: one count per key over `[lo, lo + len)`, once at least a
//!   quarter of that range is in use (so it takes at most twice the bytes
//!   of the sparse form), with zeros counted apart.
//!
//! The form never shows: equality, the on-disk arrays and quantiles
//! depend only on the non-empty buckets.

use std::sync::OnceLock;

/// Relative accuracy of [`LogHistogram`] quantiles.
pub const HIST_ALPHA: f64 = 0.01;
const ZERO_KEY: i16 = i16::MIN;
/// A flat form is used once its range is at most this many times the
/// number of buckets in use.
const FLAT_SPREAD: usize = 4;
/// Below this many buckets the sparse form stays, whatever the spread.
const SPARSE_MIN: usize = 8;

fn gamma() -> f64 {
    (1.0 + HIST_ALPHA) / (1.0 - HIST_ALPHA)
}

/// The bucket of `v` by definition: `ceil(ln v / ln γ)`.
fn key_by_log(v: u64) -> i16 {
    ((v as f64).ln() / gamma().ln()).ceil() as i16
}

/// `FIRST[k]` = the smallest `v ≥ 1` whose key is at least `k`, for every
/// key a `u64` can have, from [`key_by_log`] itself, so a lookup gives
/// exactly its answer without a logarithm.
fn first_values() -> &'static [u64] {
    static FIRST: OnceLock<Vec<u64>> = OnceLock::new();
    FIRST.get_or_init(|| {
        let top = key_by_log(u64::MAX);
        let mut first = Vec::with_capacity(top as usize + 1);
        let mut lo = 1u64;
        for k in 0..=top {
            // Smallest v >= lo with key_by_log(v) >= k: bracket it from
            // γ^(k-1) outwards, then bisect.
            let guess = (gamma().powi(k as i32 - 1) as u64).max(lo);
            let (mut a, mut b) = if key_by_log(guess) >= k {
                let mut step = 1u64;
                let mut b = guess;
                let mut a = b.saturating_sub(step).max(lo);
                while a > lo && key_by_log(a) >= k {
                    b = a;
                    step = step.saturating_mul(2);
                    a = a.saturating_sub(step).max(lo);
                }
                (a, b)
            } else {
                let mut step = 1u64;
                let mut a = guess;
                let mut b = a.saturating_add(step);
                while b < u64::MAX && key_by_log(b) < k {
                    a = b;
                    step = step.saturating_mul(2);
                    b = b.saturating_add(step);
                }
                (a, b)
            };
            // Invariant: key(b) >= k (or b = MAX); a < answer or a = lo.
            if key_by_log(a) >= k {
                b = a;
            }
            while a + 1 < b {
                let mid = a + (b - a) / 2;
                if key_by_log(mid) >= k {
                    b = mid;
                } else {
                    a = mid;
                }
            }
            first.push(b);
            lo = b;
        }
        first
    })
}

#[derive(Debug, Clone, Default)]
enum Form {
    #[default]
    Empty,
    One(i16, u64),
    /// Sorted by key; the zero key (`i16::MIN`) first if present.
    Sparse(Vec<(i16, u64)>),
    Flat(Box<Flat>),
}

#[derive(Debug, Clone)]
struct Flat {
    zeros: u64,
    lo: i16,
    counts: Vec<u64>,
}

impl Flat {
    fn slot(&mut self, k: i16) -> &mut u64 {
        if k == ZERO_KEY {
            return &mut self.zeros;
        }
        if k < self.lo {
            let grow = (self.lo as i32 - k as i32) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.lo = k;
        }
        let i = (k as i32 - self.lo as i32) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        &mut self.counts[i]
    }
}

/// The non-empty buckets of any form, in key order.
#[derive(Clone)]
enum Buckets<'a> {
    One(Option<(i16, u64)>),
    Pairs(std::slice::Iter<'a, (i16, u64)>),
    Flat {
        zeros: Option<u64>,
        lo: i16,
        counts: std::iter::Enumerate<std::slice::Iter<'a, u64>>,
    },
}

impl Iterator for Buckets<'_> {
    type Item = (i16, u64);

    fn next(&mut self) -> Option<(i16, u64)> {
        match self {
            Buckets::One(one) => one.take(),
            Buckets::Pairs(it) => it.find(|e| e.1 > 0).copied(),
            Buckets::Flat { zeros, lo, counts } => {
                if let Some(z) = zeros.take() {
                    return Some((ZERO_KEY, z));
                }
                let (i, c) = counts.find(|(_, c)| **c > 0)?;
                Some(((*lo as i32 + i as i32) as i16, *c))
            }
        }
    }
}

/// A log-bucket histogram of non-negative integers (DDSketch-style).
#[derive(Debug, Clone, Default)]
pub struct LogHistogram {
    form: Form,
}

impl LogHistogram {
    pub fn key(v: u64) -> i16 {
        if v == 0 {
            return ZERO_KEY;
        }
        let first = first_values();
        // Keys of an octave [2^b, 2^(b+1)) lie within about 35 of
        // b·ln2/lnγ; search the table around there.
        let b = 63 - v.leading_zeros() as usize;
        let per_octave = std::f64::consts::LN_2 / gamma().ln();
        let guess = (b as f64 * per_octave) as usize;
        let lo = guess.saturating_sub(2).min(first.len() - 1);
        let hi = (guess + per_octave as usize + 4).min(first.len());
        let k = lo + first[lo..hi].partition_point(|f| *f <= v);
        (k - 1) as i16
    }

    pub fn add(&mut self, v: u64) {
        self.add_n(Self::key(v), 1);
    }

    fn add_n(&mut self, k: i16, n: u64) {
        match &mut self.form {
            Form::Empty => self.form = Form::One(k, n),
            Form::One(k0, c) if *k0 == k => *c += n,
            Form::One(k0, c) => {
                let mut v = vec![(*k0, *c), (k, n)];
                v.sort_unstable_by_key(|e| e.0);
                self.form = Form::Sparse(v);
            }
            Form::Sparse(v) => match v.binary_search_by_key(&k, |e| e.0) {
                Ok(i) => v[i].1 += n,
                Err(i) => {
                    v.insert(i, (k, n));
                    self.reshape();
                }
            },
            Form::Flat(f) => {
                let before = f.counts.len();
                *f.slot(k) += n;
                if f.counts.len() != before {
                    self.reshape();
                }
            }
        }
    }

    /// Turns a sparse form flat once dense enough, and a flat one sparse
    /// again once an outlier has spread it too thin.
    fn reshape(&mut self) {
        let flat = match &self.form {
            Form::Sparse(v) => {
                let nonzero = &v[(v[0].0 == ZERO_KEY) as usize..];
                let (Some(lo), Some(hi)) = (nonzero.first(), nonzero.last()) else {
                    return;
                };
                let span = (hi.0 as i32 - lo.0 as i32 + 1) as usize;
                if nonzero.len() < SPARSE_MIN || span > nonzero.len() * FLAT_SPREAD {
                    return;
                }
                true
            }
            Form::Flat(f) => {
                let used = f.counts.iter().filter(|c| **c > 0).count();
                if f.counts.len() <= used.max(SPARSE_MIN) * FLAT_SPREAD {
                    return;
                }
                false
            }
            _ => return,
        };
        let buckets = self.iter();
        self.form = if flat {
            let mut f = Flat {
                zeros: 0,
                lo: buckets
                    .clone()
                    .map(|e| e.0)
                    .find(|k| *k != ZERO_KEY)
                    .unwrap_or(0),
                counts: Vec::new(),
            };
            for (k, c) in buckets {
                *f.slot(k) += c;
            }
            Form::Flat(Box::new(f))
        } else {
            Form::Sparse(buckets.collect())
        };
    }

    pub fn merge(&mut self, other: &LogHistogram) {
        for (k, c) in other.iter() {
            self.add_n(k, c);
        }
    }

    /// The non-empty buckets in key order.
    fn iter(&self) -> Buckets<'_> {
        match &self.form {
            Form::Empty => Buckets::Pairs([].iter()),
            Form::One(k, c) => Buckets::One(Some((*k, *c))),
            Form::Sparse(v) => Buckets::Pairs(v.iter()),
            Form::Flat(f) => Buckets::Flat {
                zeros: (f.zeros > 0).then_some(f.zeros),
                lo: f.lo,
                counts: f.counts.iter().enumerate(),
            },
        }
    }

    pub fn count(&self) -> u64 {
        self.iter().map(|e| e.1).sum()
    }

    /// The on-disk form: sorted keys and their counts (non-empty buckets).
    pub fn to_arrays(&self) -> (Vec<i16>, Vec<u64>) {
        self.iter().unzip()
    }

    pub fn from_arrays(keys: &[i16], counts: &[u64]) -> Self {
        let mut h = Self::default();
        for (k, c) in keys.iter().zip(counts) {
            if *c > 0 {
                h.add_n(*k, *c);
            }
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
        for (k, c) in self.iter() {
            seen += c;
            if seen >= rank {
                if k == ZERO_KEY {
                    return Some(0.0);
                }
                let g = gamma();
                return Some(2.0 * g.powi(k as i32) / (g + 1.0));
            }
        }
        None
    }
}

impl PartialEq for LogHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for LogHistogram {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lookup_gives_the_logarithm_s_key() {
        let mut v = 1u64;
        while v < 5_000_000 {
            assert_eq!(LogHistogram::key(v), key_by_log(v), "{v}");
            v += 1;
        }
        for &f in first_values() {
            for d in [f.saturating_sub(1).max(1), f, f.saturating_add(1)] {
                assert_eq!(LogHistogram::key(d), key_by_log(d), "{d}");
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1_000_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x >> (x % 64)).max(1);
            assert_eq!(LogHistogram::key(v), key_by_log(v), "{v}");
        }
        assert_eq!(LogHistogram::key(u64::MAX), key_by_log(u64::MAX));
    }

    #[test]
    fn every_form_reads_the_same() {
        let mut h = LogHistogram::default();
        let mut want = std::collections::BTreeMap::new();
        let mut x = 7u64;
        for i in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Clustered, then an outlier now and then, and zeros.
            let v = match i % 50 {
                0 => x % 7,
                1 => x,
                _ => 1_000 + x % (10 * (i + 1)),
            };
            h.add(v);
            *want.entry(LogHistogram::key(v)).or_insert(0u64) += 1;
            let got: Vec<(i16, u64)> = h.iter().collect();
            let want: Vec<(i16, u64)> = want.iter().map(|(k, c)| (*k, *c)).collect();
            assert_eq!(got, want, "after {i}");
        }
        let (k, c) = h.to_arrays();
        assert_eq!(LogHistogram::from_arrays(&k, &c), h);
    }
}
