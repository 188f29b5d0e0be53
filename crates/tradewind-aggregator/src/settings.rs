//! What the aggregator is given to run: its own `[aggregator]` section
//! ([`AggregatorConfig`]) and the shared sections it reads (`[kafka]`,
//! `[clickhouse]`, `[core]`), gathered in [`Settings`]. The binary builds
//! one from the layered app config; tests build one directly.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tradewind_clickhouse::ClickHouseConfig;
use tradewind_core::CoreConfig;
use tradewind_kafka::KafkaConfig;
use tradewind_sink::SinkConfig;

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub core: CoreConfig,
    pub aggregator: AggregatorConfig,
    /// Stop (after a final commit) once this member holds partitions and
    /// no record has arrived for this long; for batch runs and benchmarks.
    /// `None` runs until the shutdown token is cancelled.
    pub exit_when_idle: Option<Duration>,
}

/// `[aggregator]`: the service's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// Kafka consumer group; every copy of the service in one group shares the partitions.
    pub group_id: String,
    /// This member's stable identity: its static group membership
    /// (`group.instance.id`) and its transactional id
    /// (`tradewind-<group_id>-<instance_id>`). Empty means the host name,
    /// which is stable for a compose replica or a Kubernetes pod. Two
    /// running members must not share one: the later one takes over and
    /// the earlier one stops with an error saying so.
    pub instance_id: String,
    /// Join the group as a static member (`group.instance.id`), so a
    /// restart within `session_timeout` gets the same partitions back
    /// without a rebalance. A static member does not leave the group when
    /// it stops; its partitions move after `session_timeout`.
    pub static_membership: bool,
    /// Address of the `/metrics`, `/health` and `/ready` endpoint.
    pub listen: String,
    /// Kafka session timeout: how soon a dead copy's partitions move to the others.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How often consumer lag and restart backlog are refreshed on `/metrics`
    /// (librdkafka's `statistics.interval.ms`); `0s` turns them off.
    #[serde(with = "humantime_serde")]
    pub stats_interval: Duration,
    /// How often each partition's state is snapshotted to the compacted
    /// state topic (`<prefix>state`), in the same Kafka transaction as its
    /// offsets; a restart then replays only what came after the snapshot.
    /// `0s` turns snapshots off (restarts replay from the oldest record
    /// kept state depends on). Members also snapshot when they hand
    /// partitions over (rebalance, stop).
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    /// Snapshot a partition sooner, at its next commit, once a restart
    /// would replay more than this many of its records; 0 means on the
    /// interval only.
    pub snapshot_max_replay: u64,
    /// Largest state-topic record a snapshot is cut into (bytes of state
    /// per chunk); keep it under the topic's `max.message.bytes`.
    pub snapshot_chunk_bytes: usize,
    /// ClickHouse batching and retries.
    pub sink: SinkConfig,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            group_id: "tradewind-aggregator".into(),
            instance_id: String::new(),
            static_membership: true,
            listen: "127.0.0.1:9464".into(),
            session_timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(5),
            // Each snapshot is a full copy of the partition's state (an
            // hour of deduplication identities at the default horizon), so
            // its cost grows with rate × horizon: every 60 s cut a loaded
            // member's sustainable rate about eightfold (benches/README.md,
            // "Capacity"). Ten minutes bounds a crash's replay and keeps
            // that cost small.
            snapshot_interval: Duration::from_secs(600),
            snapshot_max_replay: 10_000_000,
            snapshot_chunk_bytes: 512 * 1024,
            sink: SinkConfig::default(),
        }
    }
}

impl AggregatorConfig {
    /// `instance_id`, or the host name when it is empty.
    pub fn instance_id(&self) -> String {
        if !self.instance_id.is_empty() {
            return self.instance_id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "tradewind".into())
    }

    /// The DLQ producer's transactional id: stable across restarts, so a
    /// successor fences its predecessor's open transaction at once.
    pub fn transactional_id(&self) -> String {
        format!("tradewind-{}-{}", self.group_id, self.instance_id())
    }
}
