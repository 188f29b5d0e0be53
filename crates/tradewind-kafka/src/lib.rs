//! Tradewind's Kafka plumbing, shared by every service that talks to the
//! broker: the serde [`KafkaConfig`], reachability checks and topic admin
//! ([`admin`]), and the batched, compressed [`producer`].

pub mod admin;
pub mod config;
pub mod producer;
pub mod security;

pub use config::{KafkaConfig, PartitionsConfig};
pub use producer::RecordProducer;
pub use security::{SecurityConfig, SecurityError};

use std::time::Duration;

use rdkafka::error::KafkaError;

/// Errors of the Kafka layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach Kafka at {brokers} within {timeout:?}: {cause}")]
    Unreachable {
        brokers: String,
        timeout: Duration,
        /// librdkafka's last complaint, or a hint when it had none.
        cause: String,
        /// What the request itself returned; not a `source`, since `cause`
        /// already says it better and a chain would print it twice.
        error: Box<KafkaError>,
    },
    #[error("creating topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("{failed} record(s) were not delivered to Kafka; first error: {first}")]
    Delivery { failed: u64, first: String },
    #[error("Kafka client error: {0}")]
    Kafka(#[from] KafkaError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
