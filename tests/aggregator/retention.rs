//! State that outlives Kafka retention. Weeks of simulated trade with
//! China–Europe rail and sea freight (shipments that live 13–34 days) go
//! through topics with a 45-second retention and 2-second segments, so the
//! records a live shipment was anchored at are really deleted before a
//! `kill -9` and a restart:
//! - with snapshots, the restart restores each partition from its snapshot
//!   and the result still equals the truth, window by window and key by
//!   key, with `reconcile` OK and the DLQ exact;
//! - without snapshots, the partitions whose history is gone are refused
//!   with the clear error, and nothing is committed for them;
//! - a member that joins while records arrive restores the partitions it
//!   takes over from the snapshots written at the handover.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tradewind_kafka::KafkaConfig;
use tradewind_proto::Stream;
use tradewind_sim::Truth;

use crate::common::Proc;
use crate::ops::http_get;
use crate::world::{
    assert_dlq_matches, assert_metrics_match, free_port, pause, terminate, wait_for, World,
};

const RETENTION: &str = "45000";
const SEGMENT: &str = "2000";
const RECORDS: u64 = 14_000;
/// Paced so production takes about 50 s of wall time.
const RATE: u32 = 280;

/// A world whose scenario spans about six weeks of simulated time in
/// `RECORDS` records: slow commerce, few IoT reports and FX quotes.
fn long_world(tag: &str) -> World {
    let world = World::new(tag);
    let scenario = tradewind_sim::scenario::DEFAULT_SCENARIO
        .replace("events_per_second = 3.35", "events_per_second = 0.0025")
        .replace("fleet_scale = 1.0", "fleet_scale = 0.0001")
        .replace("interval = \"1m\"", "interval = \"6h\"")
        .replace("report_every = \"5m\"", "report_every = \"6h\"")
        .replace("report_every = \"10m\"", "report_every = \"6h\"")
        .replace("report_every = \"15m\"", "report_every = \"6h\"")
        // International shipments wait 30 days for their deadline, so a
        // checkpoint alone needs records from weeks (tens of seconds here)
        // back.
        .replace("sla_international = \"72h\"", "sla_international = \"30d\"");
    std::fs::write(world.dir.join("scenario.toml"), scenario).unwrap();
    world
}

fn kafka(world: &World) -> KafkaConfig {
    KafkaConfig {
        brokers: world.brokers.clone(),
        topic_prefix: world.prefix.clone(),
        ..KafkaConfig::default()
    }
}

/// Creates the world's topics with a short retention and short segments.
async fn short_retention_topics(world: &World) {
    let cfg = kafka(world);
    tradewind_kafka::admin::ensure_topics(&cfg, &cfg.all_topics())
        .await
        .unwrap();
    set_retention(world, RETENTION).await;
}

