//! The scenario's rules the type system cannot state, one named step per
//! part of the file: rates are probabilities, weights and scales are
//! positive, lists are not empty, ranges are ordered. Each failure names
//! the key to fix.

use std::time::Duration;

use super::Scenario;
use crate::{Error, Result};

fn bad<T>(msg: String) -> Result<T> {
    Err(Error::Scenario(msg))
}

fn positive(name: &str, x: f64) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        bad(format!("{name} must be a positive number, got {x}"))
    }
}

impl Scenario {
    /// Checks what the type system cannot.
    pub fn validate(&self) -> Result<()> {
        self.check_clock()?;
        self.check_rates()?;
        self.check_mix_and_cycle()?;
        self.check_corridors()?;
        self.check_payment_methods()?;
        self.check_fleets()?;
        self.check_ranges()
    }

    fn check_clock(&self) -> Result<()> {
        positive("clock.events_per_second", self.clock.events_per_second)?;
        crate::clock::parse_start(&self.clock.start, 0)?;
        positive("iot.fleet_scale", self.iot.fleet_scale)?;
        positive("iot.report_speedup", self.iot.report_speedup)?;
        if self.fx.interval.is_zero() || self.truth.window.is_zero() {
            return bad("fx.interval and truth.window must be above 0".into());
        }
        Ok(())
    }

    fn check_rates(&self) -> Result<()> {
        let d = &self.disorder;
        let rates = [
            ("disorder.jitter_rate", d.jitter_rate),
            ("disorder.late_rate", d.late_rate),
            ("disorder.duplicate_rate", d.duplicate_rate),
            ("disorder.poison_rate", d.poison_rate),
            (
                "disorder.clock_ahead_device_rate",
                d.clock_ahead_device_rate,
            ),
            ("payments.refund_rate", self.payments.refund_rate),
            ("logistics.lost_rate", self.logistics.lost_rate),
            ("iot.silent_device_rate", self.iot.silent_device_rate),
        ];
        for (name, r) in rates {
            if !(0.0..=1.0).contains(&r) {
                return bad(format!("{name} must be a probability in [0, 1], got {r}"));
            }
        }
        if d.jitter_rate + d.late_rate > 1.0 {
            return bad("disorder.jitter_rate + disorder.late_rate must not exceed 1".into());
        }
        for (name, r) in &self.payments.failure_rate {
            if !(0.0..=1.0).contains(r) {
                return bad(format!(
                    "payments.failure_rate.{name} must be in [0, 1], got {r}"
                ));
            }
        }
        Ok(())
    }

    fn check_mix_and_cycle(&self) -> Result<()> {
        for (name, w) in [
            ("mix.payments", self.mix.payments),
            ("mix.shipments", self.mix.shipments),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return bad(format!("{name} must be a non-negative number, got {w}"));
            }
        }
        if self.mix.payments + self.mix.shipments <= 0.0 {
            return bad("mix: at least one of payments, shipments must be above 0".into());
        }
        let hourly = &self.daily_cycle.hourly;
        if hourly.len() != 24 {
            return bad(format!(
                "daily_cycle.hourly needs 24 values (one per local hour), got {}",
                hourly.len()
            ));
        }
        if let Some(v) = hourly.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return bad(format!(
                "daily_cycle.hourly values must be non-negative, got {v}"
            ));
        }
        for f in &self.festivals {
            if !(f.multiplier.is_finite() && f.multiplier > 0.0) {
                return bad(format!(
                    "festival {:?}: multiplier must be positive",
                    f.name
                ));
            }
        }
        Ok(())
    }

    fn check_corridors(&self) -> Result<()> {
        if self.corridors.is_empty() {
            return bad("corridors must list at least one corridor".into());
        }
        for c in &self.corridors {
            let ctx = |what: &str| format!("corridor {:?}: {what}", c.name);
            if !(c.weight.is_finite() && c.weight > 0.0) {
                return bad(ctx(&format!("weight must be positive, got {}", c.weight)));
            }
            for (label, len) in [
                ("channels", c.channels.len()),
                ("categories", c.categories.len()),
                ("modes", c.modes.len()),
            ] {
                if len == 0 {
                    return bad(ctx(&format!("{label} must not be empty")));
                }
            }
            if let Some(mode) = c.modes.keys().find(|m| !c.transit.contains_key(*m)) {
                return bad(ctx(&format!("mode {mode} has no transit time")));
            }
            if !(c.amount.median > 0.0 && c.amount.sigma >= 0.0) {
                return bad(ctx("amount needs median > 0 and sigma >= 0"));
            }
            if !self.payment_methods.contains_key(&c.to) {
                return bad(ctx(&format!(
                    "payment_methods has no entry for payer country {}",
                    c.to
                )));
            }
        }
        Ok(())
    }

    fn check_payment_methods(&self) -> Result<()> {
        for (country, mix) in &self.payment_methods {
            if mix.values().sum::<f64>() <= 0.0
                || mix.values().any(|w| !(w.is_finite() && *w >= 0.0))
            {
                return bad(format!(
                    "payment_methods.{country}: shares must be non-negative and not all 0"
                ));
            }
        }
        Ok(())
    }

    fn check_fleets(&self) -> Result<()> {
        for f in &self.iot.fleets {
            if f.devices == 0 || f.report_every < Duration::from_secs(1) {
                return bad(format!(
                    "iot fleet {} in {}: needs devices > 0 and report_every of at least 1s",
                    f.kind, f.country
                ));
            }
        }
        Ok(())
    }

    fn check_ranges(&self) -> Result<()> {
        for (name, r) in [
            ("disorder.late", self.disorder.late),
            ("disorder.clock_ahead", self.disorder.clock_ahead),
            ("payments.refund_delay", self.payments.refund_delay),
            ("iot.silence", self.iot.silence),
        ] {
            if r.min > r.max {
                return bad(format!("{name}: min must not exceed max"));
            }
        }
        Ok(())
    }
}
