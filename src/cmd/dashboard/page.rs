//! The dashboard as one self-contained HTML page: tiles, bar tables and an
//! SVG timeline, no scripts and nothing fetched from elsewhere, so it works
//! on an offline machine. It reloads itself every `refresh` seconds.

use std::fmt::Write as _;

use super::data::{ColdChain, Corridor, Dashboard, LedgerTotals, MethodHealth, Sla, Totals};

/// What the page needs besides the data.
pub struct PageInfo<'a> {
    pub database: &'a str,
    pub hours: u32,
    pub refresh_secs: u64,
    pub sla_domestic_h: u64,
    pub sla_international_h: u64,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn big(x: f64) -> String {
    match x.abs() {
        v if v >= 1e9 => format!("{:.2} B", x / 1e9),
        v if v >= 1e6 => format!("{:.2} M", x / 1e6),
        v if v >= 1e4 => format!("{:.1} k", x / 1e3),
        _ => format!("{x:.0}"),
    }
}

/// `2026-11-11 08:00` for Unix seconds.
fn utc(secs: u32) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..16).unwrap_or(&s).replace('T', " ")
}

/// A table cell holding a bar `frac` of the column's width, and a label.
fn bar(frac: f64, label: &str, class: &str) -> String {
    format!(
        "<td class=bar><div class={class} style=\"width:{:.1}%\"></div><span>{}</span></td>",
        (frac.clamp(0.0, 1.0) * 100.0),
        esc(label)
    )
}

fn tile(out: &mut String, title: &str, value: &str, note: &str) {
    let _ = write!(
        out,
        "<div class=tile><div class=t>{}</div><div class=v>{}</div><div class=n>{}</div></div>",
        esc(title),
        esc(value),
        esc(note)
    );
}

fn timeline_svg(d: &Dashboard) -> String {
    let (w, h) = (900.0, 160.0);
    let max = d
        .timeline
        .iter()
        .map(|t| t.payments)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = d.timeline.len().max(1) as f64;
    let bw = w / n;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {h}\" class=timeline role=img aria-label=\"payments per window\">"
    );
    for (i, t) in d.timeline.iter().enumerate() {
        let x = i as f64 * bw;
        let ph = t.payments as f64 / max * (h - 10.0);
        let fh = t.failed as f64 / max * (h - 10.0);
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ph:.1}\" class=ok><title>{} UTC: {} payments, {} failed</title></rect>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{fh:.1}\" class=bad></rect>",
            h - ph,
            (bw - 1.0).max(0.5),
            utc(t.start),
            t.payments,
            t.failed,
            h - fh,
            (bw - 1.0).max(0.5),
        );
    }
    svg.push_str("</svg>");
    let (first, last) = match (d.timeline.first(), d.timeline.last()) {
        (Some(f), Some(l)) => (utc(f.start), utc(l.start + d.bucket_secs)),
        _ => Default::default(),
    };
    let _ = write!(
        svg,
        "<div class=axis><span>{first}</span><span>peak {} payments per bar · red: failed</span><span>{last} UTC</span></div>",
        max as u64
    );
    svg
}