/// Sets the stream topics' retention (and short segments).
async fn set_retention(world: &World, retention_ms: &str) {
    let cfg = kafka(world);
    let admin: AdminClient<DefaultClientContext> = cfg.client_config().create().unwrap();
    let topics = cfg.stream_topics();
    let changes: Vec<AlterConfig<'_>> = topics
        .iter()
        .map(|t| {
            AlterConfig::new(ResourceSpecifier::Topic(t))
                .set("retention.ms", retention_ms)
                .set("segment.ms", SEGMENT)
        })
        .collect();
    for r in admin
        .alter_configs(&changes, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

/// Starts the simulator paced at `RATE`; the truth is read once it exits.
fn start_simulator(world: &World) -> Child {
    start_simulator_at(world, RECORDS, RATE, "now-45d")
}

fn start_simulator_at(world: &World, records: u64, rate: u32, start: &str) -> Child {
    let scenario = world.dir.join("scenario.toml");
    let truth = world.dir.join("truth.json");
    let (n, r) = (records.to_string(), rate.to_string());
    world
        .command(&[
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--start",
            start,
            "--count",
            &n,
            "--rate",
            &r,
            "--truth",
            truth.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn finish_simulator(world: &World, mut sim: Child) -> Truth {
    let status = wait_for(&mut sim, Duration::from_secs(180));
    assert!(status.success(), "simulate failed: {status:?}");
    serde_json::from_slice(&std::fs::read(world.dir.join("truth.json")).unwrap()).unwrap()
}

/// An aggregator with snapshots every `interval` (`0s`: off).
fn aggregator(world: &World, interval: &str, log: &str) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = world.aggregator_env(
        &[],
        log,
        &[
            ("TRADEWIND_AGGREGATOR__SNAPSHOT_INTERVAL", interval),
            ("TRADEWIND_CORE__SLA_INTERNATIONAL", "30d"),
            ("TRADEWIND_AGGREGATOR__LISTEN", &listen),
            ("TRADEWIND_AGGREGATOR__STATS_INTERVAL", "1s"),
        ],
    );
    (child, port)
}

/// Log start offsets of the logistics partitions.
fn log_starts(world: &World) -> BTreeMap<i32, i64> {
    let cfg = kafka(world);
    tradewind_kafka::admin::topic_offsets(&cfg, &cfg.topic(Stream::Logistics))
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.low))
        .collect()
}

/// The group's committed logistics offsets and their metadata.
fn committed(world: &World) -> BTreeMap<i32, (i64, String)> {
    let cfg = kafka(world);
    // `read_uncommitted`: the offsets last committed, without waiting for
    // a transaction the killed member left open (a `read_committed` fetch
    // waits for it to end, up to the transaction timeout).
    let consumer: BaseConsumer = cfg
        .consumer_config()
        .set("group.id", &world.group)
        .set("isolation.level", "read_uncommitted")
        .create()
        .unwrap();
    let topic = cfg.topic(Stream::Logistics);
    let mut tpl = TopicPartitionList::new();
    for p in 0..cfg.partitions.logistics {
        tpl.add_partition(&topic, p);
    }
    // The coordinator may be busy with the group's rebalance: ask again.
    let got = (0..5)
        .find_map(|_| {
            consumer
                .committed_offsets(tpl.clone(), Duration::from_secs(10))
                .ok()
        })
        .expect("committed offsets");
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), (o, e.metadata().to_string()))),
            _ => None,
        })
        .collect()
}

