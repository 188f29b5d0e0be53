//! Tradewind's simulator: a scenario file goes in, a deterministic stream of
//! protobuf Kafka records comes out, together with the ground truth of what
//! was generated. No I/O happens here; `tradewind simulate` produces the
//! records to Kafka.
//!
//! - [`scenario`]: the TOML scenario and its validation, [`overrides`]:
//!   `--set key=value` on it;
//! - [`world`]: the scenario compiled into sampling tables;
//! - [`generator`]: the event process, disorder and encoding;
//! - [`truth`]: the independent tally used to check consumers.

pub mod clock;
pub mod generator;
pub mod names;
pub mod overrides;
pub mod scenario;
pub mod truth;
mod world;

pub use generator::{Generator, SimRecord};
pub use scenario::Scenario;
pub use truth::{record_checksum, Flags, TopicTruth, Truth};

/// Errors of the simulator library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario is malformed or inconsistent; the message names the key.
    #[error("invalid scenario: {0}")]
    Scenario(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
