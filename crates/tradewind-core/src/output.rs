//! What flows in and out of the engine besides the events themselves: the
//! source position of an event, and the rows, ledger rows, rejections and
//! checkpoints the engine hands to the sink.

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceMeta {
    pub partition: i32,
    pub offset: i64,
    /// The Kafka record timestamp: when the broker (or producer) saw it.
    pub record_time_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    TooLate,
    FutureTimestamp,
    /// The record did not decode as its topic's message.
    Malformed,
    /// The record uses an enum value this version does not know.
    UnknownEnum,
    /// A field holds a value outside its documented range (the field's
    /// name): a zero id, an implausible time, a non-positive amount.
    Invalid(&'static str),
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooLate => "too_late",
            Reason::FutureTimestamp => "future_timestamp",
            Reason::Malformed => "malformed",
            Reason::UnknownEnum => "unknown_enum",
            Reason::Invalid(_) => "invalid",
        }
    }

    /// The offending field of an `invalid` record.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Reason::Invalid(f) => Some(f),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub partition: i32,
    pub offset: i64,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow<K, A> {
    pub window_start: i64,
    pub key: K,
    pub partition: i32,
    pub version: i64,
    pub agg: A,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerRow {
    pub partition: i32,
    pub window_start: i64,
    pub seen: u64,
    pub aggregated: u64,
    pub corrected_late: u64,
    pub too_late: u64,
    pub future_timestamp: u64,
    pub malformed: u64,
    pub unknown_enum: u64,
    pub invalid: u64,
    /// Repeats of an event already counted: booked, not aggregated.
    pub duplicate: u64,
    pub first_offset: i64,
    pub last_offset: i64,
}

impl LedgerRow {
    pub fn version(&self) -> i64 {
        self.last_offset
    }
}

/// What the engine has emitted since the last [`Engine::take_output`].
#[derive(Debug, Clone)]
pub struct Output<K, A> {
    pub rows: Vec<WindowRow<K, A>>,
    pub ledger: Vec<LedgerRow>,
    pub rejections: Vec<Rejection>,
}

impl<K, A> Default for Output<K, A> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            ledger: Vec::new(),
            rejections: Vec::new(),
        }
    }
}

/// A partition's restart point, small enough for Kafka commit metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub restart_offset: i64,
    pub frontier_at_restart: i64,
    pub frontier_at_checkpoint: i64,
    pub highest_processed: i64,
    pub ledger_from: i64,
}

impl Checkpoint {
    /// `v1:<restart>:<frontier@restart>:<frontier>:<highest>:<ledger_from>`.
    pub fn to_metadata(&self) -> String {
        format!(
            "v1:{}:{}:{}:{}:{}",
            self.restart_offset,
            self.frontier_at_restart,
            self.frontier_at_checkpoint,
            self.highest_processed,
            self.ledger_from
        )
    }

    pub fn from_metadata(s: &str) -> Option<Self> {
        let mut it = s.strip_prefix("v1:")?.split(':').map(|p| p.parse::<i64>());
        let mut next = || it.next()?.ok();
        Some(Self {
            restart_offset: next()?,
            frontier_at_restart: next()?,
            frontier_at_checkpoint: next()?,
            highest_processed: next()?,
            ledger_from: next()?,
        })
    }
}
