//! Producer throughput: `tradewind simulate` flat out into the local broker,
//! against a raw rdkafka producer sending the very same keys and payloads
//! (pre-generated in memory, so only the simulator's own work differs), with
//! the same client settings, measured in the same run.
//!
//! Run with the stack up (`bash deploy/local/up.sh`):
//!   cargo bench --bench produce                      # 2,000,000 records
//!   PRODUCE_BENCH_RECORDS=500000 cargo bench --bench produce
//! It reports numbers; it never fails on speed.

use std::process::Command;
use std::time::{Duration, Instant};

use tradewind_kafka::{admin, KafkaConfig, RecordProducer};
use tradewind_sim::{Generator, Scenario, SimRecord};

struct Figure {
    label: &'static str,
    records: u64,
    bytes: u64,
    secs: f64,
}

impl Figure {
    fn eps(&self) -> f64 {
        self.records as f64 / self.secs
    }
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }
}

fn kafka_config(prefix: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: std::env::var("TRADEWIND_KAFKA__BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".into()),
        topic_prefix: prefix.into(),
        ..KafkaConfig::default()
    }
}

fn raw_produce(records: &[SimRecord], run: u32) -> Figure {
    let cfg = kafka_config(&format!("bench_raw_{}_{run}.", std::process::id()));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(admin::ensure_topics(&cfg, &cfg.all_topics()))
        .expect("topics");
    let names: Vec<String> = cfg.stream_topics();
    let producer = RecordProducer::new(&cfg).expect("producer");
    let started = Instant::now();
    let mut bytes = 0u64;
    for r in records {
        producer
            .send(&names[r.stream as usize], &r.key, &r.payload)
            .expect("send");
        bytes += r.payload.len() as u64;
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    Figure {
        label: "raw rdkafka produce",
        records: records.len() as u64,
        bytes,
        secs: started.elapsed().as_secs_f64(),
    }
}

fn simulate(n: u64, run: u32) -> Figure {
    let prefix = format!("bench_sim_{}_{run}.", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_tradewind"))
        .args([
            "simulate",
            "--topic-prefix",
            &prefix,
            "--count",
            &n.to_string(),
            "--start",
            "2026-11-11T00:00:00Z",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("tradewind runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "simulate failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = stdout
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .expect("TOTAL line");
    let field = |name: &str| -> f64 {
        total
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .expect("field in TOTAL line")
    };
    Figure {
        label: "tradewind simulate",
        records: field("records") as u64,
        bytes: field("bytes") as u64,
        secs: field("seconds"),
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: only run for real under bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: u64 = std::env::var("PRODUCE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    if let Err(e) = admin::check_reachable(&kafka_config("probe.")) {
        eprintln!("produce bench skipped: {e}");
        return;
    }
    let scenario = Scenario::default_scenario();
    let records: Vec<SimRecord> =
        Generator::new(&scenario, scenario.seed, 1_794_355_200_000, false)
            .expect("generator")
            .take(n as usize)
            .collect();

    // Interleave the two so drift on a shared machine hits both alike.
    let mut figures = Vec::new();
    for run in 0..3 {
        figures.push(raw_produce(&records, run));
        figures.push(simulate(n, run));
    }
    println!(
        "{:<22} {:>10} {:>12} {:>9} {:>8}",
        "what", "records", "records/s", "MB/s", "secs"
    );
    for f in &figures {
        println!(
            "{:<22} {:>10} {:>12.0} {:>9.2} {:>8.2}",
            f.label,
            f.records,
            f.eps(),
            f.mbps(),
            f.secs
        );
    }
    let median = |label: &str| {
        let mut v: Vec<f64> = figures
            .iter()
            .filter(|f| f.label == label)
            .map(Figure::eps)
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (raw, sim) = (median("raw rdkafka produce"), median("tradewind simulate"));
    println!(
        "median of 3: simulate {sim:.0} records/s vs raw {raw:.0} records/s = {:.0}% of raw",
        100.0 * sim / raw
    );
}
