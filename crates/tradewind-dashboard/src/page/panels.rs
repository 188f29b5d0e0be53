//! The dashboard's tables, one function per panel: corridor volumes,
//! payment health by method, payment sizes, distinct buyers, delivery SLA
//! with transit quantiles, cold chain, device health and the ledger. Rows
//! that name a corridor or method link to the page filtered on it.

use std::fmt::Write as _;

use super::{bar, big, esc, pct, share, PageInfo};
use crate::data::{
    Buyers, ColdChain, Corridor, DeviceHealth, LedgerTotals, MethodHealth, PaymentSize, Sla,
};
use crate::selection::Selection;

/// Rows shown per table; the JSON has them all.
const ROWS: usize = 15;

/// The top corridors by USD volume.
pub fn corridors(o: &mut String, corridors: &[Corridor], sel: &Selection) {
    o.push_str("<h2>Corridor volumes</h2><table id=corridors><tr><th>corridor</th><th>volume (USD)</th><th>payments</th><th>failed</th></tr>");
    let top = corridors.first().map_or(1.0, |c| c.volume_usd.max(1.0));
    for c in corridors.iter().take(ROWS) {
        let link = sel.query(&[("corridor", &format!("{}-{}", c.payer, c.payee))]);
        let _ = write!(
            o,
            "<tr><td><a href=\"/{}\">{} → {}</a></td>{}<td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&link),
            esc(&c.payer),
            esc(&c.payee),
            bar(
                c.volume_usd / top,
                &format!("${}", big(c.volume_usd)),
                "blue"
            ),
            c.payments,
            pct(share(c.failed, c.payments))
        );
    }
    o.push_str("</table>");
}

/// Payment health by method.
pub fn methods(o: &mut String, methods: &[MethodHealth], sel: &Selection) {
    o.push_str("<h2>Payment health by method</h2><table id=methods><tr><th>method</th><th>payments</th><th>captured</th><th>failed</th><th>refunded</th></tr>");
    for m in methods {
        let _ = write!(
            o,
            "<tr><td><a href=\"/{}\">{}</a></td><td class=num>{}</td>{}{}{}</tr>",
            esc(&sel.query(&[("method", &m.method)])),
            esc(&m.method),
            m.payments,
            bar(
                share(m.captured, m.payments),
                &pct(share(m.captured, m.payments)),
                "green"
            ),
            bar(
                share(m.failed, m.payments) * 10.0,
                &pct(share(m.failed, m.payments)),
                "red"
            ),
            bar(
                share(m.refunded, m.payments) * 10.0,
                &pct(share(m.refunded, m.payments)),
                "amber"
            ),
        );
    }
    o.push_str("</table><div class=sub>failed and refunded bars are drawn ×10</div>");
}

/// A major-unit amount: no decimals from 100 up.
fn amount(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Payment size quantiles per corridor and currency.
pub fn sizes(o: &mut String, sizes: &[PaymentSize]) {
    o.push_str("<h2>Payment sizes</h2><table id=sizes><tr><th>corridor</th><th>currency</th><th>payments</th><th>p50</th><th>p95</th><th>p99</th></tr>");
    for s in sizes.iter().take(ROWS) {
        let _ = write!(
            o,
            "<tr><td>{} → {}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&s.payer),
            esc(&s.payee),
            esc(&s.currency),
            s.payments,
            amount(s.p50),
            amount(s.p95),
            amount(s.p99)
        );
    }
    o.push_str("</table><div class=sub>from the merged amount histograms: each quantile within 1% of the exact value</div>");
}

/// Distinct buyers per corridor and method.
pub fn buyers(o: &mut String, buyers: &[Buyers]) {
    o.push_str("<h2>Distinct buyers</h2><table id=buyers><tr><th>corridor</th><th>method</th><th>payments</th><th>distinct buyers</th></tr>");
    for b in buyers.iter().take(ROWS) {
        let _ = write!(
            o,
            "<tr><td>{} → {}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&b.payer),
            esc(&b.payee),
            esc(&b.method),
            b.payments,
            b.buyers
        );
    }
    o.push_str("</table><div class=sub>HyperLogLog estimates merged across partitions and windows (about 1.6% standard error)</div>");
}

fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "–".into(), |h| format!("{h:.1} h"))
}

