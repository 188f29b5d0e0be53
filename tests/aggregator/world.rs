//! One test's world: its own topics, database and consumer group, the
//! `tradewind` processes it runs, and the checks of ClickHouse's merged
//! metrics and the DLQ against the simulator's truth.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::Deserialize;
use tradewind_sim::Truth;

use crate::common::{brokers, clickhouse_url, text, tradewind_command, unique, Proc};

/// One test's own topics, database and consumer group.
#[derive(Clone)]
pub struct World {
    pub brokers: String,
    pub prefix: String,
    pub db: String,
    pub group: String,
    pub dir: PathBuf,
    pub ch_url: String,
    pub(crate) _scratch: Arc<Scratch>,
}

/// Removes the world's scratch directory (scenario, truth, process logs)
/// when the last copy of the world goes, unless the test is failing: then
/// the logs stay for the reader.
pub(crate) struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl World {
    pub fn new(tag: &str) -> Self {
        let name = unique(tag);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        // A slow simulated clock (commerce and fleets at 4% of the default)
        // spreads the run over a day or more, so deliveries and SLA
        // breaches happen.
        let scenario = tradewind_sim::scenario::DEFAULT_SCENARIO
            .replace("events_per_second = 3.35", "events_per_second = 0.134")
            .replace("fleet_scale = 1.0", "fleet_scale = 0.04");
        std::fs::write(dir.join("scenario.toml"), scenario).unwrap();
        Self {
            brokers: brokers(),
            prefix: format!("{name}."),
            db: name.clone(),
            group: format!("{name}-group"),
            _scratch: Arc::new(Scratch(dir.clone())),
            dir,
            ch_url: clickhouse_url(),
        }
    }

    pub fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--topic-prefix", &self.prefix, "--database", &self.db];
        v.extend_from_slice(rest);
        v
    }

    pub fn simulate(&self, count: u64) -> Truth {
        self.simulate_at(count, None)
    }

    /// Simulates `count` records, paced at `rate` per second if given.
    pub fn simulate_at(&self, count: u64, rate: Option<u32>) -> Truth {
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
        let out = self.command(&args).output().expect("tradewind runs");
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap()
    }

    /// An aggregator with the world's default identity (`m0`): each one
    /// started this way succeeds the last at once.
    /// `tradewind <args>` against this world's topics, database, group and
    /// servers.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = tradewind_command(&self.args(args));
        c.env("TRADEWIND_KAFKA__BROKERS", &self.brokers)
            .env("TRADEWIND_CLICKHOUSE__URL", &self.ch_url)
            .env("TRADEWIND_AGGREGATOR__GROUP_ID", &self.group);
        c
    }

    pub fn aggregator(&self, extra: &[&str], log: &str) -> Proc {
        self.aggregator_env(extra, log, &[])
    }

    /// An aggregator serving `/metrics` on a port of its own (returned),
    /// with librdkafka statistics every `stats`.
    pub fn aggregator_with_metrics(&self, log: &str, stats: &str) -> (Proc, u16) {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = self.aggregator_env(
            &[],
            log,
            &[
                ("TRADEWIND_AGGREGATOR__LISTEN", &listen),
                ("TRADEWIND_AGGREGATOR__STATS_INTERVAL", stats),
            ],
        );
        (child, port)
    }

    /// An aggregator with its own identity, to run beside others.
    pub fn aggregator_as(&self, instance: &str, log: &str) -> Proc {
        self.aggregator_env(&[], log, &[("TRADEWIND_AGGREGATOR__INSTANCE_ID", instance)])
    }

    /// An aggregator with extra environment (applied last, so it wins).
    /// The process is killed if the test fails before it stops.
    pub fn aggregator_env(&self, extra: &[&str], log: &str, env: &[(&str, &str)]) -> Proc {
        let log = std::fs::File::create(self.dir.join(log)).unwrap();
        self.command(&["aggregate"])
            .args(extra)
            .env("TRADEWIND_AGGREGATOR__LISTEN", "127.0.0.1:0")
            .env("TRADEWIND_AGGREGATOR__SESSION_TIMEOUT", "6s")
            .env("TRADEWIND_AGGREGATOR__INSTANCE_ID", "m0")
            // Late events reach 3h in the scenario; keep them all.
            .env("TRADEWIND_CORE__ALLOWED_LATENESS", "4h")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("aggregator starts")
            .into()
    }

    /// Runs one aggregator until it has been idle for a few seconds.
    pub fn drain(&self, log: &str) {
        let mut child = self.aggregator(&["--exit-when-idle", "4s"], log);
        let status = wait_for(&mut child, Duration::from_secs(240));
        assert!(
            status.success(),
            "aggregator failed; see {}",
            self.dir.join(log).display()
        );
    }

    /// Polls `reconcile` until it reports OK (the group has caught up).
    pub fn wait_reconciled(&self, limit: Duration) -> String {
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

    pub fn try_reconcile(&self) -> (bool, String) {
        let out = self.command(&["reconcile"]).output().unwrap();
        (out.status.success(), text(&out))
    }

    pub fn reconcile(&self) -> String {
        let (ok, report) = self.try_reconcile();
        assert!(ok, "reconcile found differences:\n{report}");
        report
    }

    /// Waits until the aggregator has written to ClickHouse, so a fault
    /// injected next meets a running pipeline even on a loaded machine.
    pub async fn wait_written(&self) {
        let ch = self.client();
        let started = Instant::now();
        loop {
            let written: u64 = ch
                .query("SELECT count() FROM ledger")
                .fetch_one()
                .await
                .unwrap_or(0);
            if written > 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "nothing written in 90 s"
            );
            pause(200);
        }
    }

    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.ch_url)
            .with_database(&self.db)
            .with_validation(false)
    }
}

