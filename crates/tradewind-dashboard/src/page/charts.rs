//! Trend charts as inline SVG: bars per time bucket with a y axis in the
//! series' unit, a UTC time axis, and every bar's value on hover (an SVG
//! `<title>`), readable without scripts.

use std::fmt::Write as _;

use super::{big, esc, utc};

/// One bar: where its bucket starts, its height, and the hover text.
pub struct Bar {
    pub start: u32,
    pub value: f64,
    /// Drawn over the bar from the bottom, e.g. the failed part; 0 for none.
    pub overlay: f64,
    pub hover: String,
}

/// A bar series and how to label it.
pub struct Chart<'a> {
    /// What a bar counts, for the axis and the screen reader: `payments`.
    pub unit: &'a str,
    /// Format of axis values: a count, a share (0..1) or dollars.
    pub scale: Scale,
    pub bars: Vec<Bar>,
    pub bucket_secs: u32,
    /// The time axis, Unix seconds `[start, end)`: bars sit where their
    /// bucket falls, so charts of one page line up and gaps show as gaps.
    pub domain: (u32, u32),
    /// The colour of the bars (`ok`, `warn`, `bad`) and of the overlay.
    pub class: &'a str,
    /// What the overlay means, shown under the chart; empty for none.
    pub overlay_note: &'a str,
}

#[derive(Debug, Clone, Copy)]
pub enum Scale {
    Count,
    Share,
    Usd,
}

impl Scale {
    fn label(self, v: f64) -> String {
        match self {
            Scale::Count if v < 10.0 && v.fract() != 0.0 => format!("{v:.1}"),
            Scale::Count => big(v),
            Scale::Share => format!("{:.0}%", v * 100.0),
            Scale::Usd => format!("${}", big(v)),
        }
    }
}

const W: f64 = 900.0;
const H: f64 = 170.0;
/// Room for the y labels on the left and the time labels underneath.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

/// The chart as an SVG element with its axes.
pub fn svg(c: &Chart<'_>) -> String {
    let max = match c.scale {
        Scale::Share => 1.0,
        _ => c.bars.iter().map(|b| b.value).fold(0.0, f64::max).max(1.0),
    };
    let plot_h = H - BOTTOM - TOP;
    let plot_w = W - LEFT;
    let mut s = format!(
        "<svg viewBox=\"0 0 {W} {H}\" class=chart role=img aria-label=\"{} per {} s\">",
        esc(c.unit),
        c.bucket_secs
    );
    // The y axis: 0, half and the top, with grid lines.
    for frac in [0.0, 0.5, 1.0] {
        let y = TOP + plot_h * (1.0 - frac);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=grid></line>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=ylab>{}</text>",
            LEFT - 4.0,
            y + 4.0,
            esc(&c.scale.label(max * frac))
        );
    }
    let (t0, t1) = c.domain;
    let span = t1.saturating_sub(t0).max(1) as f64;
    let bw = plot_w * c.bucket_secs as f64 / span;
    for b in c.bars.iter().filter(|b| b.start >= t0 && b.start < t1) {
        let x = LEFT + plot_w * (b.start - t0) as f64 / span;
        let bh = (b.value / max).clamp(0.0, 1.0) * plot_h;
        let oh = (b.overlay / max).clamp(0.0, 1.0) * plot_h;
        let _ = write!(
            s,
            "<g><title>{} UTC: {}</title><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" class={}></rect>",
            utc(b.start),
            esc(&b.hover),
            TOP + plot_h - bh,
            (bw - 1.0).max(0.5),
            c.class
        );
        if oh > 0.0 {
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{oh:.1}\" class=bad></rect>",
                TOP + plot_h - oh,
                (bw - 1.0).max(0.5)
            );
        }
        s.push_str("</g>");
    }
    // The time axis: the start, the middle and the end.
    if t1 > t0 {
        for (x, t, anchor) in [
            (LEFT, t0, "start"),
            (LEFT + plot_w / 2.0, t0 + (t1 - t0) / 2, "middle"),
            (W, t1, "end"),
        ] {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" class=xlab text-anchor={anchor}>{} UTC</text>",
                H - 4.0,
                utc(t)
            );
        }
    }
    s.push_str("</svg>");
    if !c.overlay_note.is_empty() {
        let _ = write!(s, "<div class=sub>{}</div>", esc(c.overlay_note));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_carry_their_value_on_hover_and_the_axes_their_unit() {
        let c = Chart {
            unit: "payments",
            scale: Scale::Count,
            bars: vec![
                Bar {
                    start: 1_795_824_000,
                    value: 1200.0,
                    overlay: 12.0,
                    hover: "1200 payments, 12 failed".into(),
                },
                Bar {
                    start: 1_795_824_900,
                    value: 600.0,
                    overlay: 0.0,
                    hover: "600 payments".into(),
                },
            ],
            bucket_secs: 900,
            domain: (1_795_824_000, 1_795_825_800),
            class: "ok",
            overlay_note: "red: failed",
        };
        let s = svg(&c);
        assert!(
            s.contains("<title>2026-11-28 00:00 UTC: 1200 payments, 12 failed</title>"),
            "{s}"
        );
        assert!(
            s.contains(">1200<") && s.contains(">600<") && s.contains(">0<"),
            "{s}"
        );
        assert!(s.contains("2026-11-28 00:30 UTC"), "{s}");
        assert_eq!(s.matches("class=bad").count(), 1);
    }
}
