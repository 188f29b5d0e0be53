//! The in-process protocol rig shared by the protocol tests: one test's
//! topics (one partition each), database, consumer group and
//! transactional id on the real broker and server, and the readers that
//! check what landed (committed offset, DLQ, ClickHouse totals).
#![allow(dead_code)] // each test crate uses its own part of the rig

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tradewind_aggregator::commit::{self, Committer, Dlq, Fault, Snapshots};
use tradewind_aggregator::dlq::{DlqLimits, PipelineId};
use tradewind_aggregator::health::Health;
use tradewind_aggregator::lag::Committed;
use tradewind_aggregator::pipeline::{Pipeline, Record};
use tradewind_aggregator::state::{Restart, StateTopic};
use tradewind_clickhouse::ClickHouseConfig;
use tradewind_core::CoreConfig;
use tradewind_kafka::{KafkaConfig, PartitionsConfig};
use tradewind_proto::{Payment, Stream};
use tradewind_sink::{SinkConfig, Writer};
use tradewind_testkit::{brokers, clickhouse_url, scratch_name};

pub const MALFORMED: &[u8] = &[0x0F, 1, 2, 3];

/// One test's topics (one partition each), database and consumer group.
pub struct Rig {
    pub rt: tokio::runtime::Runtime,
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub group: String,
    pub txn_id: String,
}

impl Rig {
    pub fn new(test: &str) -> Self {
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

    pub fn topic(&self) -> String {
        self.kafka.topic(Stream::Payments)
    }

    /// Produces payments `0..n` (event times 30 s apart, ending now) with
    /// the given offsets replaced by bad payloads.
    pub fn produce(&self, n: i64, bad: &[(i64, Vec<u8>)]) {
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
    pub fn reader(&self, from: Offset) -> BaseConsumer {
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

    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(&CoreConfig::default(), |s| self.kafka.topic(s)).unwrap()
    }

    /// A writer to the rig's database, or to `url` when given (a server
    /// that is not there).
    pub fn writer(&self, url: Option<&str>) -> Writer {
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
    pub fn committer(&self, writer: Writer) -> Result<Committer, Fault> {
        self.committer_with(writer, None)
    }

    /// Where the rig's snapshots go.
    pub fn state_topic(&self) -> StateTopic {
        StateTopic::new(&self.kafka, &self.group, 4096)
    }

    /// A committer that snapshots every `snapshots` (none with `None`).
    pub fn committer_with(
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
    pub fn feed(&self, consumer: &BaseConsumer, pipeline: &mut Pipeline, n: usize) {
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

    /// Neither an offset nor a dead letter: what a commit whose rows
    /// ClickHouse did not acknowledge leaves in Kafka.
    pub fn assert_nothing_landed_in_kafka(&self) {
        assert_eq!(
            self.committed(),
            None,
            "no offset without an acknowledgement"
        );
        assert!(
            self.dlq().is_empty(),
            "no dead letter without an acknowledgement"
        );
    }

    /// The group's committed offset and metadata for the payments partition.
    pub fn committed(&self) -> Option<(i64, String)> {
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
    pub fn dlq(&self) -> Vec<(String, i64, String)> {
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
    pub fn totals(&self) -> BTreeMap<&'static str, u64> {
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

pub fn now_ms() -> i64 {
    tradewind_aggregator::wall_now_ms()
}

pub fn payment(id: i64, event_time: i64) -> Vec<u8> {
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

pub fn unknown_enum() -> Vec<u8> {
    let mut p = Payment::decode(payment(0, now_ms() - 1_000).as_slice()).unwrap();
    p.method = 42;
    p.encode_to_vec()
}

pub fn record<'a>(m: &'a BorrowedMessage<'a>) -> Record<'a> {
    Record {
        stream: Stream::Payments,
        partition: m.partition(),
        offset: m.offset(),
        record_time_ms: m.timestamp().to_millis().unwrap(),
        key: m.key(),
        payload: m.payload().unwrap_or_default(),
    }
}

pub fn header(m: &BorrowedMessage<'_>, key: &str) -> Option<String> {
    let h = m.headers()?;
    h.iter()
        .find(|x| x.key == key)
        .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

pub fn totals(
    seen: u64,
    aggregated: u64,
    malformed: u64,
    unknown: u64,
) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("seen", seen),
        ("aggregated", aggregated),
        ("malformed", malformed),
        ("unknown_enum", unknown),
        ("payments", aggregated),
    ])
}
