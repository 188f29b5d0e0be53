//! The simulated world, compiled from a [`Scenario`] into sampling tables:
//! corridors with their payment, category and transport-mode mixes, device
//! fleets with per-device quirks (clocks ahead, silences), the daily cycle
//! and festivals. The generator draws every business event from here.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::LogNormal;
use tradewind_proto::{
    Country, Currency, DeviceKind, MerchantCategory, PaymentChannel, PaymentMethod, TransportMode,
};

use crate::scenario::Scenario;
use crate::{Error, Result};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A weighted choice among a few values.
pub(crate) struct Choice<T> {
    items: Vec<T>,
    index: WeightedIndex<f64>,
}

impl<T: Copy> Choice<T> {
    fn new(what: &str, pairs: impl IntoIterator<Item = (T, f64)>) -> Result<Self> {
        let (items, weights): (Vec<T>, Vec<f64>) = pairs.into_iter().unzip();
        let index = WeightedIndex::new(&weights)
            .map_err(|e| Error::Scenario(format!("{what}: weights are unusable ({e})")))?;
        Ok(Self { items, index })
    }

    pub(crate) fn pick(&self, rng: &mut ChaCha8Rng) -> T {
        self.items[self.index.sample(rng)]
    }
}

pub(crate) struct CorridorModel {
    pub from: Country,
    pub to: Country,
    pub currency: Currency,
    pub channels: Choice<PaymentChannel>,
    pub categories: Choice<MerchantCategory>,
    /// Order value in minor units.
    pub amount: LogNormal<f64>,
    /// Transport mode with its transit-time distribution in milliseconds.
    pub modes: Choice<(TransportMode, LogNormal<f64>)>,
}

pub(crate) struct FleetModel {
    pub kind: DeviceKind,
    pub country: Country,
    /// Mean gap between one device's readings, simulated milliseconds.
    pub report_ms: i64,
    pub temperature: (f64, f64),
    pub band_centi: Option<(i32, i32)>,
    pub excursion_rate: f64,
    pub lat: f64,
    pub lon: f64,
    pub spread: f64,
}

pub(crate) struct Device {
    pub id: u64,
    pub fleet: usize,
    pub lat_micro: i32,
    pub lon_micro: i32,
    pub battery_permille: u32,
    /// How far ahead this device's clock runs (0 for a healthy clock).
    pub clock_ahead_ms: i64,
    /// A span of simulated time during which the device sends nothing.
    pub silent: Option<(i64, i64)>,
}

pub(crate) struct Festival {
    pub from_ms: i64,
    pub until_ms: i64,
    pub multiplier: f64,
    pub countries: Vec<Country>,
}

/// What a new-event candidate is, before thinning decides whether it happens.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Payment,
    Shipment,
}

pub(crate) struct World {
    pub kinds: Choice<Kind>,
    pub corridors: Vec<CorridorModel>,
    pub corridor_pick: WeightedIndex<f64>,
    /// Payment-method mix per payer country, indexed by the enum's number.
    pub methods: Vec<Option<Choice<PaymentMethod>>>,
    /// Failure probability per method, indexed by the enum's number.
    pub failure_rate: [f64; 4],
    pub fleets: Vec<FleetModel>,
    pub devices: Vec<Device>,
    pub hourly: [f64; 24],
    pub festivals: Vec<Festival>,
    /// Countries whose buyers drive payments and shipments.
    pub payers: Vec<Country>,
}

fn lognormal(median: f64, sigma: f64, what: &str) -> Result<LogNormal<f64>> {
    LogNormal::new(median.ln(), sigma).map_err(|e| Error::Scenario(format!("{what}: {e}")))
}

impl World {
    pub(crate) fn build(s: &Scenario, start_ms: i64, rng: &mut ChaCha8Rng) -> Result<Self> {
        let kinds = Choice::new(
            "mix",
            [
                (Kind::Payment, s.mix.payments),
                (Kind::Shipment, s.mix.shipments),
            ],
        )?;

        let mut corridors = Vec::with_capacity(s.corridors.len());
        for c in &s.corridors {
            let ctx = format!("corridor {:?}", c.name);
            let currency = c
                .currency
                .map(|x| x.0)
                .unwrap_or_else(|| c.from.0.home_currency());
            let scale = 10f64.powi(currency.minor_digits() as i32);
            let mut modes = Vec::new();
            for (mode, share) in &c.modes {
                let t = &c.transit[mode];
                let dist = lognormal(t.median.as_millis() as f64, t.sigma, &ctx)?;
                modes.push(((mode.0, dist), *share));
            }
            corridors.push(CorridorModel {
                from: c.from.0,
                to: c.to.0,
                currency,
                channels: Choice::new(&ctx, c.channels.iter().map(|(k, v)| (k.0, *v)))?,
                categories: Choice::new(&ctx, c.categories.iter().map(|(k, v)| (k.0, *v)))?,
                amount: lognormal(c.amount.median * scale, c.amount.sigma, &ctx)?,
                modes: Choice::new(&ctx, modes)?,
            });
        }
        let corridor_pick = WeightedIndex::new(s.corridors.iter().map(|c| c.weight))
            .map_err(|e| Error::Scenario(format!("corridor weights: {e}")))?;

        let mut methods: Vec<Option<Choice<PaymentMethod>>> = (0..16).map(|_| None).collect();
        for (country, mix) in &s.payment_methods {
            let choice = Choice::new(
                &format!("payment_methods.{country}"),
                mix.iter().map(|(k, v)| (k.0, *v)),
            )?;
            methods[country.0 as usize] = Some(choice);
        }
        let mut failure_rate = [0.0; 4];
        for (m, r) in &s.payments.failure_rate {
            failure_rate[m.0 as usize] = *r;
        }

        let (fleets, devices) = build_fleets(s, start_ms, rng);

        let mut hourly = [0.0; 24];
        hourly.copy_from_slice(&s.daily_cycle.hourly);
        let festivals: Vec<Festival> = s
            .festivals
            .iter()
            .map(|f| Festival {
                from_ms: start_ms + f.starts_after.as_millis() as i64,
                until_ms: start_ms + (f.starts_after + f.lasts).as_millis() as i64,
                multiplier: f.multiplier,
                countries: f.countries.iter().map(|c| c.0).collect(),
            })
            .collect();
        let mut payers: Vec<Country> = corridors.iter().map(|c| c.to).collect();
        payers.sort();
        payers.dedup();
        Ok(Self {
            kinds,
            corridors,
            corridor_pick,
            methods,
            failure_rate,
            fleets,
            devices,
            hourly,
            festivals,
            payers,
        })
    }

