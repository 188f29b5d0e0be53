//! Kafka settings as they appear under `[kafka]` in `tradewind.toml` (or as
//! `TRADEWIND_KAFKA__*` variables), and the librdkafka client configs built
//! from them. Unknown keys are errors; raw librdkafka properties can still be
//! passed through the `producer` and `consumer` maps.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize, Serializer};
use tradewind_proto::Stream;

use crate::security::SecurityConfig;

/// The dead-letter topic's name after the prefix.
pub const DLQ_TOPIC: &str = "dlq";
/// The compacted state-snapshot topic's name after the prefix.
pub const STATE_TOPIC: &str = "state";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Prepended to every topic name: `<prefix>payments`, `<prefix>iot`,
    /// `<prefix>logistics`, `<prefix>fx`, `<prefix>dlq`, `<prefix>state`.
    pub topic_prefix: String,
    /// Partition counts used when Tradewind creates its topics.
    pub partitions: PartitionsConfig,
    pub replication_factor: i32,
    /// How long to wait for the broker before giving up with an error.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// TLS and SASL for every client; see [`SecurityConfig`].
    pub security: SecurityConfig,
    /// Extra librdkafka producer properties; they override Tradewind's
    /// defaults. Values of keys that name a password or secret are shown
    /// redacted.
    #[serde(serialize_with = "redacted")]
    pub producer: BTreeMap<String, String>,
    /// Extra librdkafka consumer properties; they override Tradewind's
    /// defaults ([`CONSUMER_DEFAULTS`]).
    #[serde(serialize_with = "redacted")]
    pub consumer: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartitionsConfig {
    pub payments: i32,
    pub iot: i32,
    pub logistics: i32,
    pub fx: i32,
    pub dlq: i32,
    /// The compacted state topic (aggregator snapshots); a source
    /// partition's snapshots go to state partition `partition % state`.
    pub state: i32,
}

impl Default for PartitionsConfig {
    fn default() -> Self {
        Self {
            payments: 8,
            iot: 8,
            logistics: 4,
            fx: 1,
            dlq: 2,
            state: 4,
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "tradewind.".into(),
            partitions: PartitionsConfig::default(),
            replication_factor: 1,
            connect_timeout: Duration::from_secs(10),
            security: SecurityConfig::default(),
            producer: BTreeMap::new(),
            consumer: BTreeMap::new(),
        }
    }
}

/// Tradewind's producer defaults: large lz4-compressed batches, idempotent
/// delivery, and the Java client's key hashing so keys land on the same
/// partitions whichever client produced them.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("compression.type", "lz4"),
    ("linger.ms", "20"),
    ("batch.size", "1000000"),
    ("batch.num.messages", "100000"),
    ("queue.buffering.max.messages", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("partitioner", "murmur2_random"),
    ("message.timeout.ms", "120000"),
];

/// Tradewind's consumer defaults. They bound what a member holds in memory
/// before the core sees it, and keep the fetcher busy:
/// - `queued.max.messages.kbytes`: at most 32 MiB of prefetched records in
///   the consumer's local queue, whatever the number of partitions (the
///   librdkafka default is 64 MiB);
/// - `fetch.max.bytes` / `max.partition.fetch.bytes`: 50 MiB per fetch and
///   1 MiB per partition per fetch (librdkafka's defaults, stated here). A
///   record batch larger than either is still fetched whole, so an oversize
///   record never stalls a partition;
/// - `fetch.queue.backoff.ms`: refill a partition's queue after 10 ms
///   instead of librdkafka's 1,000 ms, which otherwise caps a fast consumer.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("queued.max.messages.kbytes", "32768"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "1048576"),
    ("fetch.queue.backoff.ms", "10"),
];

impl KafkaConfig {
    /// Name of the topic carrying `stream`: the prefix, then
    /// [`Stream::as_str`] (`tradewind.payments`).
    pub fn topic(&self, stream: Stream) -> String {
        format!("{}{}", self.topic_prefix, stream.as_str())
    }

    /// Name of the dead-letter topic (`tradewind.dlq`).
    pub fn dlq_topic(&self) -> String {
        format!("{}{}", self.topic_prefix, DLQ_TOPIC)
    }

    /// Name of the compacted state-snapshot topic (`tradewind.state`).
    pub fn state_topic(&self) -> String {
        format!("{}{}", self.topic_prefix, STATE_TOPIC)
    }

    /// The four stream topics, in [`Stream::ALL`] order.
    pub fn stream_topics(&self) -> Vec<String> {
        Stream::ALL.iter().map(|s| self.topic(*s)).collect()
    }

    /// Every topic Tradewind uses, with its configured partition count.
    pub fn all_topics(&self) -> Vec<(String, i32)> {
        let p = &self.partitions;
        let mut topics: Vec<(String, i32)> = Stream::ALL
            .iter()
            .map(|s| {
                let n = match s {
                    Stream::Payments => p.payments,
                    Stream::Iot => p.iot,
                    Stream::Logistics => p.logistics,
                    Stream::Fx => p.fx,
                };
                (self.topic(*s), n)
            })
            .collect();
        topics.push((self.dlq_topic(), p.dlq));
        topics.push((self.state_topic(), p.state));
        topics
    }

    /// Base client config: brokers, a short socket timeout so a dead
    /// broker is noticed quickly, and `[kafka.security]`.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "tradewind")
            .set(
                "socket.connection.setup.timeout.ms",
                self.connect_timeout.as_millis().max(1000).to_string(),
            )
            .set("log_level", "3");
        self.security.apply(&mut c);
        c
    }

    /// The base config, then `defaults`, then the user's `overrides`.
    fn layered(
        &self,
        defaults: &[(&str, &str)],
        overrides: &BTreeMap<String, String>,
    ) -> ClientConfig {
        let mut c = self.client_config();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in overrides {
            c.set(k, v);
        }
        c
    }

    pub fn producer_config(&self) -> ClientConfig {
        self.layered(PRODUCER_DEFAULTS, &self.producer)
    }

    /// The base consumer config: [`CONSUMER_DEFAULTS`], then `consumer`'s
    /// overrides. The caller adds the group and commit settings.
    pub fn consumer_config(&self) -> ClientConfig {
        self.layered(CONSUMER_DEFAULTS, &self.consumer)
    }
}

/// Serializes a librdkafka property map with secret values redacted.
fn redacted<S: Serializer>(map: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    tradewind_secret::redact_map(map).serialize(s)
}