/// `30 min`, `2 h`, `1 d` for a bucket length in seconds.
fn bucket_len(secs: u32) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{} min", s / 60),
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#1d2630;background:#f6f7f9}\
h1{font-size:22px;margin:0}h2{font-size:16px;margin:28px 0 8px}.sub{color:#5b6673}\
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}.tile{background:#fff;border-radius:8px;padding:12px 16px;min-width:150px;box-shadow:0 1px 2px #0002}\
.t{color:#5b6673;font-size:12px;text-transform:uppercase}.v{font-size:24px;font-weight:600}.n{color:#5b6673;font-size:12px}\
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002;border-radius:8px;min-width:600px}\
td,th{padding:5px 10px;text-align:left;border-bottom:1px solid #eef0f3}th{font-size:12px;color:#5b6673}\
td.num{text-align:right;font-variant-numeric:tabular-nums}td.bar{position:relative;width:260px}\
td.bar div{position:absolute;left:0;top:4px;bottom:4px;border-radius:3px}td.bar span{position:relative;padding-left:6px}\
.blue{background:#9cc3f0}.green{background:#9fdcaa}.red{background:#f2a7a7}.amber{background:#f5d38f}\
svg.timeline{width:100%;max-width:900px;height:160px;background:#fff;border-radius:8px}rect.ok{fill:#6fa8e8}rect.bad{fill:#e06666}\
.empty{padding:24px;background:#fff;border-radius:8px}\
.axis{display:flex;justify-content:space-between;max-width:900px;color:#5b6673;font-size:12px;margin-top:4px}";

/// Renders the page: a header, then one section per panel.
pub fn render(d: &Dashboard, info: &PageInfo<'_>) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let _ = write!(
        o,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta http-equiv=refresh content=\"{}\"><title>Tradewind</title><style>{STYLE}</style></head><body>\
         <h1>Tradewind: cross-border trade</h1>",
        info.refresh_secs
    );
    if d.to == 0 {
        empty(&mut o, info);
        return o;
    }
    subtitle(&mut o, d, info);
    tiles(&mut o, &d.totals);
    let _ = write!(o, "<h2>Payments per {}</h2>", bucket_len(d.bucket_secs));
    o.push_str(&timeline_svg(d));
    corridors(&mut o, &d.corridors);
    methods(&mut o, &d.methods);
    sla(&mut o, &d.sla, info);
    cold_chain(&mut o, &d.cold_chain);
    ledger(&mut o, &d.ledger);
    o.push_str("</body></html>");
    o
}

/// The page while ClickHouse holds no window yet.
fn empty(o: &mut String, info: &PageInfo<'_>) {
    let _ = write!(
        o,
        "<div class=sub>database <b>{}</b></div><p class=empty>No windows in ClickHouse yet. \
         Run the simulator and an aggregator; this page reloads every {} s.</p></body></html>",
        esc(info.database),
        info.refresh_secs
    );
}

/// What the page covers and how it refreshes.
fn subtitle(o: &mut String, d: &Dashboard, info: &PageInfo<'_>) {
    let span = if info.hours == 0 {
        "all data".to_string()
    } else {
        format!("the latest {} h of event time", info.hours)
    };
    let _ = write!(
        o,
        "<div class=sub>database <b>{}</b> · {span}: windows from {} to {} UTC · \
         reloads every {} s · JSON at <a href=\"/api/dashboard.json\">/api/dashboard.json</a></div>",
        esc(info.database),
        utc(d.from.max(d.timeline.first().map_or(0, |t| t.start))),
        utc(d.to),
        info.refresh_secs
    );
}

/// The headline figures.
fn tiles(o: &mut String, t: &Totals) {
    o.push_str("<div class=tiles>");
    tile(
        o,
        "payments",
        &big(t.payments as f64),
        &format!("{} failed", pct(share(t.failed, t.payments))),
    );
    tile(
        o,
        "volume",
        &format!("${}", big(t.volume_usd)),
        "USD at the latest FX quotes",
    );
    tile(
        o,
        "captured",
        &pct(share(t.captured, t.payments)),
        &format!("{} refunded", pct(share(t.refunded, t.payments))),
    );
    tile(
        o,
        "deliveries on time",
        &pct(share(t.on_time, t.delivered)),
        &format!(
            "{} delivered, {} SLA breaches",
            big(t.delivered as f64),
            t.breaches
        ),
    );
    tile(
        o,
        "cold-chain alerts",
        &big(t.excursions as f64),
        &format!("excursions in {} readings", big(t.readings as f64)),
    );
    tile(
        o,
        "silent devices",
        &big(t.silent_devices as f64),
        &format!(
            "distinct devices that sent no reading within the silence gap ({} silences)",
            big(t.silent as f64)
        ),
    );
    o.push_str("</div>");
}

/// The top corridors by USD volume.
fn corridors(o: &mut String, corridors: &[Corridor]) {
    o.push_str("<h2>Corridor volumes</h2><table><tr><th>corridor</th><th>volume (USD)</th><th>payments</th><th>failed</th></tr>");
    let top = corridors.first().map_or(1.0, |c| c.volume_usd.max(1.0));
    for c in corridors.iter().take(15) {
        let _ = write!(
            o,
            "<tr><td>{} → {}</td>{}<td class=num>{}</td><td class=num>{}</td></tr>",
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
fn methods(o: &mut String, methods: &[MethodHealth]) {
    o.push_str("<h2>Payment health by method</h2><table><tr><th>method</th><th>payments</th><th>captured</th><th>failed</th><th>refunded</th></tr>");
    for m in methods {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=num>{}</td>{}{}{}</tr>",
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

/// Delivery SLA per lane.
fn sla(o: &mut String, sla: &[Sla], info: &PageInfo<'_>) {
    let _ = write!(
        o,
        "<h2>Delivery SLA</h2><div class=sub>promise: {} h domestic, {} h international</div>\
         <table><tr><th>corridor</th><th>mode</th><th>delivered</th><th>on time</th><th>mean transit</th><th>breaches</th></tr>",
        info.sla_domestic_h, info.sla_international_h
    );
    for s in sla {
        let mean_h = if s.delivered == 0 {
            String::from("–")
        } else {
            format!(
                "{:.1} h",
                s.transit_ms_sum as f64 / s.delivered as f64 / 3.6e6
            )
        };
        let on_time = share(s.on_time, s.delivered);
        let _ = write!(
            o,
            "<tr><td>{} → {}</td><td>{}</td><td class=num>{}</td>{}<td class=num>{mean_h}</td><td class=num>{}</td></tr>",
            esc(&s.origin),
            esc(&s.destination),
            esc(&s.mode),
            s.delivered,
            bar(on_time, &pct(on_time), if on_time >= 0.95 { "green" } else { "amber" }),
            s.breaches
        );
    }
    o.push_str("</table>");
}

/// Cold chain and device health per country and kind.
fn cold_chain(o: &mut String, cold: &[ColdChain]) {
    o.push_str("<h2>Cold chain and device health</h2><table><tr><th>country</th><th>device</th><th>readings</th><th>excursions</th><th>silent devices</th><th>silence events</th></tr>");
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

/// The ledger: what happened to every record read.
fn ledger(o: &mut String, ledger: &[LedgerTotals]) {
    o.push_str("<h2>Pipeline ledger (all time)</h2><table><tr><th>topic</th><th>seen</th><th>aggregated</th><th>too late</th><th>future</th><th>malformed</th><th>unknown enum</th><th>invalid</th><th>duplicate</th></tr>");
    for l in ledger {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&l.topic), l.seen, l.aggregated, l.too_late, l.future_timestamp, l.malformed, l.unknown_enum, l.invalid, l.duplicate
        );
    }
    o.push_str("</table>");
}
