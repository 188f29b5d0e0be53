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

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tradewind_aggregator::commit::{self, Committer, Dlq, Fault, Outcome, Snapshots};
use tradewind_aggregator::dlq::{DlqLimits, PipelineId};
use tradewind_aggregator::health::Health;
use tradewind_aggregator::lag::Committed;
use tradewind_aggregator::pipeline::{Pipeline, Record};
use tradewind_aggregator::state::{Restart, StateTopic};
use tradewind_clickhouse::ClickHouseConfig;
use tradewind_core::{Checkpoint, CoreConfig};
use tradewind_kafka::{KafkaConfig, PartitionsConfig};
use tradewind_proto::{Payment, Stream};
use tradewind_sink::{SinkConfig, Writer};
use tradewind_testkit::{brokers, clickhouse_url, scratch_name};

const MALFORMED: &[u8] = &[0x0F, 1, 2, 3];

/// One test's topics (one partition each), database and consumer group.
struct Rig {
    rt: tokio::runtime::Runtime,
    kafka: KafkaConfig,
    clickhouse: ClickHouseConfig,
    group: String,
    txn_id: String,
}

impl Rig {
    fn new(test: &str) -> Self {
        let name = scratch_name(test);
        let kafka = KafkaConfig {
            brokers: brokers(),
            topic_prefix: format!("{name}."),
            partitions: PartitionsConfig {
                payments: 1,
                iot: 1,
                logistics: 1,
                fx: 1,
                dlq: 1,
                state: 1,
            },
            ..KafkaConfig::default()
        };
        let clickhouse = ClickHouseConfig {
            url: clickhouse_url(),
            database: name.clone(),
            ..ClickHouseConfig::default()
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            tradewind_kafka::admin::ensure_topics(&kafka, &kafka.all_topics())
                .await
                .unwrap();
            tradewind_clickhouse::connect_and_migrate(&clickhouse)
                .await
                .unwrap();
        });
        Self {
            rt,
            kafka,
            clickhouse,
            group: format!("{name}-group"),
            txn_id: format!("{name}-txn"),
        }
    }

    fn topic(&self) -> String {
        self.kafka.topic(Stream::Payments)
    }

    /// Produces payments `0..n` (event times 30 s apart, ending now) with
    /// the given offsets replaced by bad payloads.
    fn produce(&self, n: i64, bad: &[(i64, Vec<u8>)]) {
        let producer: BaseProducer = self.kafka.producer_config().create().unwrap();
        let start = now_ms() - n * 30_000;
        for i in 0..n {
            let payload = bad
                .iter()
                .find(|(at, _)| *at == i)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| payment(i, start + i * 30_000));
            let key = i.to_string();
            producer
                .send(
                    BaseRecord::to(&self.topic())
                        .key(&key)
                        .payload(&payload)
                        .partition(0),
                )
                .unwrap();
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// A member of the test's group reading the payments partition from
    /// `from`; its group metadata is what the committer commits with.
    fn reader(&self, from: Offset) -> BaseConsumer {
        let consumer: BaseConsumer = self
            .kafka
            .consumer_config()
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic(), 0, from).unwrap();
        consumer.assign(&tpl).unwrap();
        consumer
    }

    fn pipeline(&self) -> Pipeline {
        Pipeline::new(&CoreConfig::default(), |s| self.kafka.topic(s)).unwrap()
    }

    /// A writer to the rig's database, or to `url` when given (a server
    /// that is not there).
    fn writer(&self, url: Option<&str>) -> Writer {
        let client = match url {
            None => {
                self.rt
                    .block_on(tradewind_clickhouse::connect(&self.clickhouse))
                    .unwrap()
                    .client
            }
            Some(url) => clickhouse::Client::default()
                .with_url(url)
                .with_validation(false),
        };
        let cfg = SinkConfig {
            write_timeout: Duration::from_secs(10),
            ..SinkConfig::default()
        };
        Writer::new(client, cfg)
    }

    /// A committer writing through `writer`, dead-lettering with this
    /// rig's transactional id (creating it fences any earlier one).
    fn committer(&self, writer: Writer) -> Result<Committer, Fault> {
        self.committer_with(writer, None)
    }

    /// Where the rig's snapshots go.
    fn state_topic(&self) -> StateTopic {
        StateTopic::new(&self.kafka, &self.group, 4096)
    }

    /// A committer that snapshots every `snapshots` (none with `None`).
    fn committer_with(
        &self,
        writer: Writer,
        snapshots: Option<Duration>,
    ) -> Result<Committer, Fault> {
        let limits = DlqLimits::new(1_048_576, 1_048_576);
        let producer = commit::transactional_producer(&self.kafka, &self.txn_id, limits)?;
        Ok(Committer::new(
            writer,
            self.rt.handle().clone(),
            producer,
            Dlq {
                topic: self.kafka.dlq_topic(),
                limits,
                pipeline: PipelineId {
                    group: self.group.clone(),
                    database: self.clickhouse.database.clone(),
                },
            },
            Snapshots {
                topic: self.state_topic(),
                every: snapshots,
                max_replay: 0,
            },
            Arc::new(Committed::default()),
            Arc::new(Health::new(Arc::new(AtomicBool::new(false)))),
        ))
    }

    /// Reads `n` records into `pipeline`, restoring the partition from its
    /// committed snapshot or checkpoint first, as the source does.
    fn feed(&self, consumer: &BaseConsumer, pipeline: &mut Pipeline, n: usize) {
        let mut got = 0;
        while got < n {
            let Some(m) = consumer.poll(Duration::from_secs(10)) else {
                panic!("only {got} of {n} records arrived");
            };
            let m = m.unwrap();
            if pipeline.needs_restore(Stream::Payments, 0) {
                let meta = self.committed().map(|(_, m)| m).unwrap_or_default();
                let restart = Restart::from_metadata(&meta);
                match restart {
                    Some(r) if r.snapshot.is_some() => {
                        let found = self.state_topic().read(Stream::Payments, 0).unwrap();
                        assert_eq!(Some(found.offset), r.snapshot);
                        pipeline
                            .restore_snapshot(Stream::Payments, 0, &r, found)
                            .unwrap();
                    }
                    r => pipeline.restore(Stream::Payments, 0, r.as_ref().map(|r| &r.cp)),
                }
            }
            pipeline.handle(record(&m));
            got += 1;
        }
    }

    /// The group's committed offset and metadata for the payments partition.
    fn committed(&self) -> Option<(i64, String)> {
        let consumer = self.reader(Offset::Beginning);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic(), 0);
        let got = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        let e = got.find_partition(&self.topic(), 0)?;
        match e.offset() {
            Offset::Offset(o) => Some((o, e.metadata().to_string())),
            _ => None,
        }
    }

    /// The DLQ's committed records: (reason, source offset, pipeline.group).
    fn dlq(&self) -> Vec<(String, i64, String)> {
        let consumer: BaseConsumer = self
            .kafka
            .consumer_config()
            .set("group.id", format!("{}-dlq-reader", self.group))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.kafka.dlq_topic(), 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        loop {
            match consumer.poll(Duration::from_secs(10)) {
                Some(Ok(m)) => {
                    let h = |k: &str| header(&m, k).unwrap_or_default();
                    out.push((
                        h("reason"),
                        h("source.offset").parse().unwrap(),
                        h("pipeline.group"),
                    ));
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => panic!("reading the DLQ: {e}"),
                None => panic!("the DLQ did not answer"),
            }
        }
        out.sort_by_key(|r| r.1);
        out
    }

    /// The ledger's totals for the payments topic (FINAL), and the
    /// payments the metric table holds.
    fn totals(&self) -> BTreeMap<&'static str, u64> {
        let topic = self.topic();
        self.rt.block_on(async {
            let ch = tradewind_clickhouse::connect(&self.clickhouse)
                .await
                .unwrap()
                .client;
            let (seen, aggregated, malformed, unknown_enum): (u64, u64, u64, u64) = ch
                .query(
                    "SELECT sum(seen), sum(aggregated), sum(malformed), sum(unknown_enum) \
                     FROM ledger FINAL WHERE topic = ?",
                )
                .bind(&topic)
                .fetch_one()
                .await
                .unwrap();
            let payments: u64 = ch
                .query("SELECT sum(payments) FROM trade_corridors FINAL WHERE topic = ?")
                .bind(&topic)
                .fetch_one()
                .await
                .unwrap();
            BTreeMap::from([
                ("seen", seen),
                ("aggregated", aggregated),
                ("malformed", malformed),
                ("unknown_enum", unknown_enum),
                ("payments", payments),
            ])
        })
    }
}

