//! A member in trouble that must not be restarted by anyone: a record
//! larger than the DLQ topic takes, a member frozen past its session
//! timeout, and a member killed in the middle of a Kafka transaction whose
//! successor (same identity) must unblock `read_committed` readers at once.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

use crate::world::{
    assert_alive, assert_dlq_holds, assert_dlq_matches, assert_metrics_match, pause, signal,
    terminate, wait_for, World,
};

fn client(world: &World) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &world.brokers);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_record_is_dead_lettered_truncated_without_a_crash() {
    let world = World::new("oversize");
    // Payments take records up to 2 MiB; the DLQ only 1 MiB.
    let admin: AdminClient<DefaultClientContext> = client(&world).create().unwrap();
    let payments = format!("{}payments", world.prefix);
    let dlq = format!("{}dlq", world.prefix);
    let topics = [
        NewTopic::new(&payments, 8, TopicReplication::Fixed(1)).set("max.message.bytes", "2097152"),
        NewTopic::new(&dlq, 2, TopicReplication::Fixed(1)).set("max.message.bytes", "1048576"),
    ];
    for r in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let truth = world.simulate(20_000);
    let producer: BaseProducer = client(&world)
        .set("message.max.bytes", "3000000")
        .create()
        .unwrap();
    let huge = vec![0xFFu8; 1_200_000]; // not protobuf: malformed
    producer
        .send(BaseRecord::to(&payments).key("huge").payload(&huge))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let mut agg = world.aggregator(&[], "run.log");
    let report = world.wait_reconciled(Duration::from_secs(120));
    assert_alive(&world, &mut agg, "run.log");
    terminate(&agg);
    assert!(wait_for(&mut agg, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;

    // The DLQ holds the simulator's rejections plus the huge record, cut
    // to fit and flagged.
    assert_dlq_holds(&report, &truth, 1);
    let reader: BaseConsumer = client(&world)
        .set("group.id", format!("{}-reader", world.group))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    reader.subscribe(&[&dlq]).unwrap();
    let started = Instant::now();
    let found = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "huge record not in the DLQ"
        );
        let Some(Ok(m)) = reader.poll(Duration::from_millis(500)) else {
            continue;
        };
        let header = |k: &str| {
            m.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == k)
                    .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
            })
        };
        if header("payload.truncated").as_deref() == Some("true") {
            break (header("payload.size"), header("reason"), m.payload_len());
        }
    };
    assert_eq!(found.0.as_deref(), Some("1200000"));
    assert_eq!(found.1.as_deref(), Some("malformed"));
    assert!(found.2 > 1_000_000 && found.2 < 1_048_576, "{}", found.2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_frozen_past_its_session_timeout_rejoins_and_continues() {
    let world = World::new("frozen");
    let topics = world.command(&["topics"]).output().unwrap();
    assert!(topics.status.success());
    let mut a = world.aggregator_as("a", "a.log");
    let mut b = world.aggregator_as("b", "b.log");
    let producer = {
        let w = world.clone();
        std::thread::spawn(move || w.simulate_at(20_000, Some(800)))
    };
    world.wait_written().await;
    let a_log = world.dir.join("a.log");
    let read_a = || std::fs::read_to_string(&a_log).unwrap_or_default();
    let started = Instant::now();
    while !read_a().contains("partitions assigned") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a got no partitions"
        );
        pause(200);
    }
    // The session timeout is 6 s: b takes a's partitions meanwhile.
    signal(&a, "STOP");
    pause(12_000);
    signal(&a, "CONT");
    let woke_at = read_a().len();
    let truth = producer.join().unwrap();
    let report = world.wait_reconciled(Duration::from_secs(180));
    assert_alive(&world, &mut a, "a.log");
    assert_alive(&world, &mut b, "b.log");
    // a is back in the group: it holds partitions again after waking.
    let log = read_a();
    assert!(
        log[woke_at..].contains("partitions assigned"),
        "a did not rejoin:\n{log}"
    );
    for child in [&mut a, &mut b] {
        terminate(child);
        assert!(wait_for(child, Duration::from_secs(30)).success());
    }
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
}

