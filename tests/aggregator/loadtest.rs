//! `tradewind loadtest` against a real broker and server with two
//! aggregator members: a calibration flood, then two short steps. The
//! report must name a verdict, carry one row per step with what was
//! offered and read by both members, CPU and memory of both members (and
//! of no other aggregator running on the host), and the three plots. Every record the load test offered must then be
//! aggregated exactly once: `reconcile` is OK, and the ledger books as
//! duplicates exactly the repeats the simulator runs made, so no step's
//! events were taken as repeats of another step's.

use std::time::Duration;

use crate::common::text;
use crate::world::{free_port, terminate, wait_for, World};

/// Sums the `duplicate` column of a simulator run's closing table.
fn duplicates_in(log: &str) -> u64 {
    log.lines()
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            ["payments", "iot", "logistics", "fx"].contains(&first)
        })
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<u64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_test_over_two_members_reports_its_steps_and_counts_every_record_once() {
    let world = World::new("loadtest");
    let topics = world.command(&["topics"]).output().unwrap();
    assert!(topics.status.success(), "{}", text(&topics));
    let (pa, pb) = (free_port(), free_port());
    let (la, lb) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pb}"));
    let mut a = world.aggregator_env(
        &[],
        "a.log",
        &[
            ("TRADEWIND_AGGREGATOR__LISTEN", &la),
            ("TRADEWIND_AGGREGATOR__STATS_INTERVAL", "1s"),
        ],
    );
    let mut b = world.aggregator_env(
        &[],
        "b.log",
        &[
            ("TRADEWIND_AGGREGATOR__INSTANCE_ID", "m1"),
            ("TRADEWIND_AGGREGATOR__LISTEN", &lb),
            ("TRADEWIND_AGGREGATOR__STATS_INTERVAL", "1s"),
        ],
    );
    let out = world.dir.join("report");
    let scenario = world.dir.join("scenario.toml");
    let run = world
        .command(&[
            "loadtest",
            "--metrics",
            &la,
            "--metrics",
            &lb,
            "--calibrate",
            "5s",
            "--flood-rate",
            "3000",
            "--steps",
            "50,100",
            "--refine",
            "0",
            "--step-duration",
            "6s",
            "--settle",
            "30s",
            "--p99-target",
            "30s",
            "--scenario",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let said = text(&run);
    assert!(run.status.success(), "{said}");
    assert!(said.contains("Highest sustainable rate:"), "{said}");

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| 50% |") && md.contains("| 100% |"), "{md}");
    for plot in ["throughput.svg", "lag.svg", "latency.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("against offered load"),
            "{plot}"
        );
        assert!(md.contains(&format!("]({plot})")), "{md}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{json}");
    for s in steps {
        assert_eq!(s["members"], 2, "both members scraped: {s}");
        assert!(s["offered_rate"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["processed_rate"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["pipeline"]["p50"].as_f64().is_some(), "{s}");
        let members = s["procs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["role"] == "aggregator")
            .count();
        // Both members, and no other aggregator on this host.
        assert_eq!(members, 2, "CPU and memory of both members: {s}");
    }
    assert!(json["setup"]["estimate"].as_f64().unwrap() > 0.0, "{json}");

    // Everything offered is aggregated, each event once.
    world.wait_reconciled(Duration::from_secs(180));
    let mut made = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            made += duplicates_in(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let booked: u64 = world
        .client()
        .query("SELECT toUInt64(sum(duplicate)) FROM ledger FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(booked, made, "duplicates booked vs repeats the runs made");

    for (p, name) in [(&mut a, "a"), (&mut b, "b")] {
        terminate(p);
        assert!(
            wait_for(p, Duration::from_secs(30)).success(),
            "member {name}"
        );
    }
}