fn now_ms() -> i64 {
    tradewind_aggregator::wall_now_ms()
}

fn payment(id: i64, event_time: i64) -> Vec<u8> {
    Payment {
        payment_id: 1_000 + id as u64,
        event_time,
        method: 1,
        channel: 1,
        payer_country: 1,
        payee_country: 2,
        currency: 1,
        amount_minor: 100 + id,
        status: 2,
        ..Default::default()
    }
    .encode_to_vec()
}

fn unknown_enum() -> Vec<u8> {
    let mut p = Payment::decode(payment(0, now_ms() - 1_000).as_slice()).unwrap();
    p.method = 42;
    p.encode_to_vec()
}

fn record<'a>(m: &'a BorrowedMessage<'a>) -> Record<'a> {
    Record {
        stream: Stream::Payments,
        partition: m.partition(),
        offset: m.offset(),
        record_time_ms: m.timestamp().to_millis().unwrap(),
        key: m.key(),
        payload: m.payload().unwrap_or_default(),
    }
}

fn header(m: &BorrowedMessage<'_>, key: &str) -> Option<String> {
    let h = m.headers()?;
    h.iter()
        .find(|x| x.key == key)
        .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

fn totals(seen: u64, aggregated: u64, malformed: u64, unknown: u64) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("seen", seen),
        ("aggregated", aggregated),
        ("malformed", malformed),
        ("unknown_enum", unknown),
        ("payments", aggregated),
    ])
}

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
    assert_eq!(
        rig.committed(),
        None,
        "no offset without an acknowledgement"
    );
    assert!(
        rig.dlq().is_empty(),
        "no dead letter without an acknowledgement"
    );
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
