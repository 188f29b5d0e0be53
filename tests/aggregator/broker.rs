//! Broker faults under one running aggregator: a private Kafka broker of
//! the test's own is `kill -9`ed for 20 s, or frozen (SIGSTOP) for 15 s,
//! while records flow. The same aggregator process must heal itself (the
//! test never restarts it) and the totals must stay exact.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::text;
use crate::world::{
    assert_alive, assert_dlq_matches, assert_metrics_match, free_port, pause, signal, terminate,
    wait_for, World,
};

/// A single-node KRaft broker of this test's own, from the local stack's
/// jars and config template, so killing it disturbs no other test.
pub struct PrivateKafka {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    jars: String,
}

impl PrivateKafka {
    pub fn new(test_dir: &Path) -> Self {
        let dir = test_dir.join("kafka");
        std::fs::create_dir_all(dir.join("log")).unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        let stack =
            std::env::var("TRADEWIND_STACK_DIR").unwrap_or_else(|_| format!("{root}/.stack"));
        let jars = format!("{stack}/kafka/jars/*");
        let (port, controller) = (free_port(), free_port());
        let props = crate::world::render_stack_template(
            "kafka/server.properties",
            &dir,
            &[
                ("@KAFKA_PORT@", port.to_string()),
                ("@KAFKA_CONTROLLER_PORT@", controller.to_string()),
            ],
        );
        std::fs::write(dir.join("server.properties"), props).unwrap();
        std::fs::copy(
            format!("{root}/deploy/local/kafka/log4j2.yaml"),
            dir.join("log4j2.yaml"),
        )
        .unwrap();
        let mut k = Self {
            child: None,
            dir,
            port,
            jars,
        };
        let id = k.java(&["kafka.tools.StorageTool", "random-uuid"]);
        let id = id.lines().last().unwrap().trim().to_string();
        let props = k.dir.join("server.properties");
        k.java(&[
            "kafka.tools.StorageTool",
            "format",
            "-t",
            &id,
            "-c",
            props.to_str().unwrap(),
        ]);
        k.start();
        k
    }

    fn java_command(&self) -> Command {
        let mut c = Command::new("java");
        c.args(["-Xms256m", "-Xmx512m", "-XX:+UseG1GC"])
            .arg(format!(
                "-Dkafka.logs.dir={}",
                self.dir.join("log").display()
            ))
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.yaml").display()
            ))
            .args(["-cp", &self.jars]);
        c
    }

    fn java(&self, args: &[&str]) -> String {
        let out = self.java_command().args(args).output().expect("java runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let log = self.dir.join("log/server.log");
        let _ = std::fs::write(&log, "");
        let out = std::fs::File::create(self.dir.join("log/stdout.log")).unwrap();
        let child = self
            .java_command()
            .arg("kafka.Kafka")
            .arg(self.dir.join("server.properties"))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the broker starts");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let up = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("started (kafka.server");
            if up && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "private Kafka did not start; see {}",
                log.display()
            );
            pause(250);
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Whether the broker process is still there, and the tail of its logs:
    /// printed when a test fails so a broker that fell over says why.
    pub fn diagnosis(&mut self) -> String {
        let state = match self.child.as_mut().map(|c| c.try_wait()) {
            None => "not running (killed by the test)".to_string(),
            Some(Ok(None)) => "running".to_string(),
            Some(Ok(Some(status))) => format!("exited: {status}"),
            Some(Err(e)) => format!("unknown: {e}"),
        };
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        format!(
            "private broker {}: {state}\n--- server.log (tail) ---\n{}\n--- stdout.log (tail) ---\n{}",
            self.brokers(),
            tail("server.log"),
            tail("stdout.log")
        )
    }

    pub fn freeze(&self) {
        signal(self.child.as_ref().unwrap(), "STOP");
    }

    pub fn thaw(&self) {
        signal(self.child.as_ref().unwrap(), "CONT");
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnosis());
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs one aggregator over records flowing at 800/s, applies `fault` to
/// the broker once the aggregator has written, and checks that the same
/// process finishes the work exactly. Returns how long after the fault
/// ended everything was reconciled.
async fn heals_from(tag: &str, fault: impl FnOnce(&mut PrivateKafka)) -> Duration {
    let mut world = World::new(tag);
    let mut kafka = PrivateKafka::new(&world.dir);
    world.brokers = kafka.brokers();
    let topics = world.command(&["topics"]).output().unwrap();
    assert!(topics.status.success(), "{}", text(&topics));
    let mut agg = world.aggregator(&[], "run.log");
    let producer = {
        let w = world.clone();
        std::thread::spawn(move || w.simulate_at(20_000, Some(800)))
    };
    world.wait_written().await;
    fault(&mut kafka);
    let ended = Instant::now();
    assert_alive(&world, &mut agg, "run.log");
    let truth = producer.join().unwrap();
    let report = world.wait_reconciled(Duration::from_secs(240));
    let healed = ended.elapsed();
    assert_alive(&world, &mut agg, "run.log");
    terminate(&agg);
    assert!(wait_for(&mut agg, Duration::from_secs(30)).success());
    assert_metrics_match(&world, &truth).await;
    assert_dlq_matches(&report, &truth);
    eprintln!("{tag}: reconciled {healed:?} after the broker came back");
    healed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_killed_for_20_seconds_is_healed_in_process() {
    heals_from("brokerkill", |kafka| {
        kafka.kill();
        pause(20_000);
        kafka.start();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_frozen_for_15_seconds_is_healed_in_process() {
    heals_from("brokerstop", |kafka| {
        kafka.freeze();
        pause(15_000);
        kafka.thaw();
    })
    .await;
}
