//! Operations: `/health`, `/ready` and `/metrics` of a running aggregator
//! against the truth, then `tradewind dashboard` over what it wrote.

use std::process::Stdio;

use crate::common::Proc;
use std::time::{Duration, Instant};

use tradewind_sim::Truth;

use crate::world::{free_port, pause, terminate, wait_for, World};

/// `GET path` on the aggregator's endpoint: (status line, body).
/// Retries a few times: a loaded machine can drop a fresh connection.
pub fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let attempt = || -> std::io::Result<String> {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(
            sock,
            "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
        )?;
        let mut resp = String::new();
        sock.read_to_string(&mut resp)?;
        Ok(resp)
    };
    let mut tries = 0;
    let resp = loop {
        match attempt() {
            Ok(r) => break r,
            Err(e) if tries < 5 => {
                eprintln!("GET {path} on :{port} failed ({e}); retrying");
                tries += 1;
                pause(300);
            }
            Err(e) => panic!("GET {path} on :{port}: {e}"),
        }
    };
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The values of every sample of `name` (exact metric name) in a scrape.
pub fn samples(scrape: &str, name: &str) -> Vec<(String, f64)> {
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
    let (mut agg, port) = world.aggregator_with_metrics("run.log", "500ms");
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
    // Help text, one topic label style, and a query string is no 404.
    assert!(
        scrape.contains("# HELP tradewind_consumed_records_total Records read from Kafka"),
        "{scrape}"
    );
    for label in scrape.split("topic=\"").skip(1) {
        assert!(label.starts_with(&world.prefix), "topic label {label:.60}");
    }
    assert_eq!(http_get(port, "/metrics?x=1").0, "HTTP/1.1 200 OK");
    // The scenario started three days ago: watermarks are that far behind.
    let wm = samples(&scrape, "tradewind_watermark_lag_seconds");
    assert!(wm.iter().any(|s| s.0.contains("iot")), "{wm:?}");
    assert!(wm.iter().all(|s| s.1 > 3_600.0), "{wm:?}");
    let dlq: f64 = samples(&scrape, "tradewind_dlq_records_total")
        .iter()
        .map(|s| s.1)
        .sum();
    let bad: u64 = truth
        .topics
        .values()
        .map(|t| t.poison + t.clock_ahead)
        .sum();
    assert_eq!(dlq as u64, bad);
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
    let mut dash: Proc = world
        .command(&["dashboard", "--hours", "0", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
        .into();
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
    // Silent devices are distinct devices, never more than the silences.
    let (devices, silences) = (total("silent_devices"), total("silent"));
    assert!(
        devices <= silences,
        "{devices} silent devices, {silences} silences"
    );
    assert_eq!(devices == 0, silences == 0, "{devices} / {silences}");
    // Devices report on their fleet's interval, well inside the silence gap:
    // only the few with a scheduled silence (or lost readings) go quiet.
    let text = std::fs::read_to_string(world.dir.join("scenario.toml")).unwrap();
    let scenario = tradewind_sim::Scenario::parse(&text).unwrap();
    let fleet: f64 = scenario
        .iot
        .fleets
        .iter()
        .map(|f| {
            (f64::from(f.devices) * scenario.iot.fleet_scale)
                .round()
                .max(1.0)
        })
        .sum();
    assert!(
        (devices as f64) < 0.25 * fleet,
        "{devices} of {fleet} devices silent"
    );
    let readings = total("readings");
    assert!(
        silences * 20 < readings,
        "{silences} silences for {readings} readings"
    );
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
    crate::sketches::assert_sketches_match(&d, truth);
    grafana_sql_runs(world);
    dash.kill().unwrap();
    dash.wait().unwrap();
}

/// Every Grafana panel and variable query runs on the test's server over
/// the test's data, as the plugin would send it
/// (`deploy/compose/grafana/check_sql.py`); the current engine runs them
/// in `deploy/check/modern_clickhouse.py`.
fn grafana_sql_runs(world: &World) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/compose/grafana/check_sql.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&world.db)
        .env("CH_URL", &world.ch_url)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "Grafana SQL on the test's server:\n{text}"
    );
    assert!(text.contains("dashboard queries ok"), "{text}");
}
