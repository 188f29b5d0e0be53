//! Dashboard response times over real data: a week of the default scenario
//! at its own rate (one simulated day is about 496,000 records), simulated,
//! aggregated, then `tradewind dashboard` asked for the last day and the
//! whole week, with and without a filter. Reports the median and worst of
//! each request (page and JSON) and the per-panel query times the
//! dashboard sends in its `Server-Timing` header.
//!
//!   bash deploy/local/up.sh && cargo bench --bench dashboard
//!   DASHBOARD_BENCH_DAYS=1 cargo bench --bench dashboard
//! It reports numbers; it never fails on speed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_tradewind");
const REPEATS: usize = 7;

fn tw(prefix: &str, db: &str) -> Command {
    let mut c = Command::new(EXE);
    c.args(["--topic-prefix", prefix, "--database", db])
        .env("TRADEWIND_AGGREGATOR__GROUP_ID", format!("{db}-group"))
        .env("TRADEWIND_AGGREGATOR__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    c
}

fn run_ok(mut c: Command) {
    let out = c.output().expect("tradewind runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One GET: (milliseconds, the Server-Timing header, the status line).
fn get(port: u16, path: &str) -> (f64, String, String) {
    let started = Instant::now();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("dashboard");
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).unwrap();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let head = resp.split("\r\n\r\n").next().unwrap_or("");
    let timing = head
        .lines()
        .find_map(|l| l.strip_prefix("server-timing: "))
        .unwrap_or("")
        .to_string();
    (ms, timing, head.lines().next().unwrap_or("").to_string())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("dashboard: bench");
        return;
    }
    let days: u32 = std::env::var("DASHBOARD_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let per_day = 496_000u64;
    let records = per_day * days as u64;
    let name = format!("bench_dash_{}", std::process::id());
    let prefix = format!("{name}.");

    println!("simulating {days} day(s) of the default scenario ({records} records)");
    let t = Instant::now();
    run_ok({
        let mut c = tw(&prefix, &name);
        c.args([
            "simulate",
            "--count",
            &records.to_string(),
            "--start",
            &format!("now-{days}d"),
        ]);
        c
    });
    println!("  {:.1} s", t.elapsed().as_secs_f64());
    println!("aggregating");
    let t = Instant::now();
    run_ok({
        let mut c = tw(&prefix, &name);
        c.args(["aggregate", "--exit-when-idle", "5s"]);
        c
    });
    println!("  {:.1} s", t.elapsed().as_secs_f64());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut dash: Child = tw(&prefix, &name)
        .args(["dashboard", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dashboard");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dashboard did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let requests = [
        ("JSON, last 24 h", "/api/dashboard.json?range=24h"),
        ("page, last 24 h", "/?range=24h"),
        ("JSON, last 7 d", "/api/dashboard.json?range=7d"),
        ("page, last 7 d", "/?range=7d"),
        (
            "JSON, 7 d, CN-DE by card",
            "/api/dashboard.json?range=7d&corridor=CN-DE&method=card",
        ),
    ];
    println!(
        "\n{:<28} {:>10} {:>10}   slowest panels (median ms)",
        "request", "median ms", "max ms"
    );
    for (label, path) in requests {
        let _ = get(port, path); // warm ClickHouse's caches once
        let mut times = Vec::new();
        let mut panels: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for _ in 0..REPEATS {
            let (ms, timing, status) = get(port, path);
            assert!(status.contains("200"), "{path}: {status}");
            times.push(ms);
            for part in timing.split(", ").filter(|p| !p.is_empty()) {
                if let Some((panel, dur)) = part.split_once(";dur=") {
                    panels
                        .entry(panel.to_string())
                        .or_default()
                        .push(dur.parse().unwrap_or(0.0));
                }
            }
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        let med = median(&mut times);
        let mut by_panel: Vec<(String, f64)> = panels
            .into_iter()
            .map(|(p, mut v)| (p, median(&mut v)))
            .collect();
        by_panel.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = by_panel
            .iter()
            .take(4)
            .map(|(p, ms)| format!("{p} {ms:.0}"))
            .collect();
        println!("{label:<28} {med:>10.0} {max:>10.0}   {}", top.join(", "));
        if label == "JSON, last 7 d" {
            println!("  every panel, 7 d (median ms):");
            for (p, ms) in &by_panel {
                println!("    {p:<16} {ms:>8.1}");
            }
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &dash.id().to_string()])
        .status();
    let _ = dash.wait();
}
