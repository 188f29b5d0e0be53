//! librdkafka's own reports while a broker is away: it retries by itself
//! and says so for every connection attempt, several times a second. A
//! member's log keeps the first report of each kind and then at most one
//! line per [`EVERY`], with the count of what it left out, so an outage
//! reads as a few lines instead of hundreds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;

const EVERY: Duration = Duration::from_secs(10);

/// Last time each kind of report was logged, and how many were left out.
#[derive(Default)]
pub struct Quiet(Mutex<HashMap<String, (Instant, u64)>>);

impl Quiet {
    /// Whether to log a report of `kind` now; returns how many were left
    /// out since the last one.
    fn admit(&self, kind: &str) -> Option<u64> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match map.get_mut(kind) {
            Some((last, skipped)) if now.duration_since(*last) < EVERY => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                let n = *skipped;
                *last = now;
                *skipped = 0;
                Some(n)
            }
            None => {
                map.insert(kind.to_string(), (now, 0));
                Some(0)
            }
        }
    }

    pub fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let Some(skipped) = self.admit(fac) else {
            return;
        };
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, skipped, "{message}")
            }
            _ => tracing::info!(target: "librdkafka", facility = fac, skipped, "{message}"),
        }
    }

    pub fn error(&self, error: &KafkaError, reason: &str) {
        let kind = format!("{:?}", error.rdkafka_error_code());
        if let Some(skipped) = self.admit(&kind) {
            tracing::warn!(target: "librdkafka", %error, skipped, "{reason}");
        }
    }
}

/// The DLQ producer's context: quiet logs, no delivery callback (a
/// transaction's commit reports every failure).
#[derive(Default)]
pub struct ProducerQuiet(pub Quiet);

impl ClientContext for ProducerQuiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.0.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(&error, reason);
    }
}

impl ProducerContext for ProducerQuiet {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}
