//! The scenario: a TOML description of the simulated economy (corridors,
//! payment habits, device fleets, daily cycles, festivals) and of the
//! disorder to inject. It flows from a file (or the built-in default) through
//! [`Scenario::parse`] and [`Scenario::validate`] into the generator.
//!
//! Every struct denies unknown fields, so a typo is an error naming the key
//! instead of a silently ignored setting.

mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::names::{
    CategoryName, ChannelName, CountryName, CurrencyName, DeviceKindName, MethodName, ModeName,
};
use crate::{Error, Result};

/// The scenario shipped with Tradewind (`scenarios/default.toml`).
pub const DEFAULT_SCENARIO: &str = include_str!("../../../../scenarios/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seed of the deterministic random stream; `--seed` overrides it.
    pub seed: u64,
    pub clock: ClockConfig,
    pub mix: MixConfig,
    pub daily_cycle: DailyCycle,
    #[serde(default)]
    pub festivals: Vec<Festival>,
    /// Payment-method shares per payer country.
    pub payment_methods: BTreeMap<CountryName, BTreeMap<MethodName, f64>>,
    pub payments: PaymentsConfig,
    pub corridors: Vec<Corridor>,
    pub logistics: LogisticsConfig,
    pub iot: IotConfig,
    pub fx: FxConfig,
    pub disorder: DisorderConfig,
    pub truth: TruthConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// Where simulated event time starts: RFC 3339, `now`, or `now-<duration>`
    /// such as `now-6d`. `--start` overrides it.
    pub start: String,
    /// Mean rate of new business events (payments, readings, shipments) per
    /// simulated second, at a daily-cycle factor of 1.0. Simulated time is
    /// independent of how fast records are produced.
    pub events_per_second: f64,
}

