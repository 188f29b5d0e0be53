//! Restoring a newly assigned partition, or refusing it. What flows
//! through: the partition's committed offset and metadata, its log start
//! offset and the snapshot the metadata names go in; the pipeline comes out
//! restored (from the snapshot, or from the checkpoint alone), or the
//! partition is refused.
//!
//! A member refuses a partition when the records a restore needs are gone
//! (below the log start offset), when the snapshot is missing, from another
//! offset or damaged, or when retention deletes records while the member
//! is still reading up to them. It pauses the partition, says why and what
//! an operator can do, and goes on with the others. It never resets to the
//! earliest or latest offset on its own.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::TopicPartitionList;

use crate::commit::Fault;
use crate::source::{Member, Session};
use crate::state::{Restart, StateError};
use crate::telemetry as tm;

/// The committed offset of a partition and its metadata (the restart
/// point); no offset when nothing was ever committed.
fn committed_position(
    consumer: &BaseConsumer<Session>,
    topic: &str,
    partition: i32,
) -> Result<(Option<i64>, String), Fault> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| Fault::from_kafka("reading committed offsets", &e))?;
    Ok(committed
        .find_partition(topic, partition)
        .map(|e| {
            let offset = match e.offset() {
                rdkafka::Offset::Offset(o) => Some(o),
                _ => None,
            };
            (offset, e.metadata().to_string())
        })
        .unwrap_or_default())
}

/// Restores a newly assigned partition from its snapshot or checkpoint,
/// or refuses it when its state cannot be rebuilt exactly.
pub(crate) fn restore(
    consumer: &BaseConsumer<Session>,
    m: &mut Member,
    stream: tradewind_proto::Stream,
    topic: &str,
    partition: i32,
) -> Result<(), Fault> {
    let started = Instant::now();
    let (committed, metadata) = committed_position(consumer, topic, partition)?;
    let restart = Restart::from_metadata(&metadata);
    if let Some(offset) = committed {
        m.pipeline.expect(stream, partition, offset);
        let (low, _) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .map_err(|e| Fault::from_kafka("reading the log start offset", &e))?;
        if offset < low {
            let why = match restart.and_then(|r| r.snapshot) {
                Some(s) => format!(
                    "replay after the snapshot at offset {s} needs offsets {offset}..{low}, but \
                     the log now starts at {low}: retention deleted them before this partition \
                     was restored"
                ),
                None => format!(
                    "its state must be rebuilt from offset {offset} (the oldest record its open \
                     windows, live entities or ledger row depend on), but the log now starts at \
                     {low}: retention deleted the records in between. With \
                     aggregator.snapshot_interval on, a restart needs only the records after \
                     the latest snapshot"
                ),
            };
            refuse(consumer, m, stream, topic, partition, &why);
            return Ok(());
        }
    }
    let Some(snapshot) = restart.and_then(|r| r.snapshot) else {
        m.pipeline
            .restore(stream, partition, restart.as_ref().map(|r| &r.cp));
        metrics::histogram!(tm::RESTORE_SECONDS, "from" => "checkpoint")
            .record(started.elapsed().as_secs_f64());
        return Ok(());
    };
    let restart = restart.expect("has a snapshot");
    let found = match m.committer.state_topic_mut().read(stream, partition) {
        Ok(found) if found.offset == snapshot => found,
        Ok(found) => {
            metrics::counter!(tm::SNAPSHOT_ERRORS_TOTAL, "reason" => "mismatch").increment(1);
            let why = format!(
                "the committed offset needs the snapshot at offset {snapshot}, but the latest \
                 snapshot on {} is at offset {}",
                m.committer.state_topic().topic,
                found.offset
            );
            refuse(consumer, m, stream, topic, partition, &why);
            return Ok(());
        }
        // The broker may be away for a moment: recover and try again.
        Err(e @ StateError::Unreadable { .. }) => {
            metrics::counter!(tm::SNAPSHOT_ERRORS_TOTAL, "reason" => e.label()).increment(1);
            return Err(Fault::Recover(e.to_string()));
        }
        Err(e) => {
            metrics::counter!(tm::SNAPSHOT_ERRORS_TOTAL, "reason" => e.label()).increment(1);
            let why = format!("the committed offset needs the snapshot at offset {snapshot}: {e}");
            refuse(consumer, m, stream, topic, partition, &why);
            return Ok(());
        }
    };
    let bytes = found.bytes;
    if let Err(e) = m
        .pipeline
        .restore_snapshot(stream, partition, &restart, found)
    {
        metrics::counter!(tm::SNAPSHOT_ERRORS_TOTAL, "reason" => "corrupt").increment(1);
        let why = format!("its snapshot at offset {snapshot} does not restore: {e}");
        refuse(consumer, m, stream, topic, partition, &why);
        return Ok(());
    }
    let took = started.elapsed();
    metrics::histogram!(tm::RESTORE_SECONDS, "from" => "snapshot").record(took.as_secs_f64());
    tracing::info!(
        topic,
        partition,
        snapshot,
        highest = restart.cp.highest_processed,
        bytes,
        ms = took.as_millis() as u64,
        "restored partition from its snapshot"
    );
    Ok(())
}

/// A record came from further ahead than the partition's next offset. That
/// is normal for aborted transactions; but when the log now starts past
/// the next offset, retention deleted records before this member read
/// them and librdkafka's offset reset skipped them: refuse the partition
/// rather than go on with a hole in its state.
pub(crate) fn deleted_under_us(
    consumer: &BaseConsumer<Session>,
    m: &mut Member,
    stream: tradewind_proto::Stream,
    topic: &str,
    partition: i32,
    next: i64,
) -> Result<(), Fault> {
    let (low, _) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(|e| Fault::from_kafka("reading the log start offset", &e))?;
    if low > next {
        let why = format!(
            "retention deleted offsets {next}..{low} before this member read them (the log \
             now starts at {low}); what was read before them is committed as usual"
        );
        refuse(consumer, m, stream, topic, partition, &why);
    }
    Ok(())
}

/// Stops processing a partition whose state cannot be rebuilt, and says
/// why and what to do.
fn refuse(
    consumer: &BaseConsumer<Session>,
    m: &mut Member,
    stream: tradewind_proto::Stream,
    topic: &str,
    partition: i32,
    why: &str,
) {
    tracing::error!(
        topic,
        partition,
        "refusing {topic}[{partition}]: {why}. Tradewind does not guess a partition's state, so \
         this member leaves it paused and goes on with the others. To go on: make the records or \
         the snapshot available again, or accept the loss explicitly: stop the group's members \
         and reset this partition's offset (kafka-consumer-groups.sh --group <aggregator.group_id> \
         --reset-offsets --to-earliest --topic {topic}:{partition} --execute); its state then \
         starts afresh from the oldest record kept"
    );
    m.pipeline.refuse(stream, partition);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(e) = consumer.pause(&tpl) {
        tracing::warn!(error = %e, topic, partition, "pausing a refused partition");
    }
    metrics::gauge!(tm::PARTITION_REFUSED, "topic" => topic.to_string(), "partition" => partition.to_string()).set(1.0);
}
