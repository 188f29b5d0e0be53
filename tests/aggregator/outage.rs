//! A ClickHouse outage while records flow: a private server of the test's
//! own is stopped for six minutes and started again.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::text;
use crate::ops::{http_get, samples};
use crate::world::{
    assert_dlq_matches, assert_metrics_match, free_port, pause, terminate, wait_for, World,
};

/// A ClickHouse server of this test's own (Debian's package, the local
/// stack's config template), so stopping it disturbs no other test.
struct PrivateClickHouse {
    child: Option<Child>,
    dir: PathBuf,
    http: u16,
}

impl PrivateClickHouse {
    fn new(dir: &std::path::Path) -> Self {
        let dir = dir.join("clickhouse");
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (http, tcp) = (free_port(), free_port());
        for file in ["config.xml", "users.xml"] {
            let text = crate::world::render_stack_template(
                &format!("clickhouse/{file}"),
                &dir,
                &[
                    ("@CH_HTTP_PORT@", http.to_string()),
                    ("@CH_TCP_PORT@", tcp.to_string()),
                ],
            );
            std::fs::write(dir.join(file), text).unwrap();
        }
        let mut ch = Self {
            child: None,
            dir,
            http,
        };
        ch.start();
        ch
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.http)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /ping HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.contains("Ok.")
    }

    fn start(&mut self) {
        let child = Command::new("clickhouse-server")
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server starts");
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "private ClickHouse did not start"
            );
            pause(200);
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&c);
            let _ = wait_for(&mut c, Duration::from_secs(30));
        }
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn sum(scrape: &str, name: &str) -> f64 {
    samples(scrape, name).iter().map(|s| s.1).sum()
}

/// The documented bound on a member's memory while ClickHouse is down
/// (README, "When ClickHouse is down"), for the default settings.
const RSS_BOUND_MIB: f64 = 400.0;

/// ClickHouse down for longer than `max.poll.interval.ms` (5 min by
/// default) while records flow at 100/s: the member keeps polling with its
/// partitions paused, stays in the group, reports the outage on
/// `/metrics`, keeps its memory bounded, and loses nothing.
/// `TRADEWIND_TEST_OUTAGE_SECS` shortens the outage for a quick run.
#[tokio::test(flavor = "multi_thread")]
async fn a_clickhouse_outage_longer_than_the_poll_interval_keeps_the_member_in_the_group() {
    let outage: u64 = std::env::var("TRADEWIND_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(360);
    let mut world = World::new("outage");
    let mut ch = PrivateClickHouse::new(&world.dir);
    world.ch_url = ch.url();
    let topics = world.command(&["topics"]).output().unwrap();
    assert!(topics.status.success(), "{}", text(&topics));
    let (mut agg, port) = world.aggregator_with_metrics("run.log", "1s");
    let count = 100 * (outage + 40);
    let producer = {
        let w = world.clone();
        std::thread::spawn(move || w.simulate_at(count, Some(100)))
    };
    world.wait_written().await;
    ch.stop();
    let down = Instant::now();
    let (mut peak_rss, mut lags, mut blocked_seen) = (0f64, Vec::new(), false);
    while down.elapsed() < Duration::from_secs(outage) {
        assert!(
            agg.try_wait().unwrap().is_none(),
            "the aggregator died while ClickHouse was down"
        );
        peak_rss = peak_rss.max(rss_mib(agg.id()));
        if down.elapsed() > Duration::from_secs(20) {
            let (_, scrape) = http_get(port, "/metrics");
            let blocked = samples(&scrape, "tradewind_member_state")
                .iter()
                .any(|s| s.0.contains("sink_blocked") && s.1 == 1.0);
            assert!(blocked, "not reported as sink_blocked:\n{scrape}");
            blocked_seen = true;
            assert!(sum(&scrape, "tradewind_sink_retries_total") > 0.0);
            assert!(sum(&scrape, "tradewind_sink_last_success_age_seconds") > 10.0);
            lags.push(sum(&scrape, "tradewind_consumer_lag_records"));
            assert_eq!(
                http_get(port, "/ready").0,
                "HTTP/1.1 503 Service Unavailable"
            );
        }
        pause(5_000);
    }
    ch.start();
    let truth = producer.join().unwrap();
    let report = world.wait_reconciled(Duration::from_secs(240));
    eprintln!(
        "outage {outage} s: peak RSS {peak_rss:.0} MiB, consumer lag {:?} -> {:?}",
        lags.first(),
        lags.last()
    );
    assert!(blocked_seen);
    assert!(
        lags.last() > lags.first(),
        "consumer lag did not rise during the outage: {lags:?}"
    );
    assert!(peak_rss < RSS_BOUND_MIB, "peak RSS {peak_rss:.0} MiB");
    let log = std::fs::read_to_string(world.dir.join("run.log")).unwrap();
    assert!(
        !log.contains("partitions revoked") && !log.contains("recovering"),
        "the member left the group during the outage:\n{log}"
    );
    terminate(&agg);
    assert!(wait_for(&mut agg, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
}
