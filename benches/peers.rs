//! Tradewind beside ClickHouse's own Kafka engine, on the same payments:
//! 1. `tradewind simulate` pre-produces payments only (no shipments, a
//!    token IoT fleet, no duplicates, poison, late or future records, so
//!    both sides must count every record), N records (default 1,000,000);
//! 2. the payments are copied, record by record with the same partition
//!    and key, to `<prefix>payments_json` as JSONEachRow: ClickHouse 18.16
//!    has no Protobuf input format;
//! 3. baseline: a raw rdkafka consumer reads the protobuf topic (with
//!    Tradewind's tuned consumer defaults) and does nothing;
//! 4. one `tradewind aggregate` process, timed from start until the ledger
//!    has seen every record, with its CPU time and ClickHouse's;
//! 5. the peer: a Kafka engine table, a materialized view and an
//!    AggregatingMergeTree computing the same per-minute payments
//!    aggregation (count, captured, failed, refunded, sum, min, max per
//!    payer, payee, method, channel, currency), with 1 and then 4
//!    consumers, timed until it holds every record, with ClickHouse's CPU;
//! 6. a Kafka Streams application (`benches/peers/kstreams`, exactly-once
//!    v2, built with Maven when out of date) computing the same aggregation
//!    from the protobuf topic, timed until its committed output holds every
//!    record, with the JVM's CPU and the shared broker's;
//! 7. every result compared with Tradewind's window by window and key by
//!    key;
//! 8. latency at a steady load (half the slower of Tradewind and Kafka
//!    Streams): the Streams app keeps running while `simulate --rate` feeds
//!    it, and one `tradewind aggregate` on topics of its own gets the same.
//!
//!   bash deploy/local/up.sh && cargo bench --bench peers
//!   PEERS_BENCH_RECORDS=300000 cargo bench --bench peers
//!   PEERS_BENCH_STREAMS_THREADS=2, PEERS_BENCH_LATENCY_SECS=30 by default
//! It reports numbers; it never fails on speed. It fails if the sides
//! disagree.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tradewind_kafka::{admin, KafkaConfig};
use tradewind_proto::{
    label_of, Country, Currency, Payment, PaymentChannel, PaymentMethod, Stream,
};

#[path = "common/mod.rs"]
mod common;
use common::{brokers, run_ok, EXE};
#[path = "peers/streams.rs"]
mod streams;

fn ch_url() -> String {
    std::env::var("TRADEWIND_CLICKHOUSE__URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// Runs SQL over ClickHouse's HTTP interface; returns the body.
fn sql(query: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail-with-body",
            &format!("{}/", ch_url()),
            "--data-binary",
            query,
        ])
        .output()
        .expect("curl runs");
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{query}\n{body}");
    body
}

fn clickhouse_pid() -> u32 {
    let root = env!("CARGO_MANIFEST_DIR");
    let stack = std::env::var("TRADEWIND_STACK_DIR").unwrap_or_else(|_| format!("{root}/.stack"));
    std::fs::read_to_string(format!("{stack}/clickhouse/pid"))
        .expect("the local stack's ClickHouse pid file")
        .trim()
        .parse()
        .unwrap()
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat; `after` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

fn kafka(prefix: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers(),
        topic_prefix: prefix.into(),
        ..KafkaConfig::default()
    }
}

fn assign_all(consumer: &BaseConsumer, k: &KafkaConfig, topic: &str) -> i64 {
    let mut tpl = TopicPartitionList::new();
    let mut n = 0;
    for p in admin::topic_offsets(k, topic).expect("offsets") {
        tpl.add_partition_offset(topic, p.partition, Offset::Beginning)
            .unwrap();
        n += p.high - p.low;
    }
    consumer.assign(&tpl).expect("assign");
    n
}

