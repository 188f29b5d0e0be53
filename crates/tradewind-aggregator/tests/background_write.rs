//! The poll loop's commit ([`Committer::step`]) writes a cut's rows in the
//! background while later records are folded, against the real broker and
//! server:
//! - the cut's offsets and dead letters commit only once ClickHouse has
//!   acknowledged its rows, and cover nothing folded after the cut;
//! - a background write that fails hands the whole cut back to the
//!   pipeline (rows, dead letters in order, snapshot records), and the
//!   next commit lands it once, with the snapshot its offsets name.

mod rig;

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use rig::{totals, Rig, MALFORMED};
use tradewind_aggregator::commit::{Committer, Outcome};
use tradewind_aggregator::pipeline::Pipeline;
use tradewind_aggregator::state::Restart;
use tradewind_core::Checkpoint;
use tradewind_proto::Stream;

/// Steps without a new cut until the one under way lands.
fn step_until_landed(
    committer: &mut Committer,
    pipeline: &mut Pipeline,
    reader: &rdkafka::consumer::BaseConsumer,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stepped = committer.step(pipeline, || reader.group_metadata(), false, false);
        match stepped.expect("no Kafka fault") {
            Some(outcome) => return outcome,
            None => {
                assert!(Instant::now() < deadline, "the cut never landed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn highest_processed(rig: &Rig) -> i64 {
    let (_, meta) = rig.committed().expect("an offset was committed");
    Checkpoint::from_metadata(&meta)
        .expect("the metadata is a checkpoint")
        .highest_processed
}

#[test]
fn a_background_write_commits_its_cut_once_acknowledged_and_nothing_folded_after_it() {
    let rig = Rig::new("background_write");
    rig.produce(60, &[(10, MALFORMED.to_vec()), (45, MALFORMED.to_vec())]);
    let reader = rig.reader(Offset::Beginning);
    let mut pipeline = rig.pipeline();
    let mut committer = rig.committer(rig.writer(None)).unwrap();

    rig.feed(&reader, &mut pipeline, 30);
    let started = committer.step(&mut pipeline, || reader.group_metadata(), true, false);
    assert!(
        matches!(started, Ok(None)),
        "the write runs in the background: {started:?}"
    );
    // The loop goes on folding while ClickHouse writes.
    rig.feed(&reader, &mut pipeline, 30);
    let waiting: Vec<i64> = pipeline.dead().iter().map(|d| d.offset).collect();
    assert_eq!(waiting, [45], "the later rejection waits for its own cut");

    let outcome = step_until_landed(&mut committer, &mut pipeline, &reader);
    assert!(matches!(outcome, Outcome::Committed), "{outcome:?}");
    assert_eq!(
        highest_processed(&rig),
        29,
        "the cut's checkpoint, not later"
    );
    let g = rig.group.clone();
    assert_eq!(rig.dlq(), [("malformed".into(), 10, g.clone())]);
    assert_eq!(rig.totals(), totals(30, 29, 1, 0));

    // The rest, as at a stop: the protocol runs to the end.
    let outcome = committer.commit(&mut pipeline, reader.group_metadata(), false, true);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    assert_eq!(highest_processed(&rig), 59);
    assert_eq!(
        rig.dlq(),
        [
            ("malformed".into(), 10, g.clone()),
            ("malformed".into(), 45, g)
        ]
    );
    assert_eq!(rig.totals(), totals(60, 58, 2, 0));
}

#[test]
fn a_failed_background_write_hands_its_cut_back_and_the_next_commit_lands_it_once() {
    let rig = Rig::new("background_write_down");
    rig.produce(40, &[(5, MALFORMED.to_vec()), (30, MALFORMED.to_vec())]);
    let reader = rig.reader(Offset::Beginning);
    let mut pipeline = rig.pipeline();
    // Snapshots at every cut: the failed cut carries one.
    let mut down = rig
        .committer_with(rig.writer(Some("http://127.0.0.1:1")), Some(Duration::ZERO))
        .unwrap();

    rig.feed(&reader, &mut pipeline, 20);
    let started = down.step(&mut pipeline, || reader.group_metadata(), true, false);
    assert!(matches!(started, Ok(None)), "{started:?}");
    // A full batch waits for the write under way.
    let outcome = down.step(&mut pipeline, || reader.group_metadata(), false, true);
    assert!(
        matches!(outcome, Ok(Some(Outcome::SinkDown(_)))),
        "{outcome:?}"
    );
    rig.assert_nothing_landed_in_kafka();
    let waiting: Vec<i64> = pipeline.dead().iter().map(|d| d.offset).collect();
    assert_eq!(waiting, [5], "the cut's dead letter is pending again");
    drop(down);

    // ClickHouse is back. Nothing was folded since the failed cut, so no
    // new snapshot is due: the offsets name the carried one, which must
    // land with them.
    let mut up = rig
        .committer_with(rig.writer(None), Some(Duration::ZERO))
        .unwrap();
    let outcome = up.commit(&mut pipeline, reader.group_metadata(), false, false);
    assert!(matches!(outcome, Ok(Outcome::Committed)), "{outcome:?}");
    let (restart, meta) = rig.committed().expect("committed");
    assert_eq!(restart, 20, "{meta}");
    assert_eq!(Restart::from_metadata(&meta).unwrap().snapshot, Some(19));
    let found = rig.state_topic().read(Stream::Payments, 0).unwrap();
    assert_eq!(found.offset, 19, "the carried snapshot landed");
    assert_eq!(rig.totals(), totals(20, 19, 1, 0));

    // And the background path lands the rest.
    rig.feed(&reader, &mut pipeline, 20);
    let started = up.step(&mut pipeline, || reader.group_metadata(), true, false);
    assert!(matches!(started, Ok(None)), "{started:?}");
    let outcome = step_until_landed(&mut up, &mut pipeline, &reader);
    assert!(matches!(outcome, Outcome::Committed), "{outcome:?}");
    assert_eq!(rig.committed().unwrap().0, 40);
    let g = rig.group.clone();
    assert_eq!(
        rig.dlq(),
        [
            ("malformed".into(), 5, g.clone()),
            ("malformed".into(), 30, g)
        ],
        "each rejection dead-lettered once"
    );
    assert_eq!(rig.totals(), totals(40, 38, 2, 0));
}
