//! The dashboard as one self-contained HTML page: a form for the time range
//! and the filters, tiles, trend charts ([`charts`]) and tables
//! ([`panels`]); no scripts and nothing fetched from elsewhere, so it works
//! on an offline machine. Every link keeps the selection, so a view can be
//! shared. It reloads itself every `refresh` seconds.

mod charts;
mod panels;

use std::fmt::Write as _;

use tradewind_proto::{Country, DeviceKind, Label, PaymentChannel, PaymentMethod, TransportMode};

use self::charts::{Bar, Chart, Scale};
use crate::data::{Dashboard, Totals};
use crate::selection::{parse_span, span_label, Selection, Span};

/// What the page needs besides the data.
pub struct PageInfo<'a> {
    pub database: &'a str,
    pub selection: &'a Selection,
    pub refresh_secs: u64,
    pub sla_domestic_h: u64,
    pub sla_international_h: u64,
}

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub(super) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub(super) fn big(x: f64) -> String {
    match x.abs() {
        v if v >= 1e9 => format!("{:.2} B", x / 1e9),
        v if v >= 1e6 => format!("{:.2} M", x / 1e6),
        v if v >= 1e4 => format!("{:.1} k", x / 1e3),
        _ => format!("{x:.0}"),
    }
}

/// `2026-11-11 08:00` for Unix seconds.
pub(super) fn utc(secs: u32) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..16).unwrap_or(&s).replace('T', " ")
}

/// `2026-11-11T08:00:30` for Unix seconds: what the form's time fields
/// hold, to the second, so a shared range survives a resubmit.
fn utc_seconds(secs: u32) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .trim_end_matches('Z')
        .to_string()
}