    /// The highest intensity factor of any candidate from `t_ms` on, and
    /// when that bound may change next (the next whole hour or festival
    /// edge). Within that span every factor is constant, so thinning against
    /// this bound is exact and rejects few candidates.
    pub(crate) fn bound(&self, t_ms: i64) -> (f64, i64) {
        let mut end = (t_ms.div_euclid(HOUR_MS) + 1) * HOUR_MS;
        for f in &self.festivals {
            for edge in [f.from_ms, f.until_ms] {
                if edge > t_ms && edge < end {
                    end = edge;
                }
            }
        }
        // IoT readings run at a constant factor of 1.
        let bound = self
            .payers
            .iter()
            .map(|c| self.activity(*c, t_ms))
            .fold(1.0, f64::max);
        (bound, end)
    }

    /// Activity of buyers in `country` at `t_ms`: the daily cycle in local
    /// time, times any festival running there.
    pub(crate) fn activity(&self, country: Country, t_ms: i64) -> f64 {
        let local = t_ms + country.utc_offset_hours() as i64 * HOUR_MS;
        let hour = (local.rem_euclid(DAY_MS) / HOUR_MS) as usize;
        let mut f = self.hourly[hour];
        for fest in &self.festivals {
            if t_ms >= fest.from_ms && t_ms < fest.until_ms && fest.countries.contains(&country) {
                f *= fest.multiplier;
            }
        }
        f
    }

    pub(crate) fn method_for(&self, payer: Country, rng: &mut ChaCha8Rng) -> PaymentMethod {
        match &self.methods[payer as usize] {
            Some(choice) => choice.pick(rng),
            None => PaymentMethod::Card,
        }
    }
}

fn build_fleets(
    s: &Scenario,
    start_ms: i64,
    rng: &mut ChaCha8Rng,
) -> (Vec<FleetModel>, Vec<Device>) {
    let mut fleets = Vec::new();
    let mut devices = Vec::new();
    let d = &s.disorder;
    for (fi, f) in s.iot.fleets.iter().enumerate() {
        let count = ((f64::from(f.devices) * s.iot.fleet_scale).round() as usize).max(1);
        for _ in 0..count {
            let id = 1_000_000 + devices.len() as u64;
            let clock_ahead_ms = if rng.random::<f64>() < d.clock_ahead_device_rate {
                rng.random_range(
                    d.clock_ahead.min.as_millis() as i64..=d.clock_ahead.max.as_millis() as i64,
                )
            } else {
                0
            };
            let silent = (rng.random::<f64>() < s.iot.silent_device_rate).then(|| {
                let from = start_ms + rng.random_range(0..DAY_MS);
                let len = rng.random_range(
                    s.iot.silence.min.as_millis() as i64..=s.iot.silence.max.as_millis() as i64,
                );
                (from, from + len)
            });
            devices.push(Device {
                id,
                fleet: fi,
                lat_micro: ((f.lat + rng.random_range(-f.spread_deg..=f.spread_deg)) * 1e6) as i32,
                lon_micro: ((f.lon + rng.random_range(-f.spread_deg..=f.spread_deg)) * 1e6) as i32,
                battery_permille: rng.random_range(400..=1000),
                clock_ahead_ms,
                silent,
            });
        }
        fleets.push(FleetModel {
            kind: f.kind.0,
            country: f.country.0,
            report_ms: ((f.report_every.as_millis() as f64 / s.iot.report_speedup) as i64)
                .max(1000),
            temperature: (f.temperature[0], f.temperature[1]),
            band_centi: f
                .temperature_band
                .map(|[lo, hi]| ((lo * 100.0) as i32, (hi * 100.0) as i32)),
            excursion_rate: f.excursion_rate,
            lat: f.lat,
            lon: f.lon,
            spread: f.spread_deg,
        });
    }
    (fleets, devices)
}