/// Delivery SLA per lane, with transit quantiles against the promise.
pub fn sla(o: &mut String, sla: &[Sla], info: &PageInfo<'_>) {
    let _ = write!(
        o,
        "<h2>Delivery SLA</h2><div class=sub>promise: {} h domestic, {} h international</div>\
         <table id=sla><tr><th>corridor</th><th>mode</th><th>delivered</th><th>on time</th><th>mean transit</th><th>p50 transit</th><th>p95 transit</th><th>promise</th><th>breaches</th></tr>",
        info.sla_domestic_h, info.sla_international_h
    );
    for s in sla {
        let mean = (s.delivered > 0).then(|| s.transit_ms_sum as f64 / s.delivered as f64 / 3.6e6);
        let promise = if s.origin == s.destination {
            info.sla_domestic_h
        } else {
            info.sla_international_h
        };
        let late_p95 = s.transit_p95_h.is_some_and(|p| p > promise as f64);
        let on_time = share(s.on_time, s.delivered);
        let _ = write!(
            o,
            "<tr><td>{} → {}</td><td>{}</td><td class=num>{}</td>{}<td class=num>{}</td><td class=num>{}</td><td class=num{}>{}</td><td class=num>{promise} h</td><td class=num>{}</td></tr>",
            esc(&s.origin),
            esc(&s.destination),
            esc(&s.mode),
            s.delivered,
            bar(on_time, &pct(on_time), if on_time >= 0.95 { "green" } else { "amber" }),
            hours(mean),
            hours(s.transit_p50_h),
            if late_p95 { " style=\"color:#b33\"" } else { "" },
            hours(s.transit_p95_h),
            s.breaches
        );
    }
    o.push_str("</table><div class=sub>transit quantiles from the merged transit histograms (within 1%); red: p95 beyond the promise</div>");
}

/// Cold chain and device silences per country and kind.
pub fn cold_chain(o: &mut String, cold: &[ColdChain]) {
    o.push_str("<h2>Cold chain and device health</h2><table id=cold><tr><th>country</th><th>device</th><th>readings</th><th>excursions</th><th>silent devices</th><th>silence events</th></tr>");
    let worst = cold.iter().map(|c| c.excursions).max().unwrap_or(0).max(1) as f64;
    for c in cold {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=num>{}</td>{}<td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&c.country),
            esc(&c.kind),
            c.readings,
            bar(
                c.excursions as f64 / worst,
                &c.excursions.to_string(),
                "red"
            ),
            c.silent_devices,
            c.silent
        );
    }
    o.push_str("</table>");
}

/// Distinct devices and battery p10 per device kind.
pub fn devices(o: &mut String, devices: &[DeviceHealth]) {
    o.push_str("<h2>Devices by kind</h2><table id=devices><tr><th>device</th><th>readings</th><th>distinct devices</th><th>battery p10</th></tr>");
    for d in devices {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&d.kind),
            d.readings,
            d.devices,
            d.battery_p10_pct
                .map_or_else(|| "–".into(), |p| format!("{p:.0}%"))
        );
    }
    o.push_str("</table><div class=sub>distinct devices: HyperLogLog; battery p10: 10% of readings were at or below it</div>");
}

/// The ledger: what happened to every record read.
pub fn ledger(o: &mut String, ledger: &[LedgerTotals]) {
    o.push_str("<h2>Pipeline ledger (all time)</h2><table id=ledger><tr><th>topic</th><th>seen</th><th>aggregated</th><th>too late</th><th>future</th><th>malformed</th><th>unknown enum</th><th>invalid</th><th>duplicate</th></tr>");
    for l in ledger {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&l.topic), l.seen, l.aggregated, l.too_late, l.future_timestamp, l.malformed, l.unknown_enum, l.invalid, l.duplicate
        );
    }
    o.push_str("</table>");
}
