//! What a dashboard request asks for: a time range and filters, from the
//! query string of `/` and `/api/dashboard.json`. Every parameter is
//! checked; a bad one is a 400 whose message names it and what it accepts.
//!
//! - `range`: hours of event time ending at the newest window (`24h`,
//!   `7d`, `90m`, or `all`); the default is `dashboard.hours`.
//! - `from`, `to`: an absolute range instead, UTC, as
//!   `2026-11-28T00:00:00Z`, `2026-11-28T00:00`, `2026-11-28` or Unix
//!   seconds; `to` is exclusive and defaults to just after the newest
//!   window. Either may be given alone.
//! - `corridor` (`CN-DE`: payer → payee for payments, origin → destination
//!   for shipments), `country` (either end of a payment or shipment, or
//!   where a device is), `method`, `channel`, `mode` (transport) and `kind`
//!   (device kind): labels as the tables store them.
//!
//! A selection turns back into a query string ([`Selection::query`]), so
//! every link on the page keeps it and a view can be shared.

use std::collections::BTreeMap;

use tradewind_proto::{Country, DeviceKind, Label, PaymentChannel, PaymentMethod, TransportMode};

/// The raw query string, as axum hands it over.
pub type Params = BTreeMap<String, String>;

const KNOWN: &[&str] = &[
    "range", "from", "to", "corridor", "country", "method", "channel", "mode", "kind",
];

/// How far back the page looks when no absolute `from` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Seconds of event time ending at `to`.
    Last(u32),
    All,
}

/// A checked request: the range and the filters (empty means any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub span: Span,
    /// Unix seconds, inclusive.
    pub from: Option<u32>,
    /// Unix seconds, exclusive.
    pub to: Option<u32>,
    pub payer: String,
    pub payee: String,
    pub country: String,
    pub method: String,
    pub channel: String,
    pub mode: String,
    pub kind: String,
}

impl Selection {
    /// Checks `params`; `default_hours` (0: all) applies when neither
    /// `range` nor `from` is given.
    pub fn parse(params: &Params, default_hours: u32) -> Result<Self, String> {
        if let Some(k) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "unknown parameter {k:?}; the page takes {}",
                KNOWN.join(", ")
            ));
        }
        let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let span = match get("range") {
            Some(r) => parse_span(r)?,
            None if default_hours == 0 => Span::All,
            None => Span::Last(default_hours.saturating_mul(3600)),
        };
        let from = get("from").map(|v| parse_time("from", v)).transpose()?;
        let to = get("to").map(|v| parse_time("to", v)).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(format!("from ({f}) must be before to ({t})"));
            }
        }
        let (payer, payee) = match get("corridor") {
            Some(c) => {
                let (a, b) = c.split_once(['-', '>']).ok_or_else(|| {
                    format!("corridor {c:?} must be two countries, payer-payee, e.g. CN-DE")
                })?;
                (
                    label::<Country>("corridor", a.trim())?,
                    label::<Country>("corridor", b.trim())?,
                )
            }
            None => (String::new(), String::new()),
        };
        Ok(Self {
            span,
            from,
            to,
            payer,
            payee,
            country: opt::<Country>(get("country"), "country")?,
            method: opt::<PaymentMethod>(get("method"), "method")?,
            channel: opt::<PaymentChannel>(get("channel"), "channel")?,
            mode: opt::<TransportMode>(get("mode"), "mode")?,
            kind: opt::<DeviceKind>(get("kind"), "kind")?,
        })
    }

    /// The range in Unix seconds, `[from, to)`, given the newest window
    /// start in the tables.
    pub fn bounds(&self, newest: u32) -> (u32, u32) {
        let to = self.to.unwrap_or(newest.saturating_add(1));
        let from = match (self.from, self.span) {
            (Some(f), _) => f,
            (None, Span::All) => 0,
            (None, Span::Last(secs)) => to.saturating_sub(secs),
        };
        (from, to)
    }

    /// Whether any filter is set.
    pub fn filtered(&self) -> bool {
        [
            &self.payer,
            &self.country,
            &self.method,
            &self.channel,
            &self.mode,
            &self.kind,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }

    /// The query string that asks for this selection again, with `set`
    /// replacing (or, with an empty value, removing) parameters.
    pub fn query(&self, set: &[(&str, &str)]) -> String {
        let mut p: Vec<(&str, String)> = Vec::new();
        match (self.span, self.from) {
            (_, Some(f)) => p.push(("from", f.to_string())),
            (Span::All, None) => p.push(("range", "all".into())),
            (Span::Last(s), None) => p.push(("range", span_label(s))),
        }
        if let Some(t) = self.to {
            p.push(("to", t.to_string()));
        }
        if !self.payer.is_empty() {
            p.push(("corridor", format!("{}-{}", self.payer, self.payee)));
        }
        for (k, v) in [
            ("country", &self.country),
            ("method", &self.method),
            ("channel", &self.channel),
            ("mode", &self.mode),
            ("kind", &self.kind),
        ] {
            if !v.is_empty() {
                p.push((k, v.clone()));
            }
        }
        for (k, v) in set {
            p.retain(|(pk, _)| pk != k);
            if *k == "range" {
                p.retain(|(pk, _)| *pk != "from" && *pk != "to");
            }
            if !v.is_empty() {
                p.push((k, v.to_string()));
            }
        }
        let pairs: Vec<String> = p
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }

    /// A filter's value by the name a query file's `-- binds:` line uses.
    pub fn filter(&self, name: &str) -> Option<&str> {
        Some(match name {
            "payer" => &self.payer,
            "payee" => &self.payee,
            "country" => &self.country,
            "method" => &self.method,
            "channel" => &self.channel,
            "mode" => &self.mode,
            "kind" => &self.kind,
            _ => return None,
        })
    }
}

