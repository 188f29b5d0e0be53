//! Dead letters: rejected records on their way to `<prefix>dlq`, each
//! with its reason, its source coordinates and the pipeline that rejected
//! it as headers. Pipelines that share a topic prefix (a backfill into a
//! second database, say) share the DLQ topic; `pipeline.group` and
//! `pipeline.database` tell their records apart, and `tradewind reconcile`
//! counts only its own.
//!
//! A record the source topic accepted must never stop the pipeline on its
//! way to the DLQ. So the DLQ producer is sized from the topics' own
//! limits ([`DlqLimits::discover`]: `max.message.bytes` of every source
//! topic and of the DLQ topic), and a record that still would not fit the
//! DLQ topic is dead-lettered with its payload truncated: the headers then
//! say `payload.truncated = true` and `payload.size = <original bytes>`,
//! so the record is accounted for even when its bytes are not all kept.

use rdkafka::message::{Header, OwnedHeaders};
use tradewind_kafka::KafkaConfig;

/// A rejected record waiting for the next commit's Kafka transaction.
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: &'static str,
    /// The offending field of an `invalid` record.
    pub field: Option<&'static str>,
}

/// librdkafka's own default for `message.max.bytes`, used when the broker
/// does not describe a topic.
const FALLBACK_MAX: usize = 1_000_000;

/// Which pipeline dead-letters: its consumer group and ClickHouse database.
#[derive(Debug, Clone)]
pub struct PipelineId {
    pub group: String,
    pub database: String,
}

/// How large a DLQ record may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DlqLimits {
    /// `message.max.bytes` for the DLQ producer: above every source
    /// topic's limit, so librdkafka never refuses a record locally.
    pub producer_max: usize,
    /// Key, payload and headers of one DLQ record must fit in this: the
    /// DLQ topic's `max.message.bytes`, less room for the record batch
    /// framing and for lz4's worst case on incompressible bytes.
    pub record_budget: usize,
}

impl DlqLimits {
    pub fn new(source_max: usize, dlq_max: usize) -> Self {
        let margin = 1024 + dlq_max / 128;
        Self {
            producer_max: source_max.max(dlq_max) + 64 * 1024,
            record_budget: dlq_max.saturating_sub(margin).max(4096),
        }
    }

    /// Reads the limits from the broker; falls back to librdkafka's
    /// defaults, with a warning, if the broker does not say.
    pub async fn discover(cfg: &KafkaConfig, sources: &[String], dlq: &str) -> Self {
        let mut topics = sources.to_vec();
        topics.push(dlq.to_string());
        let limits = match tradewind_kafka::admin::max_message_bytes(cfg, &topics).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the topics' max.message.bytes; assuming {FALLBACK_MAX}");
                Default::default()
            }
        };
        let source_max = sources
            .iter()
            .filter_map(|t| limits.get(t))
            .copied()
            .max()
            .unwrap_or(FALLBACK_MAX);
        let dlq_max = limits.get(dlq).copied().unwrap_or(FALLBACK_MAX);
        let l = Self::new(source_max, dlq_max);
        tracing::info!(
            source_max,
            dlq_max,
            record_budget = l.record_budget,
            "DLQ sized from the topics' max.message.bytes"
        );
        l
    }
}

impl DeadLetter {
    /// Headers and the payload to send: whole if the record fits
    /// `budget`, else cut to fit and flagged.
    pub fn to_parts(&self, budget: usize, pipeline: &PipelineId) -> (OwnedHeaders, &[u8]) {
        let (partition, offset) = (self.partition.to_string(), self.offset.to_string());
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "reason",
                value: Some(self.reason),
            })
            .insert(Header {
                key: "source.topic",
                value: Some(&self.topic),
            })
            .insert(Header {
                key: "source.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "source.offset",
                value: Some(&offset),
            })
            .insert(Header {
                key: "pipeline.group",
                value: Some(&pipeline.group),
            })
            .insert(Header {
                key: "pipeline.database",
                value: Some(&pipeline.database),
            });
        let headers = match self.field {
            Some(f) => headers.insert(Header {
                key: "invalid.field",
                value: Some(f),
            }),
            None => headers,
        };
        let key_len = self.key.as_ref().map_or(0, Vec::len);
        // Header names, values and their varint framing, generously.
        let fixed =
            key_len + 256 + self.topic.len() + pipeline.group.len() + pipeline.database.len();
        if fixed + self.payload.len() <= budget {
            return (headers, &self.payload);
        }
        let keep = budget.saturating_sub(fixed);
        metrics::counter!(crate::telemetry::DLQ_TRUNCATED_TOTAL, "topic" => self.topic.clone())
            .increment(1);
        tracing::warn!(
            topic = %self.topic,
            partition = self.partition,
            offset = self.offset,
            size = self.payload.len(),
            kept = keep,
            "record too large for the DLQ topic; dead-lettering it truncated"
        );
        let headers = headers
            .insert(Header {
                key: "payload.truncated",
                value: Some("true"),
            })
            .insert(Header {
                key: "payload.size",
                value: Some(&self.payload.len().to_string()),
            });
        (headers, &self.payload[..keep])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    fn letter(size: usize) -> DeadLetter {
        DeadLetter {
            key: Some(b"k".to_vec()),
            payload: vec![7; size],
            topic: "tradewind.payments".into(),
            partition: 3,
            offset: 42,
            reason: "malformed",
            field: None,
        }
    }

    fn header(h: &OwnedHeaders, key: &str) -> Option<String> {
        h.iter()
            .find(|x| x.key == key)
            .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
    }

    #[test]
    fn records_that_fit_go_whole_and_larger_ones_are_cut_and_flagged() {
        let limits = DlqLimits::new(2_000_000, 1_048_588);
        let me = PipelineId {
            group: "g".into(),
            database: "db".into(),
        };
        assert!(limits.producer_max > 2_000_000);
        assert!(limits.record_budget < 1_048_588);

        let small = letter(1000);
        let (h, p) = small.to_parts(limits.record_budget, &me);
        assert_eq!(p.len(), 1000);
        assert_eq!(header(&h, "payload.truncated"), None);
        assert_eq!(header(&h, "source.offset").as_deref(), Some("42"));
        assert_eq!(header(&h, "pipeline.group").as_deref(), Some("g"));
        assert_eq!(header(&h, "pipeline.database").as_deref(), Some("db"));

        let big = letter(1_200_000);
        let (h, p) = big.to_parts(limits.record_budget, &me);
        assert!(p.len() < limits.record_budget && p.len() > 1_000_000);
        assert_eq!(header(&h, "payload.truncated").as_deref(), Some("true"));
        assert_eq!(header(&h, "payload.size").as_deref(), Some("1200000"));
        assert_eq!(header(&h, "reason").as_deref(), Some("malformed"));
    }
}
