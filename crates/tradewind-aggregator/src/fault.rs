//! Why a member cannot go on as it is, from the Kafka errors it meets:
//! recover as after a crash, stop because another process took its
//! identity, or stop because only an operator can fix it.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Why a member cannot go on as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Kafka failed under us (broker gone, transaction failed, member
    /// fenced by the group): recover as after a crash.
    Recover(String),
    /// Another process with this member's identity took over.
    Fenced(String),
    /// Only an operator can fix this (authentication, authorisation,
    /// configuration). The member stops and says what it is.
    Operator(String),
}

impl Fault {
    /// Classifies a Kafka error met while `doing` something.
    pub fn from_kafka(doing: &str, e: &KafkaError) -> Self {
        let msg = format!("{doing}: {e}");
        match e {
            KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..) => {
                return Fault::Operator(msg)
            }
            KafkaError::Transaction(t) if t.is_fatal() && fenced(t.code()) => {
                return Fault::Fenced(msg)
            }
            _ => {}
        }
        match e.rdkafka_error_code() {
            Some(c) if needs_operator(c) => Fault::Operator(msg),
            Some(c) if fenced(c) => Fault::Fenced(msg),
            _ => Fault::Recover(msg),
        }
    }
}

fn fenced(c: RDKafkaErrorCode) -> bool {
    matches!(
        c,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::FencedInstanceId
    )
}

fn needs_operator(c: RDKafkaErrorCode) -> bool {
    matches!(
        c,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
    )
}