/// `24h`, `7d`, `90m`.
pub fn span_label(secs: u32) -> String {
    if secs % 86_400 == 0 {
        format!("{}d", secs / 86_400)
    } else if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}m", secs / 60)
    }
}

/// A `range` value: `90m`, `24h`, `7d`, or `all`.
pub fn parse_span(r: &str) -> Result<Span, String> {
    if r == "all" || r == "0" {
        return Ok(Span::All);
    }
    let bad =
        || format!("range {r:?} must be a number of minutes, hours or days (90m, 24h, 7d) or all");
    let (n, unit) = r.split_at(r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len()));
    let n: u32 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(secs) {
        Some(s) if s > 0 => Ok(Span::Last(s)),
        _ => Err(bad()),
    }
}

fn parse_time(name: &str, v: &str) -> Result<u32, String> {
    if let Ok(secs) = v.parse::<u32>() {
        return Ok(secs);
    }
    let bad = || {
        format!(
            "{name} {v:?} must be a UTC time such as 2026-11-28T06:00:00Z, 2026-11-28T06:00, \
             2026-11-28 or Unix seconds"
        )
    };
    // humantime checks the calendar; it wants the seconds, so a date
    // alone or hours and minutes are completed first.
    let v = v.trim_end_matches('Z');
    let full = match v.split_once(['T', ' ']) {
        None => format!("{v}T00:00:00"),
        Some((date, time)) if time.len() == 5 => format!("{date}T{time}:00"),
        Some(_) => v.to_string(),
    };
    let t = humantime::parse_rfc3339_weak(&full).map_err(|_| bad())?;
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad())?
        .as_secs();
    u32::try_from(secs).map_err(|_| bad())
}

fn label<L: Label>(name: &str, v: &str) -> Result<String, String> {
    L::parse_label(v)
        .map(|l| l.label())
        .map_err(|e| format!("{name}: {e}"))
}

fn opt<L: Label>(v: Option<&str>, name: &str) -> Result<String, String> {
    v.map(|v| label::<L>(name, v))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Percent-encodes what a query value may not hold as is.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ranges_filters_and_their_query_string_round_trip() {
        let s = Selection::parse(
            &params(&[
                ("range", "7d"),
                ("corridor", "CN-DE"),
                ("method", "mobile_wallet"),
            ]),
            24,
        )
        .unwrap();
        assert_eq!(s.span, Span::Last(7 * 86_400));
        assert_eq!((s.payer.as_str(), s.payee.as_str()), ("CN", "DE"));
        assert_eq!(s.bounds(1_000_000), (1_000_001 - 7 * 86_400, 1_000_001));
        let q = s.query(&[]);
        assert_eq!(q, "?range=7d&corridor=CN-DE&method=mobile_wallet");
        let again: Params = q[1..]
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(Selection::parse(&again, 24).unwrap(), s);
        assert_eq!(s.query(&[("method", "")]), "?range=7d&corridor=CN-DE");
        assert!(s.filtered());
    }

    #[test]
    fn absolute_times_parse_in_utc() {
        let s = Selection::parse(
            &params(&[("from", "2026-11-28"), ("to", "2026-11-28T06:30:00Z")]),
            24,
        )
        .unwrap();
        assert_eq!(s.from, Some(1_795_824_000));
        assert_eq!(s.to, Some(1_795_824_000 + 6 * 3600 + 1800));
        assert_eq!(s.bounds(0), (1_795_824_000, 1_795_847_400));
        let all = Selection::parse(&params(&[]), 0).unwrap();
        assert_eq!(all.bounds(500), (0, 501));
    }

    #[test]
    fn bad_parameters_name_what_is_accepted() {
        let err = |p: &[(&str, &str)]| Selection::parse(&params(p), 24).unwrap_err();
        assert!(err(&[("range", "soon")]).contains("90m, 24h, 7d"));
        assert!(err(&[("from", "yesterday")]).contains("2026-11-28T06:00:00Z"));
        assert!(err(&[("from", "2026-02-29")]).contains("UTC time"));
        assert!(Selection::parse(&params(&[("from", "2028-02-29")]), 24).is_ok());
        assert!(err(&[("corridor", "CN")]).contains("payer-payee"));
        assert!(err(&[("corridor", "CN-XX")]).contains("expected one of"));
        assert!(err(&[("method", "cash")]).contains("mobile_wallet"));
        assert!(err(&[("hours", "3")]).contains("unknown parameter"));
        assert!(err(&[("from", "200"), ("to", "100")]).contains("must be before"));
    }
}
