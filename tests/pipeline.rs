//! Whole-pipeline tests against a real Kafka broker and a real ClickHouse
//! server (started by `deploy/local/up.sh`; addresses from
//! `TRADEWIND_KAFKA__BROKERS` and `TRADEWIND_CLICKHOUSE__URL`). Each test
//! uses its own topic prefix and database so they can run in parallel.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tradewind_proto::{FxRate, IotReading, LogisticsEvent, Payment, Stream};
use tradewind_sim::{record_checksum, Generator, Scenario, Truth};

mod common;
use common::{brokers, clickhouse_url, text, tradewind, unique};

const START: &str = "2026-11-11T00:00:00Z";
const START_MS: i64 = 1_794_355_200_000;

/// Reads every record of `topic` from the beginning until `expected` arrive.
fn consume_all(topic: &str, expected: u64) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while (out.len() as u64) < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            out.push((
                m.partition(),
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    // Nothing beyond what was produced shows up.
    assert!(
        consumer.poll(Duration::from_millis(500)).is_none(),
        "{topic} holds more records than produced"
    );
    out
}

#[test]
fn simulated_records_round_trip_through_kafka_exactly() {
    let prefix = format!("{}.", unique("roundtrip"));
    let truth_path = std::env::temp_dir().join(format!("{prefix}truth.json"));
    let count = 30_000u64;
    let out = tradewind(&[
        "simulate",
        "--topic-prefix",
        &prefix,
        "--seed",
        "42",
        "--start",
        START,
        "--count",
        &count.to_string(),
        "--truth",
        truth_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "simulate failed: {}", text(&out));
    let truth: Truth = serde_json::from_slice(&std::fs::read(&truth_path).unwrap()).unwrap();
    assert_eq!(truth.total_records(), count);

    // What the simulator meant to send, regenerated from the same seed.
    let scenario = Scenario::default_scenario();
    let sent: Vec<_> = Generator::new(&scenario, 42, START_MS, false)
        .unwrap()
        .take(count as usize)
        .collect();

    for stream in Stream::ALL {
        let topic = format!("{prefix}{}", stream.as_str());
        let t = &truth.topics[stream.as_str()];
        let got = consume_all(&topic, t.records);
        assert_eq!(got.len() as u64, t.records, "record count of {topic}");
        let checksum = got.iter().fold(0u64, |acc, (_, k, v)| {
            acc.wrapping_add(record_checksum(k, v))
        });
        assert_eq!(checksum, t.checksum, "checksum of {topic}");

        // Per key, the records arrive in the order sent and byte-identical;
        // one key always lands in one partition.
        let mut by_key_got: HashMap<&[u8], Vec<&[u8]>> = HashMap::new();
        let mut partition_of: HashMap<&[u8], i32> = HashMap::new();
        for (p, k, v) in &got {
            by_key_got.entry(k).or_default().push(v);
            assert_eq!(
                *partition_of.entry(k).or_insert(*p),
                *p,
                "key {:?} spans partitions",
                String::from_utf8_lossy(k)
            );
        }
        let mut by_key_sent: HashMap<&[u8], Vec<&[u8]>> = HashMap::new();
        for r in sent.iter().filter(|r| r.stream == stream) {
            by_key_sent.entry(&r.key).or_default().push(&r.payload);
        }
        assert_eq!(
            by_key_got, by_key_sent,
            "records of {topic} differ from what was sent"
        );

        // Every non-poison record decodes as its topic's message type.
        let poison = got
            .iter()
            .filter(|(_, _, v)| match stream {
                Stream::Payments => Payment::decode(v.as_slice()).is_err(),
                Stream::Iot => IotReading::decode(v.as_slice()).is_err(),
                Stream::Logistics => LogisticsEvent::decode(v.as_slice()).is_err(),
                Stream::Fx => FxRate::decode(v.as_slice()).is_err(),
            })
            .count() as u64;
        assert_eq!(poison, t.poison, "undecodable records in {topic}");
    }

    // The stats line and the topics listing agree with the truth file.
    assert!(
        text(&out).contains(&format!("TOTAL records={count}")),
        "{}",
        text(&out)
    );
    let listing = tradewind(&["topics", "--no-create", "--topic-prefix", &prefix]);
    assert!(listing.status.success(), "{}", text(&listing));
    let counts: BTreeMap<String, u64> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect();
    assert_eq!(
        counts[&format!("{prefix}payments")],
        truth.topics["payments"].records
    );
    assert_eq!(counts[&format!("{prefix}dlq")], 0);
    let _ = std::fs::remove_file(truth_path);
}

async fn connect_db(db: &str) -> tradewind_clickhouse::Connection {
    let cfg = tradewind_clickhouse::ClickHouseConfig {
        url: clickhouse_url(),
        database: db.to_string(),
        ..Default::default()
    };
    tradewind_clickhouse::connect(&cfg).await.unwrap()
}

async fn drop_db(conn: &tradewind_clickhouse::Connection, db: &str) {
    conn.client
        .query(&format!("DROP DATABASE {db}"))
        .execute()
        .await
        .unwrap();
}

#[test]
fn concurrent_migrations_apply_each_version_exactly_once() {
    // Aggregators scaled out start together on a fresh database.
    let db = unique("migrate_race");
    let runs: Vec<std::process::Child> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_tradewind"))
                .args(["migrate", "--database", &db])
                .env("TRADEWIND_CLICKHOUSE__URL", clickhouse_url())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = connect_db(&db).await;
        let versions: Vec<u32> = conn
            .client
            .query("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all()
            .await
            .unwrap();
        let want: Vec<u32> = tradewind_clickhouse::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(versions, want, "each migration recorded once");
        let locks: u64 = conn
            .client
            .query("SELECT count() FROM system.tables WHERE database = ? AND name LIKE 'schema_migration_lock%'")
            .bind(&db)
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(locks, 0, "no lock left behind");
        hll_merges_in_views_as_in_rust(&conn.client).await;
        drop_db(&conn, &db).await;
    });
}

#[test]
fn migrations_apply_to_real_clickhouse_and_twice_is_a_no_op() {
    let db = unique("migrate");
    let first = tradewind(&["migrate", "--database", &db]);
    assert!(first.status.success(), "{}", text(&first));
    let all: Vec<u32> = tradewind_clickhouse::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    assert!(
        text(&first).contains(&format!("applied {all:?}")),
        "{}",
        text(&first)
    );
    let second = tradewind(&["migrate", "--database", &db]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains(&format!("applied [], already applied {all:?}")),
        "{}",
        text(&second)
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = connect_db(&db).await;
        let tables: Vec<String> = conn
            .client
            .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
            .bind(&db)
            .fetch_all()
            .await
            .unwrap();
        let want = [
            "fx_rates",
            "iot_health",
            "iot_health_merged",
            "ledger",
            "logistics_sla",
            "logistics_sla_merged",
            "schema_migrations",
            "trade_corridors",
            "trade_corridors_merged",
        ];
        assert_eq!(tables, want.map(String::from).to_vec());
        let applied: u64 = conn
            .client
            .query("SELECT count() FROM schema_migrations")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(applied, tradewind_clickhouse::MIGRATIONS.len() as u64);
        hll_merges_in_views_as_in_rust(&conn.client).await;
        drop_db(&conn, &db).await;
    });
}

