//! The dashboard in a real browser: headless Chromium (Debian's `chromium`
//! and `chromium-driver`, driven over WebDriver) opens the page against a
//! real stack, changes the filter and the time range the way a user
//! would (a select and the apply button, then a range link), and checks
//! that the figures follow: the page's payments equal the simulator's
//! truth for the same corridor and range, and the JSON link carries the
//! selection. Screenshots of each step are kept in
//! `target/test-artefacts/`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tradewind_sim::Truth;

use crate::common::Proc;
use crate::ops::http_get;
use crate::world::{free_port, pause, World};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn artefacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium's flags for a closed, headless machine: no sandbox (tests may
/// run as root), no GPU, and none of the background traffic it would try
/// at start.
fn capabilities() -> serde_json::Map<String, serde_json::Value> {
    let profile = std::env::temp_dir().join(format!("tw-chromium-{}", std::process::id()));
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,2400",
            ]
        }
    });
    caps.as_object().unwrap().clone()
}

/// The payments column of the "Payment health by method" table, summed.
async fn page_payments(c: &Client) -> u64 {
    let cells = c
        .find_all(Locator::Css("#methods tr td:nth-child(2)"))
        .await
        .unwrap();
    let mut sum = 0;
    for cell in cells {
        sum += cell.text().await.unwrap().trim().parse::<u64>().unwrap();
    }
    sum
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(artefacts().join(format!("dashboard-{name}.png")), png).unwrap();
}

/// Payments of the truth for one corridor whose window starts at or after
/// `from_ms`.
fn truth_payments(truth: &Truth, payer: &str, payee: &str, from_ms: i64) -> u64 {
    truth
        .payments
        .iter()
        .filter(|r| r.payer == payer && r.payee == payee && r.window_start_ms >= from_ms)
        .map(|r| r.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_follows_range_and_filter_in_a_real_browser() {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists(),
        "{CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver \
         (bash deploy/local/test.sh does)"
    );
    let world = World::new("browser");
    let truth = world.simulate(6_000);
    let mut agg = world.aggregator(&[], "run.log");
    world.wait_reconciled(Duration::from_secs(120));
    let _ = agg.kill();

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(world.dir.join("dashboard.log")).unwrap();
    let _dash: Proc = world
        .command(&["dashboard", "--hours", "0", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
        .into();
    let driver_port = free_port();
    let _driver: Proc = Command::new(CHROMEDRIVER)
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
        .into();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", driver_port)).is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dashboard or chromedriver did not start"
        );
        pause(200);
    }

    // The busiest corridor and the newest window, from the truth.
    let mut by_corridor = std::collections::BTreeMap::<(String, String), u64>::new();
    for r in &truth.payments {
        *by_corridor
            .entry((r.payer.clone(), r.payee.clone()))
            .or_default() += r.count;
    }
    let ((payer, payee), _) = by_corridor.iter().max_by_key(|(_, n)| **n).unwrap();
    let all: u64 = by_corridor.values().sum();

    let c = ClientBuilder::native()
        .capabilities(capabilities())
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("chromedriver session");
    let base = format!("http://{listen}/");
    c.goto(&base).await.unwrap();
    assert_eq!(page_payments(&c).await, all, "all data, no filter");
    screenshot(&c, "1-all").await;

    // A filter, chosen as a user would: the corridor select, then apply.
    let corridor = format!("{payer}-{payee}");
    c.find(Locator::Css("select#f-corridor"))
        .await
        .unwrap()
        .select_by_value(&corridor)
        .await
        .unwrap();
    c.find(Locator::Id("apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str().contains(&format!("corridor={corridor}")),
        "{url}"
    );
    assert_eq!(
        page_payments(&c).await,
        truth_payments(&truth, payer, payee, 0),
        "filtered on {corridor}"
    );
    screenshot(&c, "2-corridor").await;

    // A time range: the "1 h" link keeps the filter. (The slow-clock
    // world spans several hours, so an hour cuts something off.)
    c.find(Locator::LinkText("1 h"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str().contains("range=1h") && url.as_str().contains(&corridor),
        "{url}"
    );
    // The range ends just after the newest window of any table and spans
    // an hour.
    let (status, body) = http_get(port, "/api/dashboard.json?range=all");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let all_json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let newest_ms = all_json["newest"].as_i64().unwrap() * 1000;
    let from_ms = newest_ms + 1000 - 3_600_000;
    let want = truth_payments(&truth, payer, payee, from_ms);
    assert_eq!(page_payments(&c).await, want, "{corridor}, last hour");
    assert!(
        want < truth_payments(&truth, payer, payee, 0),
        "the range cuts something off"
    );
    screenshot(&c, "3-corridor-1h").await;

    // The JSON link carries the same selection and the same figures.
    let href = c
        .find(Locator::Id("json"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (status, body) = http_get(port, &href);
    assert_eq!(status, "HTTP/1.1 200 OK", "{href}: {body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["totals"]["payments"].as_u64().unwrap(), want, "{href}");

    // A bad parameter is a clear 400, in the browser too.
    c.goto(&format!("{base}?range=soon")).await.unwrap();
    let text = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("90m, 24h, 7d"), "{text}");

    // The page at a phone's width, for the record.
    c.set_window_size(400, 2400).await.unwrap();
    c.goto(&format!("{base}?range=all")).await.unwrap();
    screenshot(&c, "4-narrow").await;
    c.close().await.unwrap();
}