/// A table cell holding a bar `frac` of the column's width, and a label.
pub(super) fn bar(frac: f64, label: &str, class: &str) -> String {
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
svg.chart{width:100%;max-width:900px;height:170px;background:#fff;border-radius:8px}rect.ok{fill:#6fa8e8}rect.warn{fill:#e8b04f}rect.good{fill:#5cb870}rect.bad{fill:#e06666}\
.grid{stroke:#eef0f3}.ylab{font-size:11px;fill:#5b6673;text-anchor:end}.xlab{font-size:11px;fill:#5b6673}\
form.sel{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-top:12px;background:#fff;padding:10px 12px;border-radius:8px;box-shadow:0 1px 2px #0002}\
form.sel label{display:flex;flex-direction:column;font-size:12px;color:#5b6673;gap:2px}.ranges a{margin-right:8px}.on{font-weight:600}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}\
.empty{padding:24px;background:#fff;border-radius:8px}\
.axis{display:flex;justify-content:space-between;max-width:900px;color:#5b6673;font-size:12px;margin-top:4px}";

/// Renders the page: the selection form, the tiles, the trends, then one
/// table per panel.
pub fn render(d: &Dashboard, info: &PageInfo<'_>) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=refresh content=\"{}\"><title>Tradewind</title><style>{STYLE}</style></head><body>\
         <h1>Tradewind: cross-border trade</h1>",
        info.refresh_secs
    );
    form(&mut o, d, info);
    if d.newest == 0 {
        let _ = write!(
            o,
            "<p class=empty>No windows in ClickHouse yet. \
             Run the simulator and an aggregator; this page reloads every {} s.</p></body></html>",
            info.refresh_secs
        );
        return o;
    }
    tiles(&mut o, &d.totals);
    trends(&mut o, d);
    panels::corridors(&mut o, &d.corridors, info.selection);
    panels::methods(&mut o, &d.methods, info.selection);
    panels::sizes(&mut o, &d.payment_sizes);
    panels::buyers(&mut o, &d.buyers);
    panels::sla(&mut o, &d.sla, info);
    panels::cold_chain(&mut o, &d.cold_chain);
    panels::devices(&mut o, &d.devices);
    panels::ledger(&mut o, &d.ledger);
    o.push_str("</body></html>");
    o
}

/// The selection: quick ranges as links, and a form (plain GET, no
/// script) for an absolute range and the filters.
fn form(o: &mut String, d: &Dashboard, info: &PageInfo<'_>) {
    let sel = info.selection;
    let shown = if d.newest == 0 {
        String::new()
    } else {
        format!(
            "windows from {} to {} UTC · ",
            utc(d.from.max(d.timeline.first().map_or(0, |t| t.start))),
            utc(d.to.saturating_sub(1).min(d.newest))
        )
    };
    let _ = write!(
        o,
        "<div class=sub>database <b>{}</b> · {shown}reloads every {} s · \
         JSON at <a id=json href=\"/api/dashboard.json{}\">/api/dashboard.json</a></div><div class=ranges>range: ",
        esc(info.database),
        info.refresh_secs,
        esc(&sel.query(&[]))
    );
    for (label, value) in [
        ("1 h", "1h"),
        ("6 h", "6h"),
        ("24 h", "24h"),
        ("7 d", "7d"),
        ("30 d", "30d"),
        ("all", "all"),
    ] {
        let on = sel.from.is_none() && sel.to.is_none() && parse_span(value) == Ok(sel.span);
        let _ = write!(
            o,
            "<a href=\"/{}\"{}>{label}</a>",
            esc(&sel.query(&[("range", value)])),
            if on { " class=on" } else { "" }
        );
    }
    o.push_str("</div><form class=sel method=get action=\"/\">");
    let range = match sel.span {
        Span::All => "all".to_string(),
        Span::Last(s) => span_label(s),
    };
    let time = |t: Option<u32>| t.map(utc_seconds).unwrap_or_default();
    let _ = write!(
        o,
        "<label>range<input name=range size=5 value=\"{}\"></label>\
         <label>from (UTC; wins over range)<input name=from size=19 placeholder=2026-11-28T00:00 value=\"{}\"></label>\
         <label>to (UTC)<input name=to size=19 placeholder=2026-11-29T00:00 value=\"{}\"></label>",
        esc(&range),
        esc(&time(sel.from)),
        esc(&time(sel.to))
    );
    let corridor = if sel.payer.is_empty() {
        String::new()
    } else {
        format!("{}-{}", sel.payer, sel.payee)
    };
    let mut corridors: Vec<String> = d
        .corridors
        .iter()
        .map(|c| format!("{}-{}", c.payer, c.payee))
        .collect();
    corridors.sort();
    select(o, "corridor", &corridors, &corridor);
    select(o, "country", &labels::<Country>(), &sel.country);
    select(o, "method", &labels::<PaymentMethod>(), &sel.method);
    select(o, "channel", &labels::<PaymentChannel>(), &sel.channel);
    select(o, "mode", &labels::<TransportMode>(), &sel.mode);
    select(o, "kind", &labels::<DeviceKind>(), &sel.kind);
    o.push_str("<button type=submit id=apply>apply</button>");
    if sel.filtered() {
        let _ = write!(
            o,
            "<a id=clear href=\"/{}\">clear filters</a>",
            esc(&sel.query(&[
                ("corridor", ""),
                ("country", ""),
                ("method", ""),
                ("channel", ""),
                ("mode", ""),
                ("kind", ""),
            ]))
        );
    }
    o.push_str("</form><div class=sub>filters apply where they mean something: corridor and country to payments and shipments (and country to devices), method and channel to payments, mode to shipments, kind to devices</div>");
}

fn labels<L: Label>() -> Vec<String> {
    L::known().into_iter().map(|l| l.label()).collect()
}

fn select(o: &mut String, name: &str, options: &[String], chosen: &str) {
    let _ = write!(
        o,
        "<label>{name}<select name={name} id=f-{name}><option value=\"\">any</option>"
    );
    let mut seen = false;
    for v in options {
        seen |= v == chosen;
        let _ = write!(
            o,
            "<option value=\"{}\"{}>{}</option>",
            esc(v),
            if v == chosen { " selected" } else { "" },
            esc(v)
        );
    }
    if !seen && !chosen.is_empty() {
        let _ = write!(
            o,
            "<option value=\"{}\" selected>{}</option>",
            esc(chosen),
            esc(chosen)
        );
    }
    o.push_str("</select></label>");
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
        &if t.delivered == 0 {
            "–".to_string()
        } else {
            pct(share(t.on_time, t.delivered))
        },
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

/// The time axis every chart shares: the range, cut to the data's first
/// and last bucket, on bucket boundaries.
fn domain(d: &Dashboard) -> (u32, u32) {
    let b = d.bucket_secs.max(1);
    let first = [
        d.timeline.first().map(|t| t.start),
        d.sla_trend.first().map(|t| t.start),
        d.iot_trend.first().map(|t| t.start),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(d.from);
    let start = d.from.max(first) / b * b;
    let end = d.to.min(d.newest.saturating_add(b)).div_ceil(b) * b;
    (start, end.max(start + b))
}

/// The trends, one bar per bucket of the range.
fn trends(o: &mut String, d: &Dashboard) {
    let per = bucket_len(d.bucket_secs);
    let domain = domain(d);
    let _ = write!(o, "<h2>Trends, per {per}</h2><div class=charts>");
    // Every chart shares the range's buckets and time axis.
    let mut chart =
        |title: &str, unit: &str, scale: Scale, class: &str, note: &str, bars: Vec<Bar>| {
            let c = Chart {
                unit,
                scale,
                bars,
                bucket_secs: d.bucket_secs,
                domain,
                class,
                overlay_note: note,
            };
            let _ = write!(
                o,
                "<div><h3 class=sub>{}</h3>{}</div>",
                esc(title),
                charts::svg(&c)
            );
        };
    let bar = |start: u32, value: f64, hover: String| Bar {
        start,
        value,
        overlay: 0.0,
        hover,
    };
    chart(
        "payments",
        "payments",
        Scale::Count,
        "ok",
        "red: failed",
        d.timeline
            .iter()
            .map(|t| Bar {
                overlay: t.failed as f64,
                ..bar(
                    t.start,
                    t.payments as f64,
                    format!("{} payments, {} failed", t.payments, t.failed),
                )
            })
            .collect(),
    );
    chart(
        "corridor volume (USD)",
        "USD",
        Scale::Usd,
        "ok",
        "",
        d.timeline
            .iter()
            .map(|t| bar(t.start, t.volume_usd, format!("${:.0}", t.volume_usd)))
            .collect(),
    );
    chart(
        "deliveries on time (share)",
        "on-time share",
        Scale::Share,
        "good",
        "",
        d.sla_trend
            .iter()
            .filter(|t| t.delivered > 0)
            .map(|t| {
                let on_time = share(t.on_time, t.delivered);
                let hover = format!(
                    "{} on time of {} delivered ({}), {} SLA breaches",
                    t.on_time,
                    t.delivered,
                    pct(on_time),
                    t.breaches
                );
                bar(t.start, on_time, hover)
            })
            .collect(),
    );
    chart(
        "SLA breaches",
        "breaches",
        Scale::Count,
        "bad",
        "",
        d.sla_trend
            .iter()
            .map(|t| {
                bar(
                    t.start,
                    t.breaches as f64,
                    format!("{} SLA breaches", t.breaches),
                )
            })
            .collect(),
    );
    chart(
        "cold-chain excursions",
        "excursions",
        Scale::Count,
        "warn",
        "",
        d.iot_trend
            .iter()
            .map(|t| {
                let hover = format!("{} excursions in {} readings", t.excursions, t.readings);
                bar(t.start, t.excursions as f64, hover)
            })
            .collect(),
    );
    chart(
        "silent devices",
        "silent devices",
        Scale::Count,
        "warn",
        "",
        d.iot_trend
            .iter()
            .map(|t| {
                let hover = format!(
                    "{} distinct devices went quiet ({} silences)",
                    t.silent_devices, t.silent
                );
                bar(t.start, t.silent_devices as f64, hover)
            })
            .collect(),
    );
    o.push_str("</div>");
}