#[test]
fn unreachable_broker_fails_clearly_within_15_seconds() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tradewind"))
        .args(["simulate", "--brokers", "127.0.0.1:1", "--count", "10"])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("cannot reach Kafka at 127.0.0.1:1"), "{msg}");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[test]
fn bad_scenario_and_flags_are_rejected_with_clear_messages() {
    let dir = std::env::temp_dir().join(unique("scenario"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("typo.toml");
    let text_ =
        tradewind_sim::scenario::DEFAULT_SCENARIO.replace("[fx]\n", "[fx]\nintervall = \"1m\"\n");
    std::fs::write(&bad, text_).unwrap();
    let out = tradewind(&[
        "simulate",
        "--scenario",
        bad.to_str().unwrap(),
        "--count",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown field `intervall`"),
        "{}",
        text(&out)
    );

    let out = tradewind(&["simulate", "--rate", "-5", "--count", "1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("rate must be a positive number"),
        "{}",
        text(&out)
    );

    let cfg = dir.join("tradewind.toml");
    std::fs::write(&cfg, "[kafka]\nbrokrs = \"x:1\"\n").unwrap();
    let out = tradewind(&["--config", cfg.to_str().unwrap(), "config"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("brokrs"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(dir);
}

/// Three partitions' buyer sketches (sparse, sparse, dense; overlapping
/// ids) merged by `trade_corridors_merged` give the same registers and the
/// same estimate as merging them in Rust.
async fn hll_merges_in_views_as_in_rust(ch: &clickhouse::Client) {
    use tradewind_core::sketch::Hll;
    use tradewind_sink::rows::CorridorRecord;
    let ranges = [0u64..40, 20..300, 100..30_000];
    let mut all = Hll::default();
    let mut insert = ch
        .insert::<CorridorRecord>("trade_corridors")
        .await
        .unwrap();
    for (p, ids) in ranges.into_iter().enumerate() {
        let mut h = Hll::default();
        for id in ids {
            h.add(id);
        }
        all.merge(&h);
        let row = CorridorRecord {
            window_start: 1_794_355_200,
            payer: "CN".into(),
            payee: "DE".into(),
            method: "card".into(),
            channel: "web".into(),
            currency: "EUR".into(),
            topic: "payments".into(),
            partition: p as i32,
            version: 1,
            payments: 1,
            captured: 1,
            failed: 0,
            refunded: 0,
            amount_minor: 1,
            amount_min: 1,
            amount_max: 1,
            amount_hist_keys: vec![0],
            amount_hist_counts: vec![1],
            buyers_sketch: h.to_packed(),
        };
        insert.write(&row).await.unwrap();
    }
    insert.end().await.unwrap();
    let (regs, buyers): (Vec<u32>, u64) = ch
        .query("SELECT buyers_hll, buyers FROM trade_corridors_merged")
        .fetch_one()
        .await
        .unwrap();
    let mut want = all.to_packed();
    want.reverse();
    assert_eq!(regs, want, "merged registers");
    let est = all.estimate();
    assert_eq!(buyers, est.round() as u64, "SQL estimate vs Rust {est}");
    assert!((est - 30_000.0).abs() < 30_000.0 * 0.05, "estimate {est}");
}
