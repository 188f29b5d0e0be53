//! The aggregator against a real Kafka broker and a real ClickHouse server:
//! simulate a fixed scenario, aggregate it (with `kill -9` crashes, a
//! rebalance, a SIGTERM), and check ClickHouse's merged metrics against the
//! simulator's truth exactly, then `tradewind reconcile`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::Deserialize;
use tradewind_sim::Truth;

mod common;
use common::{brokers, clickhouse_url, text, tradewind, unique};

/// One test's own topics, database and consumer group.
struct World {
    prefix: String,
    db: String,
    group: String,
    dir: PathBuf,
    ch_url: String,
}

impl World {
    fn new(tag: &str) -> Self {
        let name = unique(tag);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        // A slow simulated clock: 0.2 new events per second spreads the run
        // over a day or more, so deliveries and SLA breaches happen.
        let scenario = tradewind_sim::scenario::DEFAULT_SCENARIO
            .replace("events_per_second = 5.0", "events_per_second = 0.2");
        std::fs::write(dir.join("scenario.toml"), scenario).unwrap();
        Self {
            prefix: format!("{name}."),
            db: name.clone(),
            group: format!("{name}-group"),
            dir,
            ch_url: clickhouse_url(),
        }
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--topic-prefix", &self.prefix, "--database", &self.db];
        v.extend_from_slice(rest);
        v
    }

    fn simulate(&self, count: u64) -> Truth {
        self.simulate_at(count, None)
    }

    /// Simulates `count` records, paced at `rate` per second if given.
    fn simulate_at(&self, count: u64, rate: Option<u32>) -> Truth {
        let truth = self.dir.join("truth.json");
        let scenario = self.dir.join("scenario.toml");
        let (n, r) = (count.to_string(), rate.unwrap_or(0).to_string());
        let mut args = vec![
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--start",
            "now-3d",
            "--count",
            &n,
            "--truth",
            truth.to_str().unwrap(),
        ];
        if rate.is_some() {
            args.extend(["--rate", &r]);
        }
        let out = tradewind(&self.args(&args));
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap()
    }

    fn aggregator(&self, extra: &[&str], log: &str) -> Child {
        self.aggregator_env(extra, log, &[])
    }

    /// An aggregator with extra environment (applied last, so it wins).
    fn aggregator_env(&self, extra: &[&str], log: &str, env: &[(&str, &str)]) -> Child {
        let log = std::fs::File::create(self.dir.join(log)).unwrap();
        Command::new(env!("CARGO_BIN_EXE_tradewind"))
            .args(self.args(&["aggregate"]))
            .args(extra)
            .env("TRADEWIND_KAFKA__BROKERS", brokers())
            .env("TRADEWIND_CLICKHOUSE__URL", &self.ch_url)
            .env("TRADEWIND_AGGREGATOR__GROUP_ID", &self.group)
            .env("TRADEWIND_AGGREGATOR__LISTEN", "127.0.0.1:0")
            .env("TRADEWIND_AGGREGATOR__SESSION_TIMEOUT", "6s")
            // Late events reach 3h in the scenario; keep them all.
            .env("TRADEWIND_CORE__ALLOWED_LATENESS", "4h")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("aggregator starts")
    }

    /// Runs one aggregator until it has been idle for a few seconds.
    fn drain(&self, log: &str) {
        let mut child = self.aggregator(&["--exit-when-idle", "4s"], log);
        let status = wait_for(&mut child, Duration::from_secs(240));
        assert!(
            status.success(),
            "aggregator failed; see {}",
            self.dir.join(log).display()
        );
    }