pub fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
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
pub struct PaymentCell {
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
pub struct LogisticsCell {
    window: u32,
    origin: String,
    destination: String,
    mode: String,
    delivered: u64,
    on_time: u64,
}

#[derive(Row, Deserialize)]
pub struct IotCell {
    window: u32,
    kind: String,
    country: String,
    readings: u64,
    excursions: u64,
}

/// Both maps, or the first few keys where they differ.
pub fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
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
pub async fn assert_metrics_match(world: &World, truth: &Truth) {
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
pub fn assert_dlq_matches(report: &str, truth: &Truth) {
    assert_dlq_holds(report, truth, 0);
}

/// The DLQ count reconcile printed equals what the simulator made bad,
/// plus `extra` records the test made bad by hand.
pub fn assert_dlq_holds(report: &str, truth: &Truth, extra: u64) {
    let in_dlq: u64 = report
        .lines()
        .filter_map(|l| l.split("in DLQ ").nth(1))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum();
    let bad: u64 = truth
        .topics
        .values()
        .map(|t| t.poison + t.clock_ahead)
        .sum();
    assert_eq!(in_dlq, bad + extra, "{report}");
}

/// Fails unless `child` is still running; `log` names its log file.
pub fn assert_alive(world: &World, child: &mut Child, log: &str) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "the aggregator exited; see {}",
        world.dir.join(log).display()
    );
}

pub fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// A pseudo-random delay from the process id, so runs differ.
pub fn jitter(salt: u64, from_ms: u64, span_ms: u64) -> u64 {
    let x = (std::process::id() as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(salt.wrapping_mul(1442695040888963407));
    from_ms + (x >> 33) % span_ms
}

pub fn terminate(child: &Child) {
    signal(child, "TERM");
}

/// `kill -<sig> <child>`.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A local-stack template (`deploy/local/<file>`) filled in for a private
/// server of a test under `dir`. `values` gives the ports; every secured
/// listener gets a free port of its own and the local stack's TLS material
/// (the tests never log in as the TLS users, so their password hash is a
/// placeholder).
pub fn render_stack_template(
    file: &str,
    dir: &std::path::Path,
    values: &[(&str, String)],
) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let stack = std::env::var("TRADEWIND_STACK_DIR").unwrap_or_else(|_| format!("{root}/.stack"));
    let tls = std::env::var("TRADEWIND_TLS_DIR").unwrap_or_else(|_| format!("{stack}/tls"));
    let env_or = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.into());
    let mut text = std::fs::read_to_string(format!("{root}/deploy/local/{file}")).unwrap();
    let dir = dir.to_str().unwrap();
    let mut all: Vec<(&str, String)> = values.to_vec();
    all.extend([
        ("@STACK_DIR@/kafka", dir.to_string()),
        ("@STACK_DIR@/clickhouse", dir.to_string()),
        ("@STACK_DIR@", dir.to_string()),
        ("@TLS_DIR@", tls),
        (
            "@TLS_STORE_PASSWORD@",
            env_or("TLS_STORE_PASSWORD", "tradewind-local"),
        ),
        ("@KAFKA_SSL_PORT@", free_port().to_string()),
        ("@KAFKA_SASL_PORT@", free_port().to_string()),
        ("@CH_HTTPS_PORT@", free_port().to_string()),
        ("@KAFKA_SASL_USER@", env_or("KAFKA_SASL_USER", "tradewind")),
        (
            "@KAFKA_SASL_PASSWORD@",
            env_or("KAFKA_SASL_PASSWORD", "tradewind-secret"),
        ),
        ("@CH_TLS_USER@", env_or("CH_TLS_USER", "tradewind_tls")),
        ("@CH_TLS_PASSWORD_SHA256@", "0".repeat(64)),
    ]);
    for (placeholder, value) in all {
        text = text.replace(placeholder, &value);
    }
    assert!(
        !text.contains("@STACK_DIR@")
            && !text.lines().any(|l| l.contains("=@") || l.contains(">@")),
        "unfilled placeholder in {file}:\n{text}"
    );
    text
}
