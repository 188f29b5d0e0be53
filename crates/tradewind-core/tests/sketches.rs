//! Accuracy of the mergeable sketches against exact answers.

use tradewind_core::sketch::{Hll, LogHistogram};

fn exact_quantile(sorted: &[u64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1] as f64
}

#[test]
fn histogram_quantiles_are_within_one_percent_after_merging() {
    // Transit times in ms: a wide, skewed spread, split over 4 "partitions".
    let mut state = 0x9E3779B97F4A7C15u64;
    let mut values = Vec::new();
    let mut parts = vec![LogHistogram::default(); 4];
    for i in 0..200_000u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let v = 60_000 + (state % 1_000_000) * (1 + (state >> 60));
        values.push(v);
        parts[(i % 4) as usize].add(v);
    }
    let mut merged = LogHistogram::default();
    for p in &parts {
        let (k, c) = p.to_arrays();
        merged.merge(&LogHistogram::from_arrays(&k, &c));
    }
    values.sort_unstable();
    for q in [0.5, 0.95, 0.99] {
        let exact = exact_quantile(&values, q);
        let est = merged.quantile(q).unwrap();
        let err = (est - exact).abs() / exact;
        assert!(err <= 0.01, "p{q}: {est} vs {exact} ({err})");
    }
}

#[test]
fn hll_distinct_count_at_one_million_is_within_five_percent() {
    let mut a = Hll::default();
    let mut b = Hll::default();
    for id in 0..1_000_000u64 {
        if id % 2 == 0 {
            a.add(id)
        } else {
            b.add(id)
        }
        // Duplicates change nothing.
        if id % 10 == 0 {
            a.add(id);
        }
    }
    a.merge(&b);
    let est = a.estimate();
    let err = (est - 1_000_000.0).abs() / 1_000_000.0;
    assert!(err < 0.05, "estimate {est} ({err})");
    assert_eq!(Hll::estimate_registers(&a.registers()), est);
}

#[test]
fn hll_is_accurate_for_small_counts() {
    let mut h = Hll::default();
    for id in 0..1000u64 {
        h.add(id * 7919);
    }
    assert!((h.estimate() - 1000.0).abs() < 30.0, "{}", h.estimate());
}

#[test]
fn sparse_and_dense_hll_forms_agree() {
    // 100 ids stay sparse; 5,000 turn dense; merging either way gives the
    // registers of one sketch that saw everything.
    let mut all = Hll::default();
    let mut small = Hll::default();
    let mut big = Hll::default();
    for id in 0..100u64 {
        small.add(id);
        all.add(id);
    }
    for id in 1_000..6_000u64 {
        big.add(id);
        all.add(id);
    }
    let mut a = small.clone();
    a.merge(&big);
    let mut b = big.clone();
    b.merge(&small);
    assert_eq!(a.registers(), all.registers());
    assert_eq!(b.registers(), all.registers());
    assert!(
        (small.estimate() - 100.0).abs() < 5.0,
        "{}",
        small.estimate()
    );
}

#[test]
fn packed_hll_form_round_trips_and_unions_like_merge() {
    let mut small = Hll::default();
    let mut big = Hll::default();
    for id in 0..50u64 {
        small.add(id);
    }
    for id in 25..9_000u64 {
        big.add(id);
    }
    for h in [&small, &big] {
        let packed = h.to_packed();
        assert!(
            packed.windows(2).all(|w| w[0] >> 8 < w[1] >> 8),
            "ascending"
        );
        assert_eq!(Hll::from_packed(&packed).registers(), h.registers());
        assert_eq!(Hll::estimate_packed(&packed), h.estimate());
    }
    assert!(small.to_packed().len() <= 50, "sparse rows stay small");
    // A plain union of two rows' entries reads back as their merge.
    let mut union = small.to_packed();
    union.extend(big.to_packed());
    let mut merged = small.clone();
    merged.merge(&big);
    assert_eq!(Hll::from_packed(&union).registers(), merged.registers());
}