/// Copies the payments as JSONEachRow, same partition and key; returns
/// how many.
fn copy_to_json(k: &KafkaConfig, from: &str, to: &str) -> i64 {
    let consumer: BaseConsumer = k
        .consumer_config()
        .set("group.id", format!("{to}-copier"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let total = assign_all(&consumer, k, from);
    let producer: BaseProducer = k.producer_config().create().unwrap();
    let mut n = 0;
    while n < total {
        let Some(m) = consumer.poll(Duration::from_secs(5)) else {
            continue;
        };
        let m = m.unwrap();
        let p = Payment::decode(m.payload().unwrap_or_default()).expect("a payment");
        let json = format!(
            "{{\"event_time\":{},\"payer\":{},\"payee\":{},\"method\":{},\"channel\":{},\"currency\":{},\"amount_minor\":{},\"status\":{}}}",
            p.event_time, p.payer_country, p.payee_country, p.method, p.channel, p.currency, p.amount_minor, p.status
        );
        let mut rec = BaseRecord::<[u8], str>::to(to)
            .payload(&json)
            .partition(m.partition());
        if let Some(key) = m.key() {
            rec = rec.key(key);
        }
        while let Err((e, r)) = producer.send(rec) {
            assert!(
                matches!(
                    e.rdkafka_error_code(),
                    Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                ),
                "{e}"
            );
            producer.poll(Duration::from_millis(50));
            rec = r;
        }
        producer.poll(Duration::ZERO);
        n += 1;
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    n
}

fn raw_consume(k: &KafkaConfig, topic: &str) -> f64 {
    let consumer: BaseConsumer = k
        .consumer_config()
        .set("group.id", format!("{topic}-raw"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let total = assign_all(&consumer, k, topic);
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m.unwrap();
            n += 1;
        }
    }
    started.elapsed().as_secs_f64()
}

/// Commits offset 0 for every partition of `topic` in `group`: the 18.16
/// Kafka engine starts a new group at the end of the topic.
fn commit_start(k: &KafkaConfig, topic: &str, group: &str) {
    let consumer: BaseConsumer = k
        .consumer_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in admin::topic_offsets(k, topic).expect("offsets") {
        tpl.add_partition_offset(topic, p.partition, Offset::Offset(p.low))
            .unwrap();
    }
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("committing the start offsets");
}

/// The per-minute aggregate as a string row per window and key, sorted:
/// `window payer payee method channel currency count captured failed
/// refunded sum min max`.
type Cells = BTreeMap<String, String>;

fn parse_cells(tsv: &str) -> Cells {
    tsv.lines()
        .map(|l| {
            let (key, rest) = l.split_at(l.match_indices('\t').nth(5).map_or(l.len(), |(i, _)| i));
            (key.to_string(), rest.trim_start().to_string())
        })
        .collect()
}

fn peer(k: &KafkaConfig, db: &str, topic: &str, consumers: u32, total: i64) -> (f64, f64) {
    let group = format!("{db}-peer{consumers}");
    commit_start(k, topic, &group);
    sql(&format!("DROP TABLE IF EXISTS {db}.mv{consumers}"));
    sql(&format!("DROP TABLE IF EXISTS {db}.q{consumers}"));
    sql(&format!("DROP TABLE IF EXISTS {db}.agg{consumers}"));
    sql(&format!(
        "CREATE TABLE {db}.q{consumers} (event_time Int64, payer UInt8, payee UInt8, method UInt8, \
         channel UInt8, currency UInt8, amount_minor Int64, status UInt8) ENGINE = Kafka SETTINGS \
         kafka_broker_list = '{}', kafka_topic_list = '{topic}', kafka_group_name = '{group}', \
         kafka_format = 'JSONEachRow', kafka_row_delimiter = '\\n', kafka_num_consumers = {consumers}, \
         kafka_max_block_size = 262144",
        brokers()
    ));
    sql(&format!(
        "CREATE TABLE {db}.agg{consumers} (window_start Int64, payer UInt8, payee UInt8, method UInt8, \
         channel UInt8, currency UInt8, n AggregateFunction(count), captured AggregateFunction(sum, UInt64), \
         failed AggregateFunction(sum, UInt64), refunded AggregateFunction(sum, UInt64), \
         amount AggregateFunction(sum, Int64), lo AggregateFunction(min, Int64), hi AggregateFunction(max, Int64)) \
         ENGINE = AggregatingMergeTree() ORDER BY (window_start, payer, payee, method, channel, currency)"
    ));
    let pid = clickhouse_pid();
    let cpu0 = cpu_secs(pid);
    let started = Instant::now();
    sql(&format!(
        "CREATE MATERIALIZED VIEW {db}.mv{consumers} TO {db}.agg{consumers} AS SELECT \
         intDiv(event_time, 60000) * 60000 AS window_start, payer, payee, method, channel, currency, \
         countState() AS n, sumState(toUInt64(status = 2)) AS captured, sumState(toUInt64(status = 3)) AS failed, \
         sumState(toUInt64(status = 4)) AS refunded, sumState(amount_minor) AS amount, \
         minState(amount_minor) AS lo, maxState(amount_minor) AS hi \
         FROM {db}.q{consumers} GROUP BY window_start, payer, payee, method, channel, currency"
    ));
    loop {
        let got: i64 = sql(&format!("SELECT countMerge(n) FROM {db}.agg{consumers}"))
            .trim()
            .parse()
            .unwrap_or(0);
        if got >= total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the peer holds {got} of {total}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    sql(&format!("DROP TABLE {db}.mv{consumers}"));
    sql(&format!("DROP TABLE {db}.q{consumers}"));
    (secs, cpu)
}

fn peer_cells(db: &str, consumers: u32) -> Cells {
    parse_cells(&sql(&format!(
        "SELECT window_start, payer, payee, method, channel, currency, countMerge(n), sumMerge(captured), \
         sumMerge(failed), sumMerge(refunded), sumMerge(amount), minMerge(lo), maxMerge(hi) \
         FROM {db}.agg{consumers} GROUP BY window_start, payer, payee, method, channel, currency \
         ORDER BY window_start, payer, payee, method, channel, currency FORMAT TabSeparated"
    )))
}

/// Tradewind's rows in the peer's terms: enum numbers, window in ms.
/// Cells whose values differ, plus cells only the peer has.
fn differing(ours: &Cells, theirs: &Cells) -> usize {
    ours.iter()
        .filter(|(k, v)| theirs.get(*k) != Some(*v))
        .count()
        + theirs.keys().filter(|k| !ours.contains_key(*k)).count()
}

fn tradewind_cells(db: &str) -> Cells {
    let labels =
        |f: fn(i32) -> String| -> BTreeMap<String, i32> { (1..64).map(|i| (f(i), i)).collect() };
    let (country, method, channel, currency) = (
        labels(label_of::<Country>),
        labels(label_of::<PaymentMethod>),
        labels(label_of::<PaymentChannel>),
        labels(label_of::<Currency>),
    );
    let tsv = sql(&format!(
        "SELECT toUInt32(window_start) * 1000, payer, payee, method, channel, currency, sum(payments), \
         sum(captured), sum(failed), sum(refunded), sum(amount_minor), min(amount_min), max(amount_max) \
         FROM {db}.trade_corridors FINAL GROUP BY window_start, payer, payee, method, channel, currency \
         FORMAT TabSeparated"
    ));
    tsv.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let key = format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                f[0], country[f[1]], country[f[2]], method[f[3]], channel[f[4]], currency[f[5]]
            );
            (key, f[6..].join("\t"))
        })
        .collect()
}

/// The bench's scenario: payments only, nothing a side may reject or
/// count differently.
const SCENARIO: [&str; 12] = [
    "--set",
    "mix.shipments=0",
    "--set",
    "iot.fleet_scale=0.001",
    "--set",
    "disorder.duplicate_rate=0",
    "--set",
    "disorder.poison_rate=0",
    "--set",
    "disorder.late_rate=0",
    "--set",
    "disorder.clock_ahead_device_rate=0",
];

/// `simulate` at a steady `rate` records/s for `secs` into `prefix`.
fn steady(prefix: &str, rate: u64, secs: u64) -> std::process::Child {
    Command::new(EXE)
        .args(["--topic-prefix", prefix, "simulate", "--start", "now-6d"])
        .args([
            "--rate",
            &rate.to_string(),
            "--duration",
            &format!("{secs}s"),
        ])
        .args(SCENARIO)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("peers: bench");
        return;
    }
    let records: u64 = env_or("PEERS_BENCH_RECORDS", 1_000_000);
    let threads: u32 = env_or("PEERS_BENCH_STREAMS_THREADS", 2);
    let latency_secs: u64 = env_or("PEERS_BENCH_LATENCY_SECS", 30);
    streams::jar();
    let name = format!("bench_peers_{}", std::process::id());
    let prefix = format!("{name}.");
    let k = kafka(&prefix);
    let payments = k.topic(Stream::Payments);
    let json = format!("{prefix}payments_json");

    let days_back = ((records as f64 * 0.4 / 86_400.0).ceil() as u64).max(2);
    println!("pre-producing {records} records (payments only) into {prefix}*");
    let out = Command::new(EXE)
        .args([
            "--topic-prefix",
            &prefix,
            "simulate",
            "--count",
            &records.to_string(),
        ])
        .args(["--start", &format!("now-{days_back}d")])
        .args(SCENARIO)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(admin::ensure_topics(
        &k,
        &[(json.clone(), k.partitions.payments)],
    ))
    .unwrap();
    let total = copy_to_json(&k, &payments, &json);
    println!("{total} payments, copied to {json} as JSONEachRow");

    let raw = raw_consume(&k, &payments);

    // Tradewind: one process, until the ledger has seen every record. Its
    // schema is created first, outside the timing, as the peer's tables are.
    let db = name.clone();
    run_ok({
        let mut c = Command::new(EXE);
        c.args(["--database", &db, "migrate"]);
        c
    });
    let all: i64 = Stream::ALL
        .iter()
        .flat_map(|s| admin::topic_offsets(&k, &k.topic(*s)).unwrap())
        .map(|p| p.high - p.low)
        .sum();
    let ch_pid = clickhouse_pid();
    let ch0 = cpu_secs(ch_pid);
    let broker = streams::kafka_pid();
    let broker0 = broker.map_or(0.0, streams::cpu_tree_secs);
    let started = Instant::now();
    let mut agg = Command::new(EXE)
        .args(["--topic-prefix", &prefix, "--database", &db, "aggregate"])
        .env("TRADEWIND_AGGREGATOR__GROUP_ID", format!("{db}-tw"))
        .env("TRADEWIND_AGGREGATOR__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut tw_cpu = 0.0;
    loop {
        tw_cpu = f64::max(tw_cpu, cpu_secs(agg.id()));
        let seen: i64 = Command::new("curl")
            .args([
                "-s",
                &format!("{}/?database={db}", ch_url()),
                "--data-binary",
                "SELECT sum(seen) FROM ledger FINAL",
            ])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(0);
        if seen >= all {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "Tradewind saw {seen} of {all}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let tw_secs = started.elapsed().as_secs_f64();
    let tw_ch_cpu = cpu_secs(ch_pid) - ch0;
    let tw_broker_cpu = broker.map_or(0.0, streams::cpu_tree_secs) - broker0;
    let _ = Command::new("kill")
        .args(["-TERM", &agg.id().to_string()])
        .status();
    let _ = agg.wait();

    let (p1_secs, p1_cpu) = peer(&k, &db, &json, 1, total);
    let (p4_secs, p4_cpu) = peer(&k, &db, &json, 4, total);

    let ours = tradewind_cells(&db);
    for consumers in [1, 4] {
        let differ = differing(&ours, &peer_cells(&db, consumers));
        assert_eq!(
            differ,
            0,
            "{differ} of {} cells differ from the peer with {consumers} consumer(s)",
            ours.len()
        );
    }
    println!(
        "results equal: {} (window, key) cells, on both ClickHouse peer runs",
        ours.len()
    );

    // Kafka Streams: until its committed output counts every record; it
    // keeps running for the latency run.
    let mut ks = streams::Peer::start(&k, &payments, threads);
    let ks_run = ks.catch_up(total);
    let differ = differing(&ours, &ks.cells());
    assert_eq!(
        differ,
        0,
        "{differ} of {} cells differ from the Kafka Streams peer",
        ours.len()
    );
    println!(
        "results equal: {} (window, key) cells, Kafka Streams peer",
        ours.len()
    );

    let rate = |secs: f64| total as f64 / secs;
    let load = (rate(tw_secs).min(rate(ks_run.secs)) / 2.0).round() as u64;
    println!("latency: `simulate --rate {load}` for {latency_secs} s");
    let ks_lat = ks.latency(load, latency_secs, |r, s| steady(&prefix, r, s));
    drop(ks);
    let tw_lat =
        streams::tradewind_latency(EXE, &format!("{name}_lat."), load, latency_secs, |r, s| {
            steady(&format!("{name}_lat."), r, s)
        });
    println!(
        "\n{:<52} {:>10} {:>12} {:>14}",
        "what", "seconds", "payments/s", "per CPU-second"
    );
    println!(
        "{:<52} {:>10.2} {:>12.0} {:>14}",
        "raw rdkafka consume (protobuf topic)",
        raw,
        rate(raw),
        "-"
    );
    println!(
        "{:<52} {:>10.2} {:>12.0} {:>14.0}",
        "tradewind aggregate, 1 process (+ ClickHouse CPU)",
        tw_secs,
        rate(tw_secs),
        total as f64 / (tw_cpu + tw_ch_cpu)
    );
    println!(
        "{:<52} {:>10.2} {:>12.0} {:>14.0}",
        "ClickHouse Kafka engine + view, 1 consumer (JSON)",
        p1_secs,
        rate(p1_secs),
        total as f64 / p1_cpu
    );
    println!(
        "{:<52} {:>10.2} {:>12.0} {:>14.0}",
        "ClickHouse Kafka engine + view, 4 consumers (JSON)",
        p4_secs,
        rate(p4_secs),
        total as f64 / p4_cpu
    );
    println!(
        "{:<52} {:>10.2} {:>12.0} {:>14.0}",
        format!("Kafka Streams, exactly-once v2, {threads} thread(s)"),
        ks_run.secs,
        rate(ks_run.secs),
        total as f64 / ks_run.cpu
    );
    let lat = |l: &Option<streams::Latency>| {
        l.as_ref().map_or("no latency line".to_string(), |l| {
            format!(
                "p50 {} ms, p99 {} ms, max {} ms ({} records, {:.0}/s)",
                l.p50,
                l.p99,
                l.max,
                l.records,
                l.records as f64 / latency_secs as f64
            )
        })
    };
    println!(
        "\nlatency with `simulate --rate {load}` for {latency_secs} s, from Kafka record time:\n  \
         tradewind aggregate (to ClickHouse ack): {}\n  \
         Kafka Streams (to the bench reading the committed update): {}",
        lat(&tw_lat),
        lat(&Some(ks_lat))
    );
    println!(
        "\nKafka Streams: Tradewind / Streams = {:.2}x; CPU: JVM {:.1} s, broker {:.1} s \
         (Tradewind's run: broker {tw_broker_cpu:.1} s); payments per CPU-second with the broker: \
         Tradewind {:.0}, Streams {:.0}",
        ks_run.secs / tw_secs,
        ks_run.cpu,
        ks_run.broker_cpu,
        total as f64 / (tw_cpu + tw_ch_cpu + tw_broker_cpu),
        total as f64 / (ks_run.cpu + ks_run.broker_cpu)
    );
    println!(
        "ratios: Tradewind / peer(1) = {:.2}x, Tradewind / peer(4) = {:.2}x, Tradewind / raw = {:.0}%; \
         CPU: Tradewind {tw_cpu:.1} s + its ClickHouse {tw_ch_cpu:.1} s, peer(1) {p1_cpu:.1} s, peer(4) {p4_cpu:.1} s",
        p1_secs / tw_secs,
        p4_secs / tw_secs,
        100.0 * raw / tw_secs
    );
}
