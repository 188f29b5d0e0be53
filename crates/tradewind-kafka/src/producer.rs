//! The batched, compressed producer every Tradewind producer path uses.
//! Records go into librdkafka's queue (waiting when it is full, never
//! dropping), a background thread ships and acknowledges them, and delivery
//! failures are counted so `flush` can report them instead of losing them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::{Error, KafkaConfig, Result};

#[derive(Default)]
pub struct DeliveryCounter {
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.delivered_bytes
                    .fetch_add(m.payload_len() as u64, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub struct RecordProducer {
    inner: ThreadedProducer<DeliveryCounter>,
    /// librdkafka's `message.timeout.ms`: a record not acknowledged within
    /// it fails with a delivery error.
    message_timeout: Duration,
}

impl RecordProducer {
    pub fn new(cfg: &KafkaConfig) -> Result<Self> {
        let config = cfg.producer_config();
        let message_timeout = config
            .get("message.timeout.ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(300), Duration::from_millis);
        Ok(Self {
            inner: config.create_with_context(DeliveryCounter::default())?,
            message_timeout,
        })
    }

    /// Queues one record; waits while librdkafka's queue is full.
    pub fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<()> {
        loop {
            match self.inner.send(
                BaseRecord::<[u8], [u8]>::to(topic)
                    .key(key)
                    .payload(payload),
            ) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Records acknowledged by the broker so far, and their payload bytes.
    pub fn delivered(&self) -> (u64, u64) {
        let c = self.inner.context();
        (
            c.delivered.load(Ordering::Relaxed),
            c.delivered_bytes.load(Ordering::Relaxed),
        )
    }

    /// Waits until every queued record is acknowledged or has failed, and
    /// reports any failure. librdkafka fails a record that is not
    /// acknowledged within `message.timeout.ms` of its send, so this waits
    /// no longer than that past the last send (plus a margin for the last
    /// request): a broker that is away for a while delays the flush, and
    /// one that stays away ends it with the records' delivery error rather
    /// than a bare timeout.
    pub fn flush_all(&self) -> Result<()> {
        self.flush(self.message_timeout + Duration::from_secs(30))
    }

    /// Waits up to `timeout` until every queued record is acknowledged or
    /// has failed, then reports any failure.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout)?;
        let c = self.inner.context();
        let failed = c.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = c
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            return Err(Error::Delivery { failed, first });
        }
        Ok(())
    }
}