/// The restart offset a checkpoint alone would need (`v1:<restart>:…`).
fn checkpoint_restart(metadata: &str) -> i64 {
    metadata
        .strip_prefix("v1:")
        .and_then(|m| m.split(':').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint in {metadata:?}"))
}

/// Runs the first half of the scenario through one aggregator and kills
/// it (`kill -9`) while the simulator goes on producing, then waits until
/// retention has deleted records that some logistics partition's
/// checkpoint still needs. Returns the running simulator and the
/// committed offsets at the kill.
async fn run_then_lose_history(
    world: &World,
    interval: &str,
) -> (Child, BTreeMap<i32, (i64, String)>) {
    short_retention_topics(world).await;
    let sim = start_simulator(world);
    let (mut first, _) = aggregator(world, interval, "first.log");
    pause(28_000);
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = committed(world);
    let started = Instant::now();
    loop {
        let lows = log_starts(world);
        let gone = at_kill.iter().any(|(p, (_, meta))| {
            lows.get(p)
                .is_some_and(|low| *low > checkpoint_restart(meta))
        });
        if gone {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "retention deleted nothing a checkpoint needs: log starts {lows:?}, committed {at_kill:?}"
        );
        pause(250);
    }
    // Hold the log starts where they are now, so what the restart finds
    // is what was just checked (a deletion racing a running replay is not
    // what these tests are about).
    set_retention(world, "604800000").await;
    pause(3_000);
    (sim, at_kill)
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_restore_exactly_after_retention_deleted_the_history() {
    let world = long_world("retention_snapshots");
    let (sim, at_kill) = run_then_lose_history(&world, "2s").await;
    for (p, (offset, meta)) in &at_kill {
        assert!(
            meta.contains("|s"),
            "logistics[{p}] committed {offset} without a snapshot: {meta}"
        );
    }
    let (mut second, port) = aggregator(&world, "2s", "second.log");
    let truth = finish_simulator(&world, sim);
    let report = world.wait_reconciled(Duration::from_secs(120));
    let (_, scrape) = http_get(port, "/metrics");
    let restores: Vec<&str> = scrape
        .lines()
        .filter(|l| l.starts_with("tradewind_restore_duration_seconds_count{from=\"snapshot\"}"))
        .collect();
    assert!(
        !restores.is_empty(),
        "no restore from a snapshot:\n{scrape}"
    );
    for l in scrape
        .lines()
        .filter(|l| l.starts_with("tradewind_restore_duration_seconds_"))
    {
        eprintln!("{l}");
    }
    assert!(
        !scrape.contains("tradewind_partition_refused{"),
        "a partition was refused; see {}",
        world.dir.join("second.log").display()
    );
    terminate(&second);
    assert!(wait_for(&mut second, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert!(report.contains("OK"), "{report}");
    assert_dlq_matches(&report, &truth);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_snapshots_a_partition_past_retention_is_refused() {
    let world = long_world("retention_refused");
    let (sim, at_kill) = run_then_lose_history(&world, "0s").await;
    // What the restart will find: these partitions' history is gone.
    let lows = log_starts(&world);
    let (mut second, port) = aggregator(&world, "0s", "second.log");
    let log = world.dir.join("second.log");
    let gone: Vec<i32> = at_kill
        .iter()
        .filter(|(p, (_, meta))| lows[*p] > checkpoint_restart(meta))
        .map(|(p, _)| *p)
        .collect();
    assert!(!gone.is_empty(), "no history lost: {lows:?} {at_kill:?}");
    // Each is refused once its first record arrives.
    let started = Instant::now();
    loop {
        let (_, scrape) = http_get(port, "/metrics");
        let refused: Vec<&str> = scrape
            .lines()
            .filter(|l| l.starts_with("tradewind_partition_refused{") && l.contains("logistics"))
            .collect();
        let missing: Vec<i32> = gone
            .iter()
            .copied()
            .filter(|p| {
                let label = format!("partition=\"{p}\"");
                !refused.iter().any(|l| l.contains(&label))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "logistics {missing:?} not refused; see {}",
            log.display()
        );
        pause(500);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("retention deleted the records in between")
            && text.contains("--reset-offsets"),
        "the refusal does not say why and what to do:\n{text}"
    );
    // The member lives on, and commits nothing for what it refused.
    pause(3_000);
    let (status, _) = http_get(port, "/health");
    assert!(status.contains("200"), "{status}");
    let now = committed(&world);
    for p in &gone {
        assert_eq!(
            now.get(p).map(|c| c.0),
            Some(at_kill[p].0),
            "logistics[{p}] moved on"
        );
    }
    terminate(&second);
    assert!(wait_for(&mut second, Duration::from_secs(30)).success());
    finish_simulator(&world, sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_joins_restores_moved_partitions_from_snapshots() {
    let world = World::new("join_snapshots");
    let sim = start_simulator_at(&world, 24_000, 1_000, "now-3d");
    let snapshots = [("TRADEWIND_AGGREGATOR__SNAPSHOT_INTERVAL", "2s")];
    let mut a = world.aggregator_env(
        &[],
        "a.log",
        &[snapshots[0], ("TRADEWIND_AGGREGATOR__INSTANCE_ID", "a")],
    );
    pause(6_000);
    // b joins while records still arrive: a hands its partitions over
    // with snapshots, and b restores them instead of replaying history.
    let mut b = world.aggregator_env(
        &[],
        "b.log",
        &[snapshots[0], ("TRADEWIND_AGGREGATOR__INSTANCE_ID", "b")],
    );
    let truth = finish_simulator(&world, sim);
    let report = world.wait_reconciled(Duration::from_secs(120));
    for child in [&mut a, &mut b] {
        terminate(child);
        assert!(wait_for(child, Duration::from_secs(30)).success());
    }
    let log = std::fs::read_to_string(world.dir.join("b.log")).unwrap();
    let restored: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("restored partition from its snapshot"))
        .collect();
    assert!(
        !restored.is_empty(),
        "the joiner restored no snapshot:\n{log}"
    );
    eprintln!(
        "the joiner restored {} partitions from snapshots:",
        restored.len()
    );
    for l in &restored {
        eprintln!("{l}");
    }
    assert_metrics_match(&world, &truth).await;
    assert!(report.contains("OK"), "{report}");
    assert_dlq_matches(&report, &truth);
}
