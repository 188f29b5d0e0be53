//! What state snapshots cost and what they save.
//!
//! 1. Core, no I/O: an engine holding live shipments (one partition,
//!    international, so each waits for its 72 h SLA deadline): snapshot
//!    bytes per live entity, encode and restore time.
//! 2. Local broker and server: a logistics-heavy scenario spanning
//!    `SNAPSHOT_BENCH_DAYS` simulated days (default 20) in
//!    `SNAPSHOT_BENCH_RECORDS` records (default 300,000):
//!    - throughput of one `tradewind aggregate` with snapshots off, and on
//!      every second (the harshest setting), as a ratio;
//!    - after everything is committed, `kill -9` and restart: the records
//!      the new member replays and how long it takes, snapshots off and on
//!      (every 5 s).
//!
//!   bash deploy/local/up.sh && cargo bench --bench snapshots
//! It reports numbers; it never fails on speed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message as _;
use tradewind_core::{CoreConfig, Engine, SourceMeta};
use tradewind_proto::{LogisticsEvent, Milestone};

#[path = "common/mod.rs"]
mod common;
use common::{records_in, run_ok};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Part 1: bytes per live shipment and encode/restore time.
fn core(entities: u64) {
    let cfg = CoreConfig::default();
    let mut engine = Engine::new(&cfg, cfg.logistics()).unwrap();
    let t0 = 1_800_000_000_000i64;
    for i in 0..entities as i64 {
        let t = t0 + i * 100;
        let e = LogisticsEvent {
            shipment_id: 1 + i as u64,
            order_id: 1 + i as u64,
            event_time: t,
            mode: 4,
            origin_country: 1 + (i % 3) as i32,
            destination_country: 5 + (i % 4) as i32,
            milestone: Milestone::Created as i32,
            created_time: t,
        };
        let meta = SourceMeta {
            partition: 0,
            offset: i,
            record_time_ms: t,
        };
        engine.process(meta, &e);
    }
    engine.flush();
    let _ = engine.take_output();
    let live = engine.live_entities() as u64;
    let started = Instant::now();
    let state = engine.snapshot(0).unwrap();
    let bytes = state.encode_to_vec();
    let encode = started.elapsed();
    let started = Instant::now();
    let decoded = tradewind_core::PartitionState::decode(bytes.as_slice()).unwrap();
    let mut fresh = Engine::new(&cfg, cfg.logistics()).unwrap();
    fresh.restore_snapshot(0, decoded, None).unwrap();
    let restore = started.elapsed();
    println!(
        "core: {live} live shipments, {} windows: snapshot {} bytes = {:.1} B per live shipment; \
         capture+encode {:.1} ms, decode+restore {:.1} ms",
        engine.live_windows(),
        bytes.len(),
        bytes.len() as f64 / live.max(1) as f64,
        encode.as_secs_f64() * 1e3,
        restore.as_secs_f64() * 1e3,
    );
}

/// `tradewind` as the one bench member (`bench`).
fn tw(prefix: &str, db: &str, group: &str) -> Command {
    let mut c = common::tw(prefix, db, group);
    c.env("TRADEWIND_AGGREGATOR__INSTANCE_ID", "bench");
    c
}

/// Runs one member until it has been idle for `idle`; returns the wall
/// time without the idle tail and the records it read (from its final
/// log line).
fn drain(prefix: &str, db: &str, interval: &str, idle: u64) -> (f64, u64) {
    let group = format!("{db}-group");
    let log = std::env::temp_dir().join(format!("{db}-{}.log", std::process::id()));
    let started = Instant::now();
    let status = {
        let mut c = tw(prefix, db, &group);
        c.args(["aggregate", "--exit-when-idle", &format!("{idle}s")])
            .env("TRADEWIND_AGGREGATOR__SNAPSHOT_INTERVAL", interval)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        c.status().expect("aggregator")
    };
    let secs = (started.elapsed().as_secs_f64() - idle as f64).max(0.0);
    assert!(status.success(), "see {}", log.display());
    let text = strip_ansi(&std::fs::read_to_string(&log).unwrap());
    let records = text
        .lines()
        .filter(|l| l.contains("leaving the group"))
        .filter_map(|l| l.split("records=").nth(1))
        .filter_map(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|r| r.parse().ok())
        .next_back()
        .unwrap_or(0);
    (secs, records)
}

/// The log without terminal colour codes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a member to the end and kills it (`kill -9`) once it has
/// committed everything and snapshotted (a few idle seconds), then
/// restarts one; returns the restart's (seconds, records replayed).
fn crash_and_restart(prefix: &str, db: &str, interval: &str) -> (f64, u64) {
    let group = format!("{db}-group");
    let mut first: Child = {
        let mut c = tw(prefix, db, &group);
        c.arg("aggregate")
            .env("TRADEWIND_AGGREGATOR__SNAPSHOT_INTERVAL", interval)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.spawn().expect("aggregator")
    };
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        assert!(started.elapsed() < Duration::from_secs(1800), "stuck");
        let mut c = tw(prefix, db, &group);
        c.arg("reconcile");
        if c.output().map(|o| o.status.success()).unwrap_or(false) {
            break;
        }
    }
    // Past one snapshot interval, as a crash at a random moment would be
    // on average half of one.
    std::thread::sleep(Duration::from_secs(6));
    let _ = first.kill();
    let _ = first.wait();
    drain(prefix, db, interval, 3)
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref().is_some_and(|f| !"snapshots".contains(f)) {
        return;
    }
    for n in [10_000, 100_000] {
        core(n);
    }
    let records = env_or("SNAPSHOT_BENCH_RECORDS", 300_000);
    let days = env_or("SNAPSHOT_BENCH_DAYS", 20);
    let prefix = format!("bench_snap_{}.", std::process::id());
    let base = prefix.trim_end_matches('.').to_string();
    // Commerce events per simulated second so that `records` span about
    // `days`: each shipment brings 2-4 more milestones, IoT and FX the rest.
    let rate = records as f64 / (days as f64 * 86_400.0) / 3.5;
    let n = records.to_string();
    let start = format!("now-{}d", days + 2);
    let eps = format!("clock.events_per_second={rate:.4}");
    let sim = run_ok({
        let mut c = tw(&prefix, &base, "unused");
        c.args([
            "simulate",
            "--start",
            &start,
            "--count",
            &n,
            "--set",
            &eps,
            "--set",
            "mix.payments=0.3",
            "--set",
            "mix.shipments=0.7",
            "--set",
            "iot.fleet_scale=0.001",
        ]);
        c
    });
    let total = records_in(&prefix);
    let span = sim
        .lines()
        .find(|l| l.contains("simulated time"))
        .unwrap_or_default();
    println!("pipeline: {total} records, logistics-heavy ({span})");
    let (off, _) = drain(&prefix, &format!("{base}_off"), "0s", 3);
    let (on, _) = drain(&prefix, &format!("{base}_on"), "1s", 3);
    println!(
        "throughput: snapshots off {:.0} records/s, on every 1 s {:.0} records/s, ratio on/off {:.2}",
        total as f64 / off,
        total as f64 / on,
        off / on
    );
    for (label, interval) in [("off", "0s"), ("on, every 5 s", "5s")] {
        let db = format!("{base}_crash_{}", &interval[..interval.len() - 1]);
        let (secs, replayed) = crash_and_restart(&prefix, &db, interval);
        println!(
            "restart after kill -9, snapshots {label}: replayed {replayed} records in {secs:.1} s"
        );
    }
}
