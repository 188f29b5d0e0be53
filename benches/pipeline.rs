//! Whole-pipeline figures against the local broker and server:
//! 1. pre-produce the default scenario (5,000,000 records by default);
//! 2. baseline: a raw rdkafka consumer reads the same topics and does
//!    nothing, with Tradewind's tuned consumer defaults
//!    (`fetch.queue.backoff.ms=10` among them): librdkafka's own default of
//!    1,000 ms idles each partition's fetcher between refills, which made
//!    the old baseline several times slower than the machine can read;
//! 3. `tradewind aggregate`, 1 and then 2 processes, timed from start until
//!    `tradewind reconcile` says OK;
//! 4. latency at a steady 50% of the 1-process rate: Kafka record time to
//!    ClickHouse acknowledgement, p50/p99, as the aggregator reports it.
//!
//!   bash deploy/local/up.sh && cargo bench --bench pipeline
//!   PIPELINE_BENCH_RECORDS=1000000 cargo bench --bench pipeline
//! It reports numbers; it never fails on speed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tradewind_kafka::{admin, KafkaConfig};

#[path = "common/mod.rs"]
mod common;
use common::{brokers, records_in, run_ok, tw};

/// Reads every record of the four stream topics from the beginning, with
/// the consumer settings `tradewind aggregate` uses.
fn raw_consume(prefix: &str, expected: i64) -> f64 {
    let k = KafkaConfig {
        brokers: brokers(),
        topic_prefix: prefix.into(),
        ..KafkaConfig::default()
    };
    let consumer: BaseConsumer = k
        .consumer_config()
        .set("group.id", format!("{prefix}raw"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for topic in k.stream_topics() {
        for p in admin::topic_offsets(&k, &topic).expect("offsets") {
            tpl.add_partition_offset(&topic, p.partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).expect("assign");
    let started = Instant::now();
    let mut n = 0i64;
    while n < expected {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m.expect("record");
            n += 1;
        }
    }
    started.elapsed().as_secs_f64()
}

fn fx_records(prefix: &str) -> i64 {
    let k = KafkaConfig {
        brokers: brokers(),
        topic_prefix: prefix.into(),
        ..KafkaConfig::default()
    };
    admin::topic_offsets(&k, &k.topic(tradewind_proto::Stream::Fx))
        .expect("offsets")
        .iter()
        .map(|p| p.high - p.low)
        .sum()
}

/// `sum(seen)` of the ledger, over ClickHouse's HTTP interface.
fn ledger_seen(db: &str) -> i64 {
    use std::io::{Read, Write};
    let url = std::env::var("TRADEWIND_CLICKHOUSE__URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let sql = "SELECT sum(seen) FROM ledger FINAL";
    let Ok(mut s) = std::net::TcpStream::connect(&host) else {
        return 0;
    };
    let req = format!(
        "POST /?database={db} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.rsplit("\r\n\r\n")
        .next()
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or(0)
}

fn terminate(children: &mut [Child]) {
    for c in children.iter() {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

/// Starts `members` aggregators and times them until reconcile says OK.
fn aggregate(prefix: &str, members: usize) -> f64 {
    let db = format!("{}_{members}", prefix.trim_end_matches('.'));
    let group = format!("{db}-group");
    run_ok({
        let mut c = tw(prefix, &db, &group);
        c.arg("migrate");
        c
    });
    let started = Instant::now();
    let mut children: Vec<Child> = (0..members)
        .map(|i| {
            let mut c = tw(prefix, &db, &group);
            c.arg("aggregate")
                .env("TRADEWIND_AGGREGATOR__INSTANCE_ID", format!("bench-{i}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c.spawn().expect("aggregator")
        })
        .collect();
    // Watch the small ledger table first (cheap), so polling does not load
    // the server the aggregator is writing to; then reconcile in full.
    let windowed = records_in(prefix) - fx_records(prefix);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "not reconciled in 30 minutes"
        );
        if ledger_seen(&db) < windowed {
            continue;
        }
        let mut c = tw(prefix, &db, &group);
        c.arg("reconcile");
        if c.output().map(|o| o.status.success()).unwrap_or(false) {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    terminate(&mut children);
    secs
}

/// One aggregator while records arrive at `rate`/s for `secs`; returns the
/// aggregator's own p50/p99 report line.
fn latency(rate: u64, secs: u64) -> String {
    let prefix = format!("bench_lat_{}.", std::process::id());
    let db = prefix.trim_end_matches('.').to_string();
    let group = format!("{db}-group");
    run_ok({
        let mut c = tw(&prefix, &db, &group);
        c.arg("topics");
        c
    });
    let log = std::env::temp_dir().join(format!("{db}.log"));
    let mut agg = {
        let mut c = tw(&prefix, &db, &group);
        c.arg("aggregate")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"));
        c.spawn().expect("aggregator")
    };
    std::thread::sleep(Duration::from_secs(5));
    run_ok({
        let mut c = tw(&prefix, &db, &group);
        c.args([
            "simulate",
            "--rate",
            &rate.to_string(),
            "--duration",
            &format!("{secs}s"),
            "--start",
            "now-6d",
        ]);
        c
    });
    std::thread::sleep(Duration::from_secs(3));
    terminate(std::slice::from_mut(&mut agg));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.contains("pipeline latency"))
        .unwrap_or("no latency line")
        .to_string();
    // Without terminal colours, for the report.
    common::plain(&line)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let k = KafkaConfig {
        brokers: brokers(),
        ..KafkaConfig::default()
    };
    if let Err(e) = admin::check_reachable(&k) {
        eprintln!("pipeline bench skipped: {e}");
        return;
    }
    let n: u64 = std::env::var("PIPELINE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    // Each aggregator run gets its own copy of the same records (same seed
    // and start), so each has its own DLQ and ledger to reconcile. The
    // default scenario makes about 8 events per simulated second; start far
    // enough back that none lands in the future (which the core rightly
    // rejects as `future_timestamp`, filling the DLQ instead of the tables).
    let span_ms = (6 * 86_400_000).max(n as i64 * 500);
    let start = tradewind_sim::clock::wall_now_ms() - span_ms;
    let prefixes: Vec<String> = (1..=2)
        .map(|i| format!("bench_pipe_{}_{i}.", std::process::id()))
        .collect();
    for prefix in &prefixes {
        eprintln!("pre-producing {n} records into {prefix}*");
        run_ok({
            let mut c = tw(prefix, "unused", "unused");
            c.args([
                "simulate",
                "--count",
                &n.to_string(),
                "--start",
                &start.to_string(),
            ]);
            c
        });
    }
    let records = records_in(&prefixes[0]);
    eprintln!("raw consume of {records} records");
    let raw = raw_consume(&prefixes[0], records);
    eprintln!("aggregating with 1 process");
    let one = aggregate(&prefixes[0], 1);
    eprintln!("aggregating with 2 processes");
    let two = aggregate(&prefixes[1], 2);
    let rate = |s: f64| records as f64 / s;
    println!(
        "{:<34} {:>10} {:>9} {:>12} {:>9}",
        "what", "records", "secs", "records/s", "of raw"
    );
    println!(
        "{:<34} {:>10} {:>9.2} {:>12.0} {:>9}",
        "raw rdkafka consume",
        records,
        raw,
        rate(raw),
        "100%"
    );
    for (label, s) in [
        ("aggregate, 1 process, to reconcile OK", one),
        ("aggregate, 2 processes, to reconcile OK", two),
    ] {
        println!(
            "{label:<34} {records:>10} {s:>9.2} {:>12.0} {:>8.0}%",
            rate(s),
            100.0 * raw / s
        );
    }
    let steady = (rate(one) / 2.0).max(1.0) as u64;
    println!("latency at a steady {steady} records/s (50% of the 1-process rate) for 30 s:");
    println!("  {}", latency(steady, 30));
}
