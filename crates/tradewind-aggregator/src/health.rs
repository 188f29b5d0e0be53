//! What an operator needs to know about a member while it is in trouble:
//! its state (`running`, `sink_blocked`, `rejoining`), whether it is ready
//! (`/ready` answers 503 unless it is `running`), and how long ago
//! ClickHouse last acknowledged a write. The consumer loop sets the state;
//! [`Health::publish`] turns it into gauges once a second, so they stay on
//! `/metrics` through an outage of any length.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::telemetry as tm;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Consuming, writing and committing.
    Running = 0,
    /// ClickHouse does not acknowledge writes: partitions are paused, the
    /// member stays in the group and retries.
    SinkBlocked = 1,
    /// Recovering from a Kafka fault: rebuilding the producer and the
    /// consumer, then resuming from the committed offsets.
    Rejoining = 2,
}

impl State {
    const ALL: [State; 3] = [State::Running, State::SinkBlocked, State::Rejoining];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::SinkBlocked => "sink_blocked",
            State::Rejoining => "rejoining",
        }
    }
}

pub struct Health {
    state: AtomicU8,
    /// Shared with the HTTP endpoint: `/ready`.
    pub ready: std::sync::Arc<AtomicBool>,
    last_write: Mutex<Instant>,
}

impl Health {
    pub fn new(ready: std::sync::Arc<AtomicBool>) -> Self {
        Self {
            state: AtomicU8::new(State::Rejoining as u8),
            ready,
            last_write: Mutex::new(Instant::now()),
        }
    }

    pub fn set(&self, s: State) {
        let old = self.state.swap(s as u8, Ordering::Relaxed);
        self.ready.store(s == State::Running, Ordering::Relaxed);
        if old != s as u8 {
            tracing::info!(state = s.as_str(), "member state");
            self.publish();
        }
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            0 => State::Running,
            1 => State::SinkBlocked,
            _ => State::Rejoining,
        }
    }

    /// ClickHouse acknowledged a write (or there was nothing to write).
    pub fn wrote(&self) {
        *self.last_write.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    pub fn publish(&self) {
        let now = self.state();
        for s in State::ALL {
            metrics::gauge!(tm::MEMBER_STATE, "state" => s.as_str()).set(if s == now {
                1.0
            } else {
                0.0
            });
        }
        let age = self
            .last_write
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        metrics::gauge!(tm::SINK_LAST_SUCCESS_AGE_SECONDS).set(age.as_secs_f64());
    }
}
