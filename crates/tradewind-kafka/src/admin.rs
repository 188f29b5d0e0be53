//! Broker reachability, topic creation and offsets. Everything here has a
//! deadline, so an unreachable broker is a clear error instead of a hang.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::{Error, KafkaConfig, Result};

/// Low and high watermark of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

fn metadata_consumer(cfg: &KafkaConfig) -> Result<BaseConsumer<LastComplaint>> {
    Ok(cfg
        .client_config()
        .set("group.id", "tradewind-admin")
        // Connection failures (`FAIL`) are logged at info level; the
        // context keeps them rather than printing them. (rdkafka sets the
        // level from this field, not from the `log_level` property.)
        .set_log_level(RDKafkaLogLevel::Info)
        .create_with_context(LastComplaint::default())?)
}

fn unreachable(
    cfg: &KafkaConfig,
    consumer: &BaseConsumer<LastComplaint>,
    source: KafkaError,
) -> Error {
    // Logs and errors reach the context as queued events: serve them all
    // (one poll serves one event).
    let until = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < until {
        let _ = consumer.poll(Duration::from_millis(10));
    }
    let cause = match consumer.context().take() {
        None => "no answer; is the broker running? (deploy/local/up.sh starts one)".into(),
        Some(c) => format!("{c}{}", protocol_hint(&c, cfg.security.protocol)),
    };
    Error::Unreachable {
        brokers: cfg.brokers.clone(),
        timeout: cfg.connect_timeout,
        cause,
        error: Box::new(source),
    }
}

/// What a closed connection most likely means, which librdkafka does not say.
fn protocol_hint(complaint: &str, protocol: crate::security::Protocol) -> &'static str {
    use crate::security::Protocol;
    let tls = matches!(protocol, Protocol::Ssl | Protocol::SaslSsl);
    if !tls && complaint.contains("APIVERSION_QUERY") {
        " (the broker hung up before answering: if this listener expects TLS, \
         set kafka.security.protocol to \"ssl\" or \"sasl_ssl\")"
    } else if tls
        && complaint.contains("SSL handshake failed")
        && !complaint.contains("certificate")
    {
        " (if this listener does not use TLS, set kafka.security.protocol to \
         \"plaintext\" or \"sasl_plaintext\")"
    } else {
        ""
    }
}

/// Fails with [`Error::Unreachable`] unless the cluster answers a metadata
/// request within `connect_timeout`. The error carries librdkafka's last
/// complaint (a refused connection, a failed TLS handshake, rejected SASL
/// credentials), so it names the problem rather than just the timeout.
pub fn check_reachable(cfg: &KafkaConfig) -> Result<()> {
    let consumer = metadata_consumer(cfg)?;
    consumer
        .fetch_metadata(None, cfg.connect_timeout)
        .map(|_| ())
        .map_err(|source| unreachable(cfg, &consumer, source))
}

/// Remembers the last error or warning librdkafka reported, instead of
/// logging it.
#[derive(Default)]
pub struct LastComplaint(std::sync::Mutex<Option<String>>);

impl LastComplaint {
    pub fn take(&self) -> Option<String> {
        self.0.lock().ok()?.take()
    }

    fn keep(&self, what: String) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(what);
        }
    }
}

impl ClientContext for LastComplaint {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "FAIL"
            || matches!(
                level,
                RDKafkaLogLevel::Emerg
                    | RDKafkaLogLevel::Alert
                    | RDKafkaLogLevel::Critical
                    | RDKafkaLogLevel::Error
                    | RDKafkaLogLevel::Warning
            )
        {
            self.keep(message.to_string());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // "1/1 brokers are down" follows the reason they are down; keep that.
        let generic = error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown);
        if generic && self.0.lock().is_ok_and(|last| last.is_some()) {
            return;
        }
        self.keep(if reason.is_empty() {
            error.to_string()
        } else {
            reason.to_string()
        });
    }
}

impl ConsumerContext for LastComplaint {}