    /// Polls `reconcile` until it reports OK (the group has caught up).
    fn wait_reconciled(&self, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let (ok, report) = self.try_reconcile();
            if ok {
                return report;
            }
            assert!(
                started.elapsed() < limit,
                "not reconciled after {limit:?}:\n{report}"
            );
            pause(1_000);
        }
    }

    fn try_reconcile(&self) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_tradewind"))
            .args(self.args(&["reconcile"]))
            .env("TRADEWIND_KAFKA__BROKERS", brokers())
            .env("TRADEWIND_CLICKHOUSE__URL", &self.ch_url)
            .env("TRADEWIND_AGGREGATOR__GROUP_ID", &self.group)
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    }

    fn reconcile(&self) -> String {
        let (ok, report) = self.try_reconcile();
        assert!(ok, "reconcile found differences:\n{report}");
        report
    }

    fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.ch_url)
            .with_database(&self.db)
            .with_validation(false)
    }
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("aggregator still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Row, Deserialize)]
struct PaymentCell {
    window: u32,
    payer: String,
    payee: String,
    method: String,
    channel: String,
    currency: String,
    payments: u64,
    amount_minor: i64,
}

#[derive(Row, Deserialize)]
struct LogisticsCell {
    window: u32,
    origin: String,
    destination: String,
    mode: String,
    delivered: u64,
    on_time: u64,
}

#[derive(Row, Deserialize)]
struct IotCell {
    window: u32,
    kind: String,
    country: String,
    readings: u64,
    excursions: u64,
}

/// Both maps, or the first few keys where they differ.
fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    got: &BTreeMap<K, V>,
    want: &BTreeMap<K, V>,
) -> String {
    let keys: std::collections::BTreeSet<&K> = got.keys().chain(want.keys()).collect();
    keys.into_iter()
        .filter(|k| got.get(k) != want.get(k))
        .take(5)
        .map(|k| format!("{k:?}: got {:?}, want {:?}", got.get(k), want.get(k)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// ClickHouse's merged metrics equal the truth, window by window, key by key.
async fn assert_metrics_match(world: &World, truth: &Truth) {
    let ch = world.client();
    let got: BTreeMap<_, _> = ch
        .query("SELECT toUInt32(window_start) AS window, payer, payee, method, channel, currency, payments, amount_minor FROM trade_corridors_merged")
        .fetch_all::<PaymentCell>()
        .await
        .unwrap()
        .into_iter()
        .map(|c| ((c.window as i64 * 1000, c.payer, c.payee, c.method, c.channel, c.currency), (c.payments, c.amount_minor)))
        .collect();
    let want: BTreeMap<_, _> = truth
        .payments
        .iter()
        .map(|r| {
            let key = (
                r.window_start_ms,
                r.payer.clone(),
                r.payee.clone(),
                r.method.clone(),
                r.channel.clone(),
                r.currency.clone(),
            );
            (key, (r.count, r.amount_minor))
        })
        .collect();
    assert_eq!(got.len(), want.len(), "payment cells");
    assert!(
        got == want,
        "payments differ from the truth:\n{}",
        diff(&got, &want)
    );

    let got: BTreeMap<_, _> = ch
        .query("SELECT toUInt32(window_start) AS window, origin, destination, mode, delivered, on_time FROM logistics_sla_merged WHERE delivered > 0")
        .fetch_all::<LogisticsCell>()
        .await
        .unwrap()
        .into_iter()
        .map(|c| ((c.window as i64 * 1000, c.origin, c.destination, c.mode), (c.delivered, c.on_time)))
        .collect();
    let want: BTreeMap<_, _> = truth
        .logistics
        .iter()
        .filter(|r| r.delivered > 0)
        .map(|r| {
            (
                (
                    r.window_start_ms,
                    r.origin.clone(),
                    r.destination.clone(),
                    r.mode.clone(),
                ),
                (r.delivered, r.on_time),
            )
        })
        .collect();
    assert!(!want.is_empty(), "the scenario should deliver something");
    assert!(
        got == want,
        "logistics differ from the truth:\n{}",
        diff(&got, &want)
    );

    let got: BTreeMap<_, _> = ch
        .query("SELECT toUInt32(window_start) AS window, kind, country, readings, excursions FROM iot_health_merged WHERE readings > 0")
        .fetch_all::<IotCell>()
        .await
        .unwrap()
        .into_iter()
        .map(|c| ((c.window as i64 * 1000, c.kind, c.country), (c.readings, c.excursions)))
        .collect();
    let want: BTreeMap<_, _> = truth
        .iot
        .iter()
        .map(|r| {
            (
                (r.window_start_ms, r.kind.clone(), r.country.clone()),
                (r.readings, r.excursions),
            )
        })
        .collect();
    assert!(
        got == want,
        "IoT differs from the truth:\n{}",
        diff(&got, &want)
    );
}

/// The DLQ count reconcile printed equals what the simulator made bad.
fn assert_dlq_matches(report: &str, truth: &Truth) {
    let in_dlq: u64 = report
        .lines()
        .filter_map(|l| l.split("in DLQ ").nth(1))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum();
    let t = |s: &str| truth.topics[s].poison + truth.topics[s].clock_ahead;
    assert_eq!(
        in_dlq,
        t("payments") + t("iot") + t("logistics"),
        "{report}"
    );
}

fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// A pseudo-random delay from the process id, so runs differ.
fn jitter(salt: u64, from_ms: u64, span_ms: u64) -> u64 {
    let x = (std::process::id() as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(salt.wrapping_mul(1442695040888963407));
    from_ms + (x >> 33) % span_ms
}

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
    let mut a = world.aggregator(&[], "a.log");
    let mut b = world.aggregator(&[], "b.log");
    pause(jitter(7, 1_500, 1_000));
    let mut c = world.aggregator(&[], "c.log"); // a third joins
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

fn terminate(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
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

/// A ClickHouse server of this test's own (Debian's package, the local
/// stack's config template), so stopping it disturbs no other test.
struct PrivateClickHouse {
    child: Option<Child>,
    dir: PathBuf,
    http: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrivateClickHouse {
    fn new(dir: &std::path::Path) -> Self {
        let dir = dir.join("clickhouse");
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (http, tcp) = (free_port(), free_port());
        let root = env!("CARGO_MANIFEST_DIR");
        for file in ["config.xml", "users.xml"] {
            let template =
                std::fs::read_to_string(format!("{root}/deploy/local/clickhouse/{file}")).unwrap();
            let text = template
                .replace("@STACK_DIR@/clickhouse", dir.to_str().unwrap())
                .replace("@STACK_DIR@", dir.to_str().unwrap())
                .replace("@CH_HTTP_PORT@", &http.to_string())
                .replace("@CH_TCP_PORT@", &tcp.to_string());
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

#[tokio::test(flavor = "multi_thread")]
async fn a_clickhouse_outage_loses_nothing() {
    let mut world = World::new("outage");
    let mut ch = PrivateClickHouse::new(&world.dir);
    world.ch_url = ch.url();
    // Topics exist before the aggregator subscribes; records then flow at
    // 800/s for 25 s while ClickHouse goes away for 20 s in the middle.
    let topics = tradewind(&world.args(&["topics"]));
    assert!(topics.status.success(), "{}", text(&topics));
    let mut agg = world.aggregator(&[], "run.log");
    let producer = {
        let w = World {
            prefix: world.prefix.clone(),
            db: world.db.clone(),
            group: world.group.clone(),
            dir: world.dir.clone(),
            ch_url: world.ch_url.clone(),
        };
        std::thread::spawn(move || w.simulate_at(20_000, Some(800)))
    };
    // Stop ClickHouse only once the aggregator has written something, so
    // the outage falls while records flow even on a loaded machine.
    let ch_client = world.client();
    let started = Instant::now();
    loop {
        let written: u64 = ch_client
            .query("SELECT count() FROM ledger")
            .fetch_one()
            .await
            .unwrap_or(0);
        if written > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing written in 60 s"
        );
        pause(200);
    }
    assert!(!producer.is_finished(), "records should still be flowing");
    ch.stop();
    pause(20_000);
    assert!(
        agg.try_wait().unwrap().is_none(),
        "the aggregator died while ClickHouse was down"
    );
    ch.start();
    let truth = producer.join().unwrap();
    let report = world.wait_reconciled(Duration::from_secs(120));
    let log = std::fs::read_to_string(world.dir.join("run.log")).unwrap();
    assert!(
        log.contains("retrying"),
        "the outage should have hit a write"
    );
    terminate(&agg);
    assert!(wait_for(&mut agg, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
}

/// `GET path` on the aggregator's endpoint: (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The values of every sample of `name` (exact metric name) in a scrape.
fn samples(scrape: &str, name: &str) -> Vec<(String, f64)> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            if metric != name {
                return None;
            }
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_dashboard_report_what_happened() {
    let world = World::new("ops");
    let truth = world.simulate(5_000);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut agg = world.aggregator_env(
        &[],
        "run.log",
        &[
            ("TRADEWIND_AGGREGATOR__LISTEN", &listen),
            ("TRADEWIND_AGGREGATOR__STATS_INTERVAL", "500ms"),
        ],
    );
    world.wait_reconciled(Duration::from_secs(120));
    assert_eq!(http_get(port, "/health").0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(port, "/ready").0, "HTTP/1.1 200 OK");
    // Reconcile covers the windowed topics; FX may still be arriving. Poll
    // until every record is counted and the lag of every partition is 0.
    let produced: u64 = truth.topics.values().map(|t| t.records).sum();
    let started = Instant::now();
    let scrape = loop {
        let (status, scrape) = http_get(port, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let consumed: f64 = samples(&scrape, "tradewind_consumed_records_total")
            .iter()
            .map(|s| s.1)
            .sum();
        let lag = samples(&scrape, "tradewind_consumer_lag_records");
        let partitions = lag.iter().filter(|s| s.0.contains("payments")).count();
        if consumed as u64 == produced && partitions >= 2 && lag.iter().all(|s| s.1 == 0.0) {
            break scrape;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "consumed {consumed} of {produced}, lag {lag:?}:\n{scrape}"
        );
        pause(500);
    };
    assert!(!samples(&scrape, "tradewind_restart_backlog_records").is_empty());
    // The scenario started three days ago: watermarks are that far behind.
    let wm = samples(&scrape, "tradewind_watermark_lag_seconds");
    assert!(wm.iter().any(|s| s.0.contains("iot")), "{wm:?}");
    assert!(wm.iter().all(|s| s.1 > 3_600.0), "{wm:?}");
    let dlq: f64 = samples(&scrape, "tradewind_dlq_records_total")
        .iter()
        .map(|s| s.1)
        .sum();
    let t = |s: &str| truth.topics[s].poison + truth.topics[s].clock_ahead;
    assert_eq!(dlq as u64, t("payments") + t("iot") + t("logistics"));
    for histogram in [
        "tradewind_sink_batch_rows_count",
        "tradewind_sink_write_seconds_count",
        "tradewind_end_to_end_latency_seconds_count",
        "tradewind_pipeline_latency_seconds_count",
    ] {
        let n = samples(&scrape, histogram);
        assert!(n.iter().any(|s| s.1 > 0.0), "{histogram}: {n:?}");
    }
    assert!(
        scrape.contains("tradewind_pipeline_latency_seconds_bucket{le=\"0.5\"}"),
        "explicit buckets"
    );
    terminate(&agg);
    assert!(wait_for(&mut agg, Duration::from_secs(30)).success());
    dashboard_matches_the_truth(&world, &truth);
}

/// `tradewind dashboard` over everything aggregated: its totals are the
/// truth's, and the page renders.
fn dashboard_matches_the_truth(world: &World, truth: &Truth) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(world.dir.join("dashboard.log")).unwrap();
    let mut dash = Command::new(env!("CARGO_BIN_EXE_tradewind"))
        .args(world.args(&["dashboard", "--hours", "0", "--listen", &listen]))
        .env("TRADEWIND_CLICKHOUSE__URL", &world.ch_url)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (status, body) = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break http_get(port, "/api/dashboard.json");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dashboard did not start"
        );
        pause(200);
    };
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    let total = |k: &str| d["totals"][k].as_u64().unwrap();
    let payments: u64 = truth.payments.iter().map(|r| r.count).sum();
    assert_eq!(total("payments"), payments);
    assert_eq!(
        total("failed"),
        truth.payments.iter().map(|r| r.failed).sum::<u64>()
    );
    assert_eq!(
        total("delivered"),
        truth.logistics.iter().map(|r| r.delivered).sum::<u64>()
    );
    assert_eq!(
        total("on_time"),
        truth.logistics.iter().map(|r| r.on_time).sum::<u64>()
    );
    assert_eq!(
        total("readings"),
        truth.iot.iter().map(|r| r.readings).sum::<u64>()
    );
    assert_eq!(
        total("excursions"),
        truth.iot.iter().map(|r| r.excursions).sum::<u64>()
    );
    let by_corridor: u64 = d["corridors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["payments"].as_u64().unwrap())
        .sum();
    assert_eq!(by_corridor, payments);
    let by_bar: u64 = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["payments"].as_u64().unwrap())
        .sum();
    assert_eq!(by_bar, payments);
    assert!(d["totals"]["volume_usd"].as_f64().unwrap() > 0.0);
    let (status, page) = http_get(port, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for panel in [
        "Corridor volumes",
        "Payment health",
        "Delivery SLA",
        "Cold chain",
    ] {
        assert!(page.contains(panel), "{panel} missing");
    }
    dash.kill().unwrap();
    dash.wait().unwrap();
}
