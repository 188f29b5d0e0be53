//! The effectively-once protocol in-process: the pure [`Pipeline`] and the
//! [`Committer`] driven directly against the real broker and server, no
//! binary spawned, so a failure points at `pipeline`, `commit` or `dlq`.
//! The process-level `kill -9` tests (`tests/aggregator/`) prove the
//! whole; these prove each step:
//! - one commit lands rows, dead letters and offsets together;
//! - a write ClickHouse does not acknowledge commits nothing in Kafka and
//!   keeps everything pending for the next attempt;
//! - a committer fenced by a successor commits nothing, and the
//!   successor's replay lands every record once;
//! - a crash after a commit replays from the checkpoint and counts each
//!   record, and dead-letters each rejection, exactly once.

mod rig;

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use rig::{totals, unknown_enum, Rig, MALFORMED};
use tradewind_aggregator::commit::{Fault, Outcome};
use tradewind_aggregator::state::Restart;
use tradewind_clickhouse::ClickHouseConfig;
use tradewind_core::Checkpoint;
use tradewind_proto::Stream;
use tradewind_sink::{SinkConfig, Writer};
use tradewind_testkit::scratch_name;

#[test]
fn one_commit_lands_rows_dead_letters_and_offsets_together() {
    let rig = Rig::new("protocol_commit");
    rig.produce(102, &[(50, MALFORMED.to_vec()), (70, unknown_enum())]);
    let reader = rig.reader(Offset::Beginning);
    let mut pipeline = rig.pipeline();
    rig.feed(&reader, &mut pipeline, 102);
    let pending: Vec<_> = pipeline
        .dead()
        .iter()
        .map(|d| (d.reason, d.offset))
        .collect();
    assert_eq!(pending, [("malformed", 50), ("unknown_enum", 70)]);
    let want = pipeline.offsets();
    assert_eq!(want.len(), 1, "{want:?}");

    let mut committer = rig.committer(rig.writer(None)).unwrap();
    let outcome = committer.commit(&mut pipeline, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");

    assert_eq!(rig.totals(), totals(102, 100, 1, 1));
    let g = rig.group.clone();
    assert_eq!(
        rig.dlq(),
        [
            ("malformed".into(), 50, g.clone()),
            ("unknown_enum".into(), 70, g)
        ]
    );
    let (offset, meta) = rig.committed().expect("an offset was committed");
    assert_eq!(offset, want[0].offset);
    assert_eq!(meta, want[0].metadata);
    let cp = Checkpoint::from_metadata(&meta).expect("the metadata is a checkpoint");
    assert_eq!(cp.highest_processed, 101);
    assert!(
        pipeline.dead().is_empty(),
        "dead letters left with the transaction"
    );
}

#[test]
fn a_write_clickhouse_does_not_acknowledge_commits_nothing_and_stays_pending() {
    let rig = Rig::new("protocol_sink_down");
    rig.produce(51, &[(20, MALFORMED.to_vec())]);
    let reader = rig.reader(Offset::Beginning);
    let mut pipeline = rig.pipeline();
    rig.feed(&reader, &mut pipeline, 51);

    let mut down = rig
        .committer(rig.writer(Some("http://127.0.0.1:1")))
        .unwrap();
    let outcome = down.commit(&mut pipeline, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Ok(Outcome::SinkDown(_))), "{outcome:?}");
    rig.assert_nothing_landed_in_kafka();
    assert_eq!(
        pipeline.dead().len(),
        1,
        "the dead letter waits for the next commit"
    );
    drop(down);

    // ClickHouse is back: the next attempt lands everything once.
    let mut up = rig.committer(rig.writer(None)).unwrap();
    let outcome = up.commit(&mut pipeline, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    assert_eq!(rig.totals(), totals(51, 50, 1, 0));
    assert_eq!(rig.dlq(), [("malformed".into(), 20, rig.group.clone())]);
    assert!(rig.committed().is_some());
}

#[test]
fn a_fenced_committer_commits_nothing_and_the_successor_lands_each_record_once() {
    let rig = Rig::new("protocol_fenced");
    rig.produce(80, &[(10, MALFORMED.to_vec())]);
    let reader = rig.reader(Offset::Beginning);
    let mut old = rig.pipeline();
    rig.feed(&reader, &mut old, 80);
    let mut fenced = rig.committer(rig.writer(None)).unwrap();
    // A successor with the same identity starts: it fences the first.
    let mut successor = rig.committer(rig.writer(None)).unwrap();

    let outcome = fenced.commit(&mut old, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Err(Fault::Fenced(_))), "{outcome:?}");
    assert_eq!(
        rig.committed(),
        None,
        "the fenced member committed no offset"
    );
    assert!(
        rig.dlq().is_empty(),
        "the fenced member's dead letters never show"
    );

    // The successor replays from the (absent) committed offset: the rows
    // the fenced member wrote are written again with the same versions,
    // and ClickHouse's merge counts them once.
    let reader = rig.reader(Offset::Beginning);
    let mut new = rig.pipeline();
    rig.feed(&reader, &mut new, 80);
    let outcome = successor.commit(&mut new, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    assert_eq!(rig.totals(), totals(80, 79, 1, 0));
    assert_eq!(rig.dlq(), [("malformed".into(), 10, rig.group.clone())]);
}

#[test]
fn a_crash_after_a_commit_replays_from_the_checkpoint_once() {
    let rig = Rig::new("protocol_replay");
    rig.produce(300, &[(120, MALFORMED.to_vec()), (250, unknown_enum())]);

    // First life: commit after 150 records, read 100 more, crash.
    let reader = rig.reader(Offset::Beginning);
    let mut first = rig.pipeline();
    let mut committer = rig.committer(rig.writer(None)).unwrap();
    rig.feed(&reader, &mut first, 150);
    let outcome = committer.commit(&mut first, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    rig.feed(&reader, &mut first, 100);
    drop((first, committer, reader));
    assert_eq!(rig.dlq(), [("malformed".into(), 120, rig.group.clone())]);

    // Second life: restore from the checkpoint, replay from its restart
    // offset to the end, commit.
    let (restart, _) = rig.committed().expect("the first life committed");
    assert!(restart <= 150, "restart offset {restart}");
    let reader = rig.reader(Offset::Offset(restart));
    let mut second = rig.pipeline();
    let mut committer = rig.committer(rig.writer(None)).unwrap();
    rig.feed(&reader, &mut second, (300 - restart) as usize);
    let outcome = committer.commit(&mut second, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");

    assert_eq!(rig.totals(), totals(300, 298, 1, 1));
    let g = rig.group.clone();
    assert_eq!(
        rig.dlq(),
        [
            ("malformed".into(), 120, g.clone()),
            ("unknown_enum".into(), 250, g)
        ],
        "each rejection dead-lettered once, replay or not"
    );
}

#[test]
fn a_schema_clickhouse_refuses_stops_the_member_and_commits_nothing() {
    let rig = Rig::new("protocol_fatal");
    rig.produce(10, &[]);
    let reader = rig.reader(Offset::Beginning);
    let mut pipeline = rig.pipeline();
    rig.feed(&reader, &mut pipeline, 10);
    // A database without the tables: no retry can fix that.
    let empty = ClickHouseConfig {
        database: scratch_name("protocol_fatal_empty"),
        ..rig.clickhouse.clone()
    };
    let client = rig.rt.block_on(async {
        let conn = tradewind_clickhouse::connect(&empty).await.unwrap();
        conn.client
            .query(&format!("CREATE DATABASE IF NOT EXISTS {}", empty.database))
            .execute()
            .await
            .unwrap();
        conn.client
    });
    let mut committer = rig
        .committer(Writer::new(client, SinkConfig::default()))
        .unwrap();
    let outcome = committer.commit(&mut pipeline, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Err(Fault::Operator(_))), "{outcome:?}");
    assert_eq!(rig.committed(), None);
    rig.rt.block_on(async {
        let conn = tradewind_clickhouse::connect(&rig.clickhouse)
            .await
            .unwrap();
        conn.client
            .query(&format!("DROP DATABASE IF EXISTS {}", empty.database))
            .execute()
            .await
            .unwrap();
    });
}

#[test]
fn a_snapshot_lands_with_its_offsets_and_a_successor_replays_only_what_follows() {
    let rig = Rig::new("protocol_snapshot");
    rig.produce(300, &[(120, MALFORMED.to_vec()), (250, unknown_enum())]);

    // First life: snapshot and commit after 150 records, read 100 more, crash.
    let reader = rig.reader(Offset::Beginning);
    let mut first = rig.pipeline();
    let mut committer = rig
        .committer_with(rig.writer(None), Some(Duration::from_secs(3600)))
        .unwrap();
    rig.feed(&reader, &mut first, 150);
    let outcome = committer.commit(&mut first, reader.group_metadata(), false, true);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    rig.feed(&reader, &mut first, 100);
    drop((first, committer, reader));

    // The committed offset is the one after the snapshot, and names it.
    let (restart, metadata) = rig.committed().expect("the first life committed");
    assert_eq!(restart, 150, "{metadata}");
    let r = Restart::from_metadata(&metadata).unwrap();
    assert_eq!(r.snapshot, Some(149));
    assert!(
        r.cp.restart_offset < 150,
        "without the snapshot the replay would start at {}",
        r.cp.restart_offset
    );
    let found = rig.state_topic().read(Stream::Payments, 0).unwrap();
    assert_eq!(found.offset, 149);

    // Second life: restore the snapshot, replay only what follows it.
    let reader = rig.reader(Offset::Offset(restart));
    let mut second = rig.pipeline();
    let mut committer = rig
        .committer_with(rig.writer(None), Some(Duration::from_secs(3600)))
        .unwrap();
    rig.feed(&reader, &mut second, 150);
    let outcome = committer.commit(&mut second, reader.group_metadata(), false, true);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    assert_eq!(rig.committed().unwrap().0, 300);

    assert_eq!(rig.totals(), totals(300, 298, 1, 1));
    let g = rig.group.clone();
    assert_eq!(
        rig.dlq(),
        [
            ("malformed".into(), 120, g.clone()),
            ("unknown_enum".into(), 250, g)
        ],
        "each rejection dead-lettered once"
    );
}

/// A commit whose transaction holds more records than the producer's
/// local queue takes at once (a large snapshot can pass
/// `queue.buffering.max.kbytes`) waits for room instead of failing, and
/// lands whole.
#[test]
fn a_transaction_larger_than_the_producer_queue_waits_for_room_and_lands() {
    let mut rig = Rig::new("protocol_queue_full");
    rig.produce(300, &[(40, MALFORMED.to_vec()), (80, unknown_enum())]);
    // One record at a time in the DLQ producer's queue: the second dead
    // letter and every snapshot chunk must wait for the one before.
    rig.kafka
        .producer
        .insert("queue.buffering.max.messages".into(), "1".into());
    let reader = rig.reader(Offset::Beginning);
    let mut pipeline = rig.pipeline();
    let mut committer = rig
        .committer_with(rig.writer(None), Some(Duration::from_secs(3600)))
        .unwrap();
    rig.feed(&reader, &mut pipeline, 300);
    let outcome = committer.commit(&mut pipeline, reader.group_metadata(), false, true);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    let (restart, metadata) = rig.committed().expect("committed");
    assert_eq!(restart, 300, "{metadata}");
    assert!(Restart::from_metadata(&metadata)
        .unwrap()
        .snapshot
        .is_some());
    assert_eq!(rig.totals(), totals(300, 298, 1, 1));
    assert_eq!(rig.dlq().len(), 2, "both dead letters landed");
}
