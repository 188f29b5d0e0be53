//! Whole-pipeline tests against a real Kafka broker and a real ClickHouse
//! server (started by `deploy/local/up.sh`; addresses from
//! `TRADEWIND_KAFKA__BROKERS` and `TRADEWIND_CLICKHOUSE__URL`). Each test
//! uses its own topic prefix and database so they can run in parallel.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tradewind_proto::{FxRate, IotReading, LogisticsEvent, Payment, Stream};
use tradewind_sim::{record_checksum, Generator, Scenario, Truth};

mod common;
use common::{brokers, text, tradewind, tradewind_command, unique};

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

#[test]
fn unreachable_broker_fails_clearly_within_15_seconds() {
    let started = Instant::now();
    let out = tradewind_command(&["simulate", "--brokers", "127.0.0.1:1", "--count", "10"])
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

/// The image's dependency layer copies each crate's manifest by name; a
/// crate missing there breaks `docker build`, which only the compose test
/// would notice.
#[test]
fn the_dockerfile_names_every_crate() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dockerfile = std::fs::read_to_string(format!("{root}/deploy/Dockerfile")).unwrap();
    for entry in std::fs::read_dir(format!("{root}/crates")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let short = name.trim_start_matches("tradewind-");
        assert!(
            dockerfile.contains(&format!("crates/{name}")),
            "deploy/Dockerfile does not copy crates/{name}"
        );
        if name != "tradewind-proto" {
            assert!(
                dockerfile.lines().any(|l| l.contains("for c in")
                    && l.split_whitespace()
                        .any(|w| w.trim_end_matches(';') == short)),
                "deploy/Dockerfile's stand-in loop misses {short}"
            );
        }
    }
}
