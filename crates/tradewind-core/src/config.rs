//! Event-time settings of the core, as they appear under `[core]` in
//! `tradewind.toml`. Every knob has a documented default; unknown keys fail.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreConfig {
    /// Window length. Default 1m.
    #[serde(with = "humantime_serde")]
    pub window_size: Duration,
    /// Distance between window starts; equal to `window_size` for tumbling
    /// windows (the default), smaller for hopping ones. Must divide the size.
    #[serde(with = "humantime_serde")]
    pub window_slide: Duration,
    /// How far behind a partition's highest event time its watermark trails.
    /// Default 5s.
    #[serde(with = "humantime_serde")]
    pub allowed_disorder: Duration,
    /// How long a closed window still takes late events (and re-emits with
    /// a higher version). Later events are rejected `too_late`. Default 1h.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// How far an event may be stamped ahead of the time Kafka received it
    /// before it is rejected `future_timestamp`. Default 5m.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// The outlier guard: one event moves its partition's event-time
    /// frontier (and so the watermark) at most this far past where it
    /// was. An event stamped far ahead (a wrong device clock, a record of
    /// today in a replay of last week) is still accepted, but cannot drag
    /// the watermark with it and make the records after it `too_late`. A
    /// real jump (after a producer pause) is followed one step per record.
    /// `0s` turns the guard off. Default 30m.
    #[serde(with = "humantime_serde")]
    pub max_watermark_step: Duration,
    /// Count each event once: a repeat of an accepted event's identity
    /// (see `proto/README.md`) within `dedup_horizon` is booked in the
    /// ledger as `duplicate` and not aggregated. Default on.
    pub dedup: bool,
    /// How long an identity is remembered, in event time behind the
    /// watermark. At least `window_size + allowed_lateness`, which is also
    /// the default (unset): 1h1m with the other defaults.
    #[serde(default, with = "humantime_serde")]
    pub dedup_horizon: Option<Duration>,
    /// Delivery promise inside one country. Default 24h.
    #[serde(with = "humantime_serde")]
    pub sla_domestic: Duration,
    /// Delivery promise across a border. Default 72h.
    #[serde(with = "humantime_serde")]
    pub sla_international: Duration,
    /// A device silent for longer than this is counted silent. Default 30m.
    #[serde(with = "humantime_serde")]
    pub device_silence_gap: Duration,
    /// Cold-chain temperature band in °C; readings outside are excursions.
    /// Default [2.0, 8.0].
    pub cold_chain_band_c: [f64; 2],
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            window_size: Duration::from_secs(60),
            window_slide: Duration::from_secs(60),
            allowed_disorder: Duration::from_secs(5),
            allowed_lateness: Duration::from_secs(3600),
            max_clock_skew: Duration::from_secs(300),
            max_watermark_step: Duration::from_secs(30 * 60),
            dedup: true,
            dedup_horizon: None,
            sla_domestic: Duration::from_secs(24 * 3600),
            sla_international: Duration::from_secs(72 * 3600),
            device_silence_gap: Duration::from_secs(30 * 60),
            cold_chain_band_c: [2.0, 8.0],
        }
    }
}

/// The config in milliseconds, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub size: i64,
    pub slide: i64,
    pub disorder: i64,
    pub lateness: i64,
    pub skew: i64,
    /// `i64::MAX` when the guard is off.
    pub max_step: i64,
    /// `None` when deduplication is off.
    pub dedup_horizon: Option<i64>,
}

impl CoreConfig {
    pub fn logistics(&self) -> crate::LogisticsSla {
        crate::LogisticsSla::new(self.sla_domestic, self.sla_international)
    }

    pub fn iot(&self) -> crate::IotHealth {
        crate::IotHealth::new(self.device_silence_gap, self.cold_chain_band_c)
    }

    pub(crate) fn timing(&self) -> Result<Timing> {
        let ms = |d: Duration| d.as_millis() as i64;
        let t = Timing {
            size: ms(self.window_size),
            slide: ms(self.window_slide),
            disorder: ms(self.allowed_disorder),
            lateness: ms(self.allowed_lateness),
            skew: ms(self.max_clock_skew),
            max_step: match ms(self.max_watermark_step) {
                0 => i64::MAX,
                s => s,
            },
            dedup_horizon: None,
        };
        let t = Timing {
            dedup_horizon: self
                .dedup
                .then(|| self.dedup_horizon.map_or(t.size + t.lateness, ms)),
            ..t
        };
        if let Some(h) = t.dedup_horizon {
            if h < t.size + t.lateness {
                return Err(Error::Config(format!(
                    "core.dedup_horizon ({h}ms) must be at least core.window_size + core.allowed_lateness ({}ms)",
                    t.size + t.lateness
                )));
            }
        }
        if t.size <= 0 || t.slide <= 0 {
            return Err(Error::Config(
                "core.window_size and core.window_slide must be above 0".into(),
            ));
        }
        if t.size % 1000 != 0 || t.slide % 1000 != 0 {
            return Err(Error::Config(
                "core.window_size and core.window_slide must be whole seconds".into(),
            ));
        }
        if t.slide > t.size || t.size % t.slide != 0 {
            return Err(Error::Config(format!(
                "core.window_slide ({}ms) must divide core.window_size ({}ms)",
                t.slide, t.size
            )));
        }
        Ok(t)
    }
}