/// Shares of new commerce events. Shipments add their later milestones and
/// payments their refunds on top. IoT readings and FX quotes are periodic and
/// not part of the mix (see [`Fleet::report_every`] and [`FxConfig`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixConfig {
    pub payments: f64,
    pub shipments: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyCycle {
    /// Activity multiplier for each local hour 0..=23 of the payer/origin country.
    pub hourly: Vec<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Festival {
    pub name: String,
    /// Offset from the scenario start, so the spike lands in any run.
    #[serde(with = "humantime_serde")]
    pub starts_after: Duration,
    #[serde(with = "humantime_serde")]
    pub lasts: Duration,
    pub multiplier: f64,
    /// Payer countries whose shoppers join the festival.
    pub countries: Vec<CountryName>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Probability that a payment fails, per method.
    pub failure_rate: BTreeMap<MethodName, f64>,
    /// Probability that a captured cross-border or domestic e-commerce payment
    /// is refunded later.
    pub refund_rate: f64,
    pub refund_delay: DurationRange,
    /// Distinct buyers per payer country (for distinct-count metrics).
    pub buyers_per_country: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Corridor {
    pub name: String,
    /// Seller country: where goods ship from and where the payee sits.
    pub from: CountryName,
    /// Buyer country: where goods ship to and where the payer sits.
    pub to: CountryName,
    /// Relative share of payments and shipments on this corridor.
    pub weight: f64,
    /// Settlement currency; defaults to the seller country's currency.
    #[serde(default)]
    pub currency: Option<CurrencyName>,
    pub channels: BTreeMap<ChannelName, f64>,
    pub categories: BTreeMap<CategoryName, f64>,
    /// Order value, log-normal, in major units of the settlement currency.
    pub amount: LogNormal,
    /// Transport-mode shares for shipments on this corridor.
    pub modes: BTreeMap<ModeName, f64>,
    /// Door-to-door transit time per mode, log-normal.
    pub transit: BTreeMap<ModeName, TransitTime>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormal {
    pub median: f64,
    pub sigma: f64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitTime {
    #[serde(with = "humantime_serde")]
    pub median: Duration,
    pub sigma: f64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationRange {
    #[serde(with = "humantime_serde")]
    pub min: Duration,
    #[serde(with = "humantime_serde")]
    pub max: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticsConfig {
    /// Share of shipments that never get a DELIVERED milestone.
    pub lost_rate: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IotConfig {
    pub fleets: Vec<Fleet>,
    /// Multiplies every fleet's `devices` (at least one device per fleet),
    /// so a scenario can grow or shrink the IoT load without editing fleets.
    #[serde(default = "one")]
    pub fleet_scale: f64,
    /// Divides every fleet's `report_every` (never below one second): more
    /// readings from the same devices.
    #[serde(default = "one")]
    pub report_speedup: f64,
    /// Share of devices that fall silent for a while.
    pub silent_device_rate: f64,
    pub silence: DurationRange,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    pub kind: DeviceKindName,
    pub country: CountryName,
    pub devices: u32,
    /// Centre of the fleet's area, degrees.
    pub lat: f64,
    pub lon: f64,
    /// Half-width of the area, degrees.
    pub spread_deg: f64,
    /// Each device reports once per this much simulated time, give or take
    /// 10%, from a random phase. Keep it well under the aggregator's
    /// `core.device_silence_gap`, or healthy devices count as silent.
    #[serde(with = "humantime_serde")]
    pub report_every: Duration,
    /// Normal temperature (°C): mean and standard deviation.
    pub temperature: [f64; 2],
    /// Allowed band (°C) for cold-chain fleets; readings outside are excursions.
    #[serde(default)]
    pub temperature_band: Option<[f64; 2]>,
    /// Probability that a reading is a temperature excursion.
    #[serde(default)]
    pub excursion_rate: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxConfig {
    /// One quote per pair per interval of simulated time.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Standard deviation of each step of the random walk, basis points.
    pub volatility_bp: f64,
    /// Starting rates: units of each currency per 1 USD.
    pub usd_rates: BTreeMap<CurrencyName, f64>,
}

/// The disorder knobs. Each `*_rate` is a probability per record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisorderConfig {
    /// Records reported a little after they happened (out of order).
    pub jitter_rate: f64,
    #[serde(with = "humantime_serde")]
    pub jitter_max: Duration,
    /// Records reported minutes to hours after they happened.
    pub late_rate: f64,
    pub late: DurationRange,
    /// Records produced twice (byte-identical, same key).
    pub duplicate_rate: f64,
    /// Extra undecodable records, spread over the topics.
    pub poison_rate: f64,
    /// Share of IoT devices whose clock runs ahead.
    pub clock_ahead_device_rate: f64,
    pub clock_ahead: DurationRange,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthConfig {
    /// Tumbling window of the ground-truth aggregates.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Delivery promise inside one country.
    #[serde(with = "humantime_serde")]
    pub sla_domestic: Duration,
    /// Delivery promise across a border.
    #[serde(with = "humantime_serde")]
    pub sla_international: Duration,
}

impl Scenario {
    /// Parses a scenario from TOML and validates it.
    pub fn parse(text: &str) -> Result<Self> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| Error::Scenario(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The built-in default scenario.
    pub fn default_scenario() -> Self {
        Self::parse(DEFAULT_SCENARIO).expect("the shipped default scenario is valid")
    }
}

fn one() -> f64 {
    1.0
}

impl Scenario {
    /// The same economy at `factor` times the volume: commerce events per
    /// second are multiplied, so the mix and the daily cycle stay as they
    /// are. Below ×1 every fleet shrinks and each device keeps its
    /// reporting interval. Above ×1, IoT grows first by reporting faster
    /// (`iot.report_speedup`, down to one reading a second per device),
    /// then by more devices: a high real-time rate would otherwise need
    /// millions of simulated devices in memory.
    pub fn scaled(&self, factor: f64) -> Self {
        let mut s = self.clone();
        s.clock.events_per_second *= factor;
        let room = self
            .iot
            .fleets
            .iter()
            .map(|f| f.report_every.as_secs_f64() / self.iot.report_speedup)
            .fold(f64::INFINITY, f64::min)
            .max(1.0);
        let faster = if factor > 1.0 { factor.min(room) } else { 1.0 };
        s.iot.report_speedup *= faster;
        s.iot.fleet_scale *= factor / faster;
        s
    }

    /// Records per second of simulated time this scenario makes, averaged
    /// over its first simulated day from `start_ms` (so over one daily
    /// cycle), duplicates and poison included.
    pub fn mean_record_rate(&self, seed: u64, start_ms: i64) -> Result<f64> {
        const DAY_MS: i64 = 86_400_000;
        let g = crate::Generator::new(self, seed, start_ms, false)?;
        let n = g.take_while(|r| r.report_ms < start_ms + DAY_MS).count();
        Ok(n as f64 / 86_400.0)
    }
}
