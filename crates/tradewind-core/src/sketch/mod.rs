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

//!
//! In memory each sketch keeps the smallest form that holds it (see
//! [`hist`] and [`hll`]); the form never shows in results.

mod hist;
mod hll;

pub use hist::{LogHistogram, HIST_ALPHA};
pub use hll::{Hll, HLL_P};
