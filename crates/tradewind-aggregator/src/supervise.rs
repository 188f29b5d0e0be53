//! A member heals itself. [`supervise`] runs one consumer session after
//! another: when Kafka fails under a session (broker gone or paused, a
//! failed transaction, the member dropped from the group) it aborts the
//! transaction, forgets everything uncommitted, re-creates the DLQ
//! producer and the consumer, and resumes from the committed offsets,
//! exactly as after a crash. It stops only for what an operator must fix
//! (configuration, authentication, authorisation, another process with
//! the same identity) and says what it is.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;
use tradewind_sink::{Backoff, SinkConfig, Writer};

use crate::commit::{self, Committer, Fault};
use crate::dlq::{DlqLimits, PipelineId};
use crate::health::{Health, State};
use crate::lag::Committed;
use crate::pipeline::Pipeline;
use crate::settings::Settings;
use crate::source::{self, Ended, Member, Session};
use crate::state::StateTopic;
use crate::telemetry as tm;
use crate::Error;

/// Fencing seen lately. A member can be fenced by its own earlier session
/// (a broker paused past the session timeout answers the old session's
/// heartbeat with `FencedInstanceId` after the member has already
/// rejoined), so one fence is recovered from like any Kafka fault. Two
/// live processes with one identity fence each other over and over: the
/// third fence within [`FENCE_WINDOW`] stops this one with an error that
/// says so, and the other goes on.
#[derive(Default)]
struct Fences(VecDeque<Instant>);

const FENCE_WINDOW: Duration = Duration::from_secs(600);
const FENCES_TO_STOP: usize = 3;

impl Fences {
    /// Notes a fence; true when it is one too many.
    fn fenced(&mut self) -> bool {
        let now = Instant::now();
        self.0.retain(|t| now.duration_since(*t) < FENCE_WINDOW);
        self.0.push_back(now);
        self.0.len() >= FENCES_TO_STOP
    }
}

/// Sleeps for `d` unless `token` is cancelled first; false if it was.
fn nap(token: &CancellationToken, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if token.is_cancelled() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(d));
    }
    !token.is_cancelled()
}

/// What every session of one member shares.
pub struct Shared {
    pub settings: Settings,
    pub writer: Writer,
    pub limits: DlqLimits,
    pub rt: tokio::runtime::Handle,
    pub health: Arc<Health>,
}

/// What ended a session, and what the supervisor does about it.
enum Next {
    Stop(Result<(), Error>),
    Retry,
}

/// Runs consumer sessions until stopped, recovering from Kafka faults.
pub fn supervise(m: Shared, token: CancellationToken) -> Result<(), Error> {
    let a = &m.settings.aggregator;
    let instance = a.instance_id();
    let txn_id = a.transactional_id();
    tracing::info!(group = %a.group_id, instance = %instance, transactional_id = %txn_id, "member identity");
    let committed = Arc::new(Committed::default());
    // Between recovery attempts: quick at first, then no faster than every 10 s.
    let mut pace = Backoff::new(&SinkConfig {
        retry_initial: Duration::from_millis(500),
        retry_max: Duration::from_secs(10),
        ..SinkConfig::default()
    });
    let stop_for = |f: Fault| -> Error {
        match f {
            Fault::Operator(m) => Error::Operator(m),
            Fault::Fenced(message) => Error::Fenced {
                message,
                group: a.group_id.clone(),
                instance: instance.clone(),
            },
            Fault::Recover(m) => Error::Kafka(m),
        }
    };
    let mut fences = Fences::default();
    loop {
        m.health.set(State::Rejoining);
        if token.is_cancelled() {
            return Ok(());
        }
        let producer = match commit::transactional_producer(&m.settings.kafka, &txn_id, m.limits) {
            Ok(p) => p,
            Err(Fault::Fenced(f)) if fences.fenced() => return Err(stop_for(Fault::Fenced(f))),
            Err(Fault::Recover(f) | Fault::Fenced(f)) => {
                let d = pace.next_delay();
                tracing::warn!(error = %f, retry_in = ?d, "cannot start the DLQ producer yet");
                m.health.publish();
                if !nap(&token, d) {
                    return Ok(());
                }
                continue;
            }
            Err(f) => return Err(stop_for(f)),
        };
        let started = Instant::now();
        match session(
            &m,
            &instance,
            producer,
            &committed,
            &token,
            &mut fences,
            &stop_for,
        )? {
            Next::Stop(r) => return r,
            Next::Retry => {
                if started.elapsed() > Duration::from_secs(60) {
                    pace.reset(); // a fault after a good run starts the back-off afresh
                }
                if !nap(&token, pace.next_delay()) {
                    return Ok(());
                }
            }
        }
    }
}

/// One consumer session: from joining the group to a stop or a fault.
fn session(
    m: &Shared,
    instance: &str,
    producer: commit::TxnProducer,
    committed: &Arc<Committed>,
    token: &CancellationToken,
    fences: &mut Fences,
    stop_for: &dyn Fn(Fault) -> Error,
) -> Result<Next, Error> {
    let s = &m.settings;
    let committer = Committer::new(
        m.writer.clone(),
        m.rt.clone(),
        producer,
        commit::Dlq {
            topic: s.kafka.dlq_topic(),
            limits: m.limits,
            pipeline: PipelineId {
                group: s.aggregator.group_id.clone(),
                database: s.clickhouse.database.clone(),
            },
        },
        commit::Snapshots {
            topic: StateTopic::new(
                &s.kafka,
                &s.aggregator.group_id,
                s.aggregator.snapshot_chunk_bytes,
            ),
            every: Some(s.aggregator.snapshot_interval).filter(|d| !d.is_zero()),
            max_replay: s.aggregator.snapshot_max_replay,
        },
        committed.clone(),
        m.health.clone(),
    );
    let pipeline = Pipeline::new(&s.core, |st| s.kafka.topic(st))?;
    let topics = pipeline.topic_names();
    let member = Member {
        pipeline,
        committer,
    };
    let session = Session::new(member, m.health.clone(), committed.clone());
    let consumer = source::consumer(s, instance, session).map_err(stop_for)?;
    source::lock(&consumer.context().member)
        .committer
        .state_topic_mut()
        .discover(&consumer);
    let ended = source::run(
        &consumer,
        s.aggregator.stats_interval,
        &topics,
        s.exit_when_idle,
        token,
    );
    Ok(match ended {
        Ok(Ended::Done) => Next::Stop(Ok(())),
        Ok(Ended::SinkDownAtStop(e)) => Next::Stop(Err(Error::SinkDownAtStop(e))),
        Err(Fault::Fenced(f)) if fences.fenced() => {
            consumer.context().discard_on_close();
            Next::Stop(Err(stop_for(Fault::Fenced(f))))
        }
        Err(Fault::Recover(f) | Fault::Fenced(f)) => {
            metrics::counter!(tm::RECOVERIES_TOTAL).increment(1);
            tracing::warn!(error = %f, "Kafka fault; recovering: forgetting uncommitted state and rejoining from the committed offsets");
            m.health.set(State::Rejoining);
            consumer.context().discard_on_close();
            Next::Retry
        }
        Err(f) => {
            consumer.context().discard_on_close();
            Next::Stop(Err(stop_for(f)))
        }
    })
}
