//! Simulated time: turns the scenario's `clock.start` (RFC 3339, `now` or
//! `now-<duration>`) into unix milliseconds, relative to a "now" the caller
//! passes in so the result stays deterministic under test.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// Current wall-clock time in unix milliseconds.
pub fn wall_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses a start time. `now_ms` is what `now` means.
pub fn parse_start(spec: &str, now_ms: i64) -> Result<i64> {
    let spec = spec.trim();
    let bad = |why: String| Error::Scenario(format!("clock.start {spec:?}: {why}"));
    if let Some(rest) = spec.strip_prefix("now") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(now_ms);
        }
        let ago = rest
            .strip_prefix('-')
            .ok_or_else(|| bad("expected `now-<duration>`, e.g. now-6d".into()))?;
        let d = humantime::parse_duration(ago.trim()).map_err(|e| bad(e.to_string()))?;
        return Ok(now_ms - d.as_millis() as i64);
    }
    if let Ok(ms) = spec.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(spec).map_err(|e| {
        bad(format!(
            "{e}; use RFC 3339, unix ms, `now` or `now-<duration>`"
        ))
    })?;
    Ok(t.duration_since(UNIX_EPOCH)
        .map_err(|_| bad("before 1970".into()))?
        .as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(parse_start("now", 5_000).unwrap(), 5_000);
        assert_eq!(parse_start("now-2s", 5_000).unwrap(), 3_000);
        assert_eq!(parse_start("1700000000000", 0).unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_start("2026-11-11T00:00:00Z", 0).unwrap(),
            1_794_355_200_000
        );
        assert!(parse_start("tomorrow", 0).is_err());
    }
}