/// Creates each `(topic, partitions)` that does not exist yet. Existing
/// topics are left as they are. The state topic is created compacted
/// (`cleanup.policy=compact`): only each key's latest snapshot chunk is
/// kept, whatever the broker's retention.
pub async fn ensure_topics(cfg: &KafkaConfig, topics: &[(String, i32)]) -> Result<()> {
    let cfg2 = cfg.clone();
    tokio::task::spawn_blocking(move || check_reachable(&cfg2))
        .await
        .map_err(|e| Error::CreateTopic {
            topic: "*".into(),
            reason: e.to_string(),
        })??;
    let admin: AdminClient<DefaultClientContext> = cfg.client_config().create()?;
    let state = cfg.state_topic();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, parts)| {
            let t = NewTopic::new(
                name,
                *parts,
                TopicReplication::Fixed(cfg.replication_factor),
            );
            if *name == state {
                t.set("cleanup.policy", "compact")
            } else {
                t
            }
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(cfg.connect_timeout))
        .request_timeout(Some(cfg.connect_timeout));
    for result in admin.create_topics(new.iter(), &opts).await? {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::CreateTopic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// The largest record each topic accepts (`max.message.bytes`, which falls
/// back to the broker's `message.max.bytes`), by topic name. A topic the
/// broker does not describe is left out.
pub async fn max_message_bytes(
    cfg: &KafkaConfig,
    topics: &[String],
) -> Result<std::collections::BTreeMap<String, usize>> {
    let admin: AdminClient<DefaultClientContext> = cfg.client_config().create()?;
    let opts = AdminOptions::new().request_timeout(Some(cfg.connect_timeout));
    let specs: Vec<ResourceSpecifier<'_>> = topics
        .iter()
        .map(|t| ResourceSpecifier::Topic(t.as_str()))
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for (topic, result) in topics
        .iter()
        .zip(admin.describe_configs(&specs, &opts).await?)
    {
        let Ok(resource) = result else { continue };
        let value = resource
            .get("max.message.bytes")
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(v) = value {
            out.insert(topic.clone(), v);
        }
    }
    Ok(out)
}

/// Watermarks of every partition of `topic`.
pub fn topic_offsets(cfg: &KafkaConfig, topic: &str) -> Result<Vec<PartitionOffsets>> {
    let consumer = metadata_consumer(cfg)?;
    let timeout = cfg.connect_timeout;
    let deadline = std::time::Instant::now() + timeout;
    // A topic created a moment ago may still report a transient error
    // (no leader yet) in its metadata; wait for it like for watermarks.
    let md = loop {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|source| unreachable(cfg, &consumer, source))?;
        let err = md.topics().iter().find_map(|t| t.error());
        match err.map(RDKafkaErrorCode::from) {
            None => break md,
            Some(code) if std::time::Instant::now() < deadline && transient_code(code) => {
                tracing::debug!(%topic, ?code, "topic metadata not ready yet; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Some(code) => {
                return Err(Error::CreateTopic {
                    topic: topic.into(),
                    reason: format!("{code:?}"),
                })
            }
        }
    };
    let mut out = Vec::new();
    for t in md.topics() {
        for p in t.partitions() {
            let (low, high) = watermarks_with_retry(&consumer, topic, p.id(), timeout)?;
            out.push(PartitionOffsets {
                partition: p.id(),
                low,
                high,
            });
        }
    }
    out.sort_by_key(|p| p.partition);
    Ok(out)
}

/// The summed end offsets of a set of topics, read again and again over one
/// client: how many records have ever been written to them. A load test
/// reads it every second; the difference between two readings is what
/// producers wrote in between.
pub struct TopicHeads {
    consumer: BaseConsumer<LastComplaint>,
    partitions: Vec<(String, i32)>,
    timeout: Duration,
}

impl TopicHeads {
    /// Looks up the partitions of `topics` (creating none).
    pub fn new(cfg: &KafkaConfig, topics: &[String]) -> Result<Self> {
        let mut partitions = Vec::new();
        for topic in topics {
            for p in topic_offsets(cfg, topic)? {
                partitions.push((topic.clone(), p.partition));
            }
        }
        Ok(Self {
            consumer: metadata_consumer(cfg)?,
            partitions,
            timeout: cfg.connect_timeout,
        })
    }

    /// The sum of the high watermarks now.
    pub fn total(&self) -> Result<i64> {
        let mut sum = 0;
        for (topic, partition) in &self.partitions {
            sum += watermarks_with_retry(&self.consumer, topic, *partition, self.timeout)?.1;
        }
        Ok(sum)
    }
}

/// Right after a topic is created its partitions may still be electing a
/// leader; such transient errors are retried until `timeout`.
fn watermarks_with_retry(
    consumer: &BaseConsumer<LastComplaint>,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<(i64, i64)> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match consumer.fetch_watermarks(topic, partition, timeout) {
            Ok(w) => return Ok(w),
            Err(e) if std::time::Instant::now() < deadline && is_transient(&e) => {
                tracing::debug!(%topic, partition, error = %e, "watermarks not ready yet; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_transient(e: &rdkafka::error::KafkaError) -> bool {
    e.rdkafka_error_code().is_some_and(transient_code)
}

fn transient_code(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownPartition
    )
}

/// Deletes topics (used by tests to clean up after themselves).
pub async fn delete_topics(cfg: &KafkaConfig, topics: &[String]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = cfg.client_config().create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    admin.delete_topics(&names, &opts).await?;
    Ok(())
}
