//! A ClickHouse outage while records flow: a private server of the test's
//! own is stopped for 20 s and started again.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{text, tradewind};
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
        let w = world.clone();
        std::thread::spawn(move || w.simulate_at(20_000, Some(800)))
    };
    // Stop ClickHouse only once the aggregator has written something, so
    // the outage falls while records flow even on a loaded machine.
    world.wait_written().await;
    assert!(!producer.is_finished(), "records should still be flowing");
    ch.stop();
    // Down for 20 s, and on a loaded machine longer if need be, until the
    // aggregator has met the outage (a write failed and is being retried).
    let down = Instant::now();
    let log_path = world.dir.join("run.log");
    let met = || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("retrying")
    };
    while down.elapsed() < Duration::from_secs(20)
        || (!met() && down.elapsed() < Duration::from_secs(90))
    {
        assert!(
            agg.try_wait().unwrap().is_none(),
            "the aggregator died while ClickHouse was down"
        );
        pause(500);
    }
    let outage = down.elapsed();
    ch.start();
    let truth = producer.join().unwrap();
    let report = world.wait_reconciled(Duration::from_secs(120));
    let log = std::fs::read_to_string(world.dir.join("run.log")).unwrap();
    assert!(
        log.contains("retrying"),
        "no write met the {outage:?} outage:\n{log}"
    );
    terminate(&agg);
    assert!(wait_for(&mut agg, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
}
