//! The dashboard's sketch panels against the simulator's exact answers:
//! every quantile within the log-bucket histogram's documented 1%, every
//! distinct count within 5% of the exact count (the HLL's standard error
//! is about 1.6%; small counts are nearly exact).

use serde_json::Value;
use tradewind_sim::Truth;

/// `got` (from a sketch) is within `rel` of `want` (exact).
fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= want.abs() * rel + 1e-6 * want.abs().max(1.0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap()
}

/// Quantiles and distinct counts of `/api/dashboard.json` over all data
/// (no filter) against `truth.exact`.
pub fn assert_sketches_match(d: &Value, truth: &Truth) {
    let e = &truth.exact;
    assert!(!e.payment_sizes.is_empty(), "the truth has exact answers");

    let sizes = d["payment_sizes"].as_array().unwrap();
    assert_eq!(
        sizes.len(),
        e.payment_sizes.len(),
        "one size row per corridor and currency"
    );
    for want in &e.payment_sizes {
        let got = sizes
            .iter()
            .find(|g| {
                s(g, "payer") == want.payer
                    && s(g, "payee") == want.payee
                    && s(g, "currency") == want.currency
            })
            .unwrap_or_else(|| panic!("no size row for {want:?}"));
        assert_eq!(got["payments"].as_u64().unwrap(), want.payments, "{want:?}");
        let scale = if want.currency == "JPY" { 1.0 } else { 100.0 };
        for (k, exact) in [("p50", want.p50), ("p95", want.p95), ("p99", want.p99)] {
            let minor = got[k].as_f64().unwrap() * scale;
            assert!(
                close(minor, exact as f64, 0.01),
                "{} {}→{} {k}: sketch {minor}, exact {exact}",
                want.currency,
                want.payer,
                want.payee
            );
        }
    }

    let buyers = d["buyers"].as_array().unwrap();
    assert_eq!(buyers.len(), e.buyers.len());
    for want in &e.buyers {
        let got = buyers
            .iter()
            .find(|g| {
                s(g, "payer") == want.payer
                    && s(g, "payee") == want.payee
                    && s(g, "method") == want.method
            })
            .unwrap_or_else(|| panic!("no buyers row for {want:?}"));
        let n = got["buyers"].as_u64().unwrap() as f64;
        assert!(
            (n - want.buyers as f64).abs() <= (want.buyers as f64 * 0.05).max(1.0),
            "{want:?}: HLL says {n}"
        );
    }

    let sla = d["sla"].as_array().unwrap();
    for want in &e.transit {
        let got = sla
            .iter()
            .find(|g| {
                s(g, "origin") == want.origin
                    && s(g, "destination") == want.destination
                    && s(g, "mode") == want.mode
            })
            .unwrap_or_else(|| panic!("no SLA row for {want:?}"));
        assert_eq!(got["delivered"].as_u64().unwrap(), want.delivered);
        for (k, exact) in [
            ("transit_p50_h", want.p50_ms),
            ("transit_p95_h", want.p95_ms),
        ] {
            let ms = got[k].as_f64().unwrap() * 3_600_000.0;
            assert!(
                close(ms, exact as f64, 0.01),
                "{want:?} {k}: sketch {ms} ms"
            );
        }
    }

    let devices = d["devices"].as_array().unwrap();
    assert_eq!(devices.len(), e.devices.len());
    for want in &e.devices {
        let got = devices
            .iter()
            .find(|g| s(g, "kind") == want.kind)
            .unwrap_or_else(|| panic!("no device row for {want:?}"));
        let n = got["devices"].as_u64().unwrap() as f64;
        assert!(
            (n - want.devices as f64).abs() <= (want.devices as f64 * 0.05).max(1.0),
            "{want:?}: HLL says {n}"
        );
        let p10 = got["battery_p10_pct"].as_f64().unwrap() * 10.0;
        assert!(
            close(p10, want.battery_p10 as f64, 0.01),
            "{want:?}: sketch p10 {p10}‰"
        );
    }
}
