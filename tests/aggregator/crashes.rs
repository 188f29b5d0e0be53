//! Members that die (`kill -9`), join, leave and stop (SIGTERM): the
//! totals stay exact.

use std::time::{Duration, Instant};

use crate::world::{
    assert_dlq_matches, assert_metrics_match, jitter, pause, terminate, wait_for, World,
};

#[tokio::test(flavor = "multi_thread")]
async fn crashes_lose_nothing_and_count_nothing_twice() {
    let world = World::new("crash");
    let truth = world.simulate(20_000);
    for round in 0..2u64 {
        let mut child = world.aggregator(&[], &format!("crash{round}.log"));
        pause(jitter(round, 1_500, 2_500));
        child.kill().unwrap(); // SIGKILL: no flush, no commit
        child.wait().unwrap();
    }
    // A fresh member takes over once the dead ones' sessions expire.
    let mut last = world.aggregator(&[], "final.log");
    let report = world.wait_reconciled(Duration::from_secs(120));
    terminate(&last);
    assert!(wait_for(&mut last, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert!(report.contains("OK"), "{report}");
    assert_dlq_matches(&report, &truth);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_keeps_the_totals_exact() {
    let world = World::new("rebalance");
    let truth = world.simulate(20_000);
    let mut a = world.aggregator_as("a", "a.log");
    let mut b = world.aggregator_as("b", "b.log");
    pause(jitter(7, 1_500, 1_000));
    let mut c = world.aggregator_as("c", "c.log"); // a third joins
    pause(jitter(8, 1_500, 1_000));
    a.kill().unwrap(); // one dies
    a.wait().unwrap();
    // The survivors take over its partitions and finish the work.
    let report = world.wait_reconciled(Duration::from_secs(120));
    for child in [&mut b, &mut c] {
        terminate(child);
        assert!(wait_for(child, Duration::from_secs(30)).success());
    }
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_commits_within_ten_seconds() {
    let world = World::new("sigterm");
    let truth = world.simulate(20_000);
    let mut child = world.aggregator(&[], "run.log");
    pause(2_500);
    let asked = Instant::now();
    terminate(&child);
    let status = wait_for(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "took {:?}",
        asked.elapsed()
    );
    world.drain("rest.log");
    assert_metrics_match(&world, &truth).await;
    world.reconcile();
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_count_once_across_a_crash() {
    let world = World::new("dupes");
    let scenario = std::fs::read_to_string(world.dir.join("scenario.toml"))
        .unwrap()
        .replace("duplicate_rate = 0.002", "duplicate_rate = 0.05")
        // A repeat of a future-stamped record is rejected, not booked as a
        // duplicate; without such devices every repeat is a duplicate.
        .replace(
            "clock_ahead_device_rate = 0.002",
            "clock_ahead_device_rate = 0.0",
        );
    assert!(scenario.contains("clock_ahead_device_rate = 0.0\n"));
    std::fs::write(world.dir.join("scenario.toml"), scenario).unwrap();
    let truth = world.simulate(20_000);
    let mut first = world.aggregator(&[], "first.log");
    pause(jitter(3, 1_500, 2_500));
    first.kill().unwrap(); // SIGKILL: the replay must recognise repeats again
    first.wait().unwrap();
    let mut last = world.aggregator(&[], "last.log");
    let report = world.wait_reconciled(Duration::from_secs(120));
    terminate(&last);
    assert!(wait_for(&mut last, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
    // Every repeat is booked as a duplicate, none more.
    let booked: u64 = world
        .client()
        .query("SELECT sum(duplicate) FROM ledger FINAL")
        .fetch_one()
        .await
        .unwrap();
    let made: u64 = truth.topics.values().map(|t| t.duplicates).sum();
    assert!(made > 500, "the scenario should make duplicates: {made}");
    assert_eq!(booked, made);
}