/// DLQ high watermark as seen by a `read_committed` reader (the last
/// stable offset) and by a `read_uncommitted` one, summed over partitions.
fn dlq_offsets(world: &World) -> (i64, i64) {
    let dlq = format!("{}dlq", world.prefix);
    let sum = |isolation: &str| -> i64 {
        let c: BaseConsumer = client(world)
            .set("group.id", format!("{}-probe", world.group))
            .set("isolation.level", isolation)
            .create()
            .unwrap();
        (0..2)
            .map(|p| {
                c.fetch_watermarks(&dlq, p, Duration::from_secs(5))
                    .unwrap()
                    .1
            })
            .sum()
    };
    (sum("read_committed"), sum("read_uncommitted"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successor_with_the_same_identity_fences_an_open_transaction_at_once() {
    let world = World::new("fence");
    // Many rejections, so most commits carry DLQ records.
    let scenario = std::fs::read_to_string(world.dir.join("scenario.toml"))
        .unwrap()
        .replace("poison_rate = 0.0005", "poison_rate = 0.05");
    std::fs::write(world.dir.join("scenario.toml"), scenario).unwrap();
    let topics = world.command(&["topics"]).output().unwrap();
    assert!(topics.status.success());
    let env = [("TRADEWIND_AGGREGATOR__SINK__FLUSH_INTERVAL", "100ms")];
    let mut first = world.aggregator_env(&[], "first.log", &env);
    let producer = {
        let w = world.clone();
        std::thread::spawn(move || w.simulate_at(30_000, Some(1_000)))
    };
    world.wait_written().await;
    // Freeze the member now and then until it is caught with DLQ records
    // written but not committed, then kill it there.
    let started = Instant::now();
    let mut tries = 0u64;
    loop {
        signal(&first, "STOP");
        let (stable, high) = dlq_offsets(&world);
        if stable < high {
            break;
        }
        signal(&first, "CONT");
        tries += 1;
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "never caught a transaction open in {tries} tries"
        );
        pause(7 + tries * 13 % 41);
    }
    first.kill().unwrap(); // SIGKILL while frozen inside a transaction
    first.wait().unwrap();
    let killed = Instant::now();
    let mut second = world.aggregator_env(&[], "second.log", &env);
    // read_committed readers wait until the open transaction ends.
    let unblocked = loop {
        let (stable, high) = dlq_offsets(&world);
        if stable == high {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "DLQ readers still blocked {:?} after the successor started",
            killed.elapsed()
        );
        pause(100);
    };
    eprintln!("DLQ readers unblocked {unblocked:?} after the kill (caught after {tries} tries)");
    let truth = producer.join().unwrap();
    let report = world.wait_reconciled(Duration::from_secs(180));
    terminate(&second);
    assert!(wait_for(&mut second, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_no_retry_can_fix_stops_the_member_with_the_reason() {
    let world = World::new("fatal");
    let topics = world.command(&["topics"]).output().unwrap();
    assert!(topics.status.success());
    let mut agg = world.aggregator(&[], "run.log");
    let producer = {
        let w = world.clone();
        std::thread::spawn(move || w.simulate_at(10_000, Some(800)))
    };
    world.wait_written().await;
    // Someone drops a table the sink writes to: retrying cannot help.
    world
        .client()
        .query("DROP TABLE ledger")
        .execute()
        .await
        .unwrap();
    let status = wait_for(&mut agg, Duration::from_secs(60));
    assert!(!status.success(), "the member should stop");
    let log = std::fs::read_to_string(world.dir.join("run.log")).unwrap();
    assert!(
        log.contains("ClickHouse refused the write") && log.contains("not retrying"),
        "{log}"
    );
    assert!(!log.contains("partitions paused"), "{log}");
    producer.join().unwrap();
}
