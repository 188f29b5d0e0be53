//! The Kafka Streams peer of the peers bench: the same per-minute payments
//! aggregation as a JVM team would write it (`benches/peers/kstreams`,
//! exactly-once v2), fed the protobuf topic the bench pre-produced.
//!
//! The app writes one record per (window, key) update to
//! `<prefix>kstreams_out`: a 13-byte key (window start as big-endian i64,
//! then payer, payee, method, channel and currency as one byte each) and a
//! 56-byte value (count, captured, failed, refunded, sum, min, max as
//! big-endian i64). The bench reads it `read_committed`, keeps the last
//! value per key, and is done when the counts add up to every payment.
//!
//! Latency is measured per payment: from its Kafka record time to the
//! moment the bench reads the first committed update whose count includes
//! it. Updates carry counts, not record ids, so a cell's k-th new payment
//! (in Kafka record time order) counts as visible once the cell's count
//! has grown by k.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tradewind_kafka::{admin, KafkaConfig};
use tradewind_proto::Payment;

use super::Cells;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const KEY_LEN: usize = 13;
const VALUE_LEN: usize = 56;

type Key = [u8; KEY_LEN];
type Agg = [i64; 7];

fn project() -> PathBuf {
    Path::new(ROOT).join("benches/peers/kstreams")
}

fn newest(path: &Path) -> SystemTime {
    let meta = std::fs::metadata(path).expect("a source file of the Kafka Streams peer");
    let mut t = meta.modified().unwrap_or(UNIX_EPOCH);
    if meta.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            t = t.max(newest(&e.path()));
        }
    }
    t
}

/// The app's jar, built with Maven when missing or older than its pom,
/// its Java sources or the protos it is generated from.
pub fn jar() -> PathBuf {
    let dir = project();
    let jar = dir.join("target/tradewind-kstreams-peer.jar");
    let sources = [
        dir.join("pom.xml"),
        dir.join("src"),
        Path::new(ROOT).join("proto/tradewind/v1/common.proto"),
        Path::new(ROOT).join("proto/tradewind/v1/events.proto"),
    ]
    .iter()
    .map(|p| newest(p))
    .max()
    .unwrap();
    let built = std::fs::metadata(&jar).and_then(|m| m.modified()).ok();
    if built.is_none_or(|b| b < sources) || !dir.join("target/lib").is_dir() {
        println!("building the Kafka Streams peer (mvn package)");
        let out = Command::new("mvn")
            .args(["-q", "-B", "-f"])
            .arg(dir.join("pom.xml"))
            .arg("package")
            .output()
            .expect("mvn runs (deploy/local/install.sh installs Maven)");
        assert!(
            out.status.success(),
            "mvn package failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    jar
}

fn stack_dir() -> String {
    std::env::var("TRADEWIND_STACK_DIR").unwrap_or_else(|_| format!("{ROOT}/.stack"))
}

/// The local stack's broker, shared by every run of the bench.
pub fn kafka_pid() -> Option<u32> {
    std::fs::read_to_string(format!("{}/kafka/pid", stack_dir()))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// CPU seconds (user + system) of a process and its waited-for children.
pub fn cpu_tree_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 to 17 of stat (utime, stime, cutime, cstime); `after`
    // starts at field 3.
    (ticks(11) + ticks(12) + ticks(13) + ticks(14)) / 100.0
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn cell_string(key: &Key, agg: &Agg) -> (String, String) {
    let window = i64::from_be_bytes(key[..8].try_into().unwrap());
    let k = format!(
        "{window}\t{}\t{}\t{}\t{}\t{}",
        key[8], key[9], key[10], key[11], key[12]
    );
    let v = agg
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("\t");
    (k, v)
}

/// Latency figures in milliseconds.
pub struct Latency {
    pub records: usize,
    pub p50: i64,
    pub p99: i64,
    pub max: i64,
}

impl Latency {
    fn of(mut ms: Vec<i64>) -> Self {
        ms.sort_unstable();
        let at = |q: f64| {
            ms.get(((ms.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        Latency {
            records: ms.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: ms.last().copied().unwrap_or(0),
        }
    }
}

/// What one catch-up over the pre-produced payments measured.
pub struct CatchUp {
    pub secs: f64,
    /// The JVM's CPU time, children included.
    pub cpu: f64,
    /// The shared broker's CPU time during the run.
    pub broker_cpu: f64,
}

/// The running app and the bench's `read_committed` view of its output.
pub struct Peer {
    child: Child,
    log: PathBuf,
    state_dir: PathBuf,
    k: KafkaConfig,
    input: String,
    output: BaseConsumer,
    started: Instant,
    cells: HashMap<Key, Agg>,
    counted: i64,
    /// While measuring latency: (key, when the bench read it, its count).
    seen: Option<Vec<(Key, i64, i64)>>,
}

impl Peer {
    /// Creates `<prefix>kstreams_out` and starts the app on `input` with a
    /// fresh application id and state directory.
    pub fn start(k: &KafkaConfig, input: &str, threads: u32) -> Peer {
        let jar = jar();
        let out = format!("{}kstreams_out", k.topic_prefix);
        let app_id = format!("{}kstreams", k.topic_prefix);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(admin::ensure_topics(
            k,
            &[(out.clone(), k.partitions.payments)],
        ))
        .unwrap();
        let output: BaseConsumer = k
            .consumer_config()
            .set("group.id", format!("{app_id}-reader"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        super::assign_all(&output, k, &out);
        let state_dir = std::env::temp_dir().join(&app_id);
        let log = std::env::temp_dir().join(format!("{app_id}.log"));
        let started = Instant::now();
        let child = Command::new("java")
            .arg("-jar")
            .arg(&jar)
            .args(["--brokers", &k.brokers, "--input", input, "--output", &out])
            .args([
                "--application-id",
                &app_id,
                "--threads",
                &threads.to_string(),
            ])
            .arg("--state-dir")
            .arg(&state_dir)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("the peer's log file"))
            .spawn()
            .expect("java runs (deploy/local/install.sh installs Java 17)");
        Peer {
            child,
            log,
            state_dir,
            k: k.clone(),
            input: input.into(),
            output,
            started,
            cells: HashMap::new(),
            counted: 0,
            seen: None,
        }
    }

    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "the Kafka Streams peer exited ({status}); {}:\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
    }

    /// Reads at most one committed update.
    fn poll_once(&mut self) {
        let Some(m) = self.output.poll(Duration::from_millis(100)) else {
            return;
        };
        let m = m.expect("reading the peer's output");
        let (Ok(key), Some(value)) = (
            <Key>::try_from(m.key().unwrap_or_default()),
            m.payload().filter(|v| v.len() == VALUE_LEN),
        ) else {
            panic!("an output record not in the peer's layout");
        };
        let mut agg = [0i64; 7];
        for (i, a) in agg.iter_mut().enumerate() {
            *a = i64::from_be_bytes(value[i * 8..i * 8 + 8].try_into().unwrap());
        }
        let before = self.cells.insert(key, agg).map_or(0, |a| a[0]);
        self.counted += agg[0] - before;
        if let Some(seen) = &mut self.seen {
            seen.push((key, now_ms(), agg[0]));
        }
    }

    /// Reads committed updates until the counts add up to `target`.
    fn read_until(&mut self, target: i64, mut tick: impl FnMut()) {
        let deadline = Instant::now() + Duration::from_secs(1800);
        let mut last_check = Instant::now();
        while self.counted < target {
            self.poll_once();
            if last_check.elapsed() >= Duration::from_millis(200) {
                tick();
                self.check_alive();
                last_check = Instant::now();
                assert!(
                    Instant::now() < deadline,
                    "the Kafka Streams peer holds {} of {target}",
                    self.counted
                );
            }
        }
    }

    /// Waits until the output holds every one of `total` payments; times
    /// it from the app's start.
    pub fn catch_up(&mut self, total: i64) -> CatchUp {
        let broker = kafka_pid();
        let broker0 = broker.map_or(0.0, cpu_tree_secs);
        let pid = self.child.id();
        let mut cpu = 0.0;
        self.read_until(total, || cpu = f64::max(cpu, cpu_tree_secs(pid)));
        let secs = self.started.elapsed().as_secs_f64();
        CatchUp {
            secs,
            cpu: cpu.max(cpu_tree_secs(pid)),
            broker_cpu: broker.map_or(0.0, cpu_tree_secs) - broker0,
        }
    }

    /// The final value of every (window, key) in the comparison's terms.
    pub fn cells(&self) -> Cells {
        self.cells.iter().map(|(k, a)| cell_string(k, a)).collect()
    }

    /// Feeds `rate` records/s for `secs` with the bench's scenario while
    /// the app runs, then measures each new payment's latency.
    pub fn latency(
        &mut self,
        rate: u64,
        secs: u64,
        simulate: impl FnOnce(u64, u64) -> Child,
    ) -> Latency {
        let (k, input) = (self.k.clone(), self.input.clone());
        let offsets = || admin::topic_offsets(&k, &input).expect("offsets");
        let before: HashMap<i32, i64> = offsets().iter().map(|p| (p.partition, p.high)).collect();
        let baseline: HashMap<Key, i64> = self.cells.iter().map(|(k, a)| (*k, a[0])).collect();
        self.seen = Some(Vec::new());
        let start = self.counted;
        let mut sim = simulate(rate, secs);
        // Read while the simulator runs; once it is done, read until the
        // counts include every payment it added.
        let target = loop {
            self.poll_once();
            if let Some(status) = sim.try_wait().expect("the latency simulator") {
                assert!(status.success(), "the latency simulator failed");
                let added: i64 = offsets()
                    .iter()
                    .map(|p| p.high - before[&p.partition])
                    .sum();
                break start + added;
            }
        };
        self.read_until(target, || {});
        let seen = self.seen.take().unwrap();

        // The new payments, per cell, in Kafka record time order.
        let reader: BaseConsumer = k
            .consumer_config()
            .set("group.id", format!("{}kstreams-latency", k.topic_prefix))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        let mut left = 0;
        for p in offsets() {
            tpl.add_partition_offset(&input, p.partition, Offset::Offset(before[&p.partition]))
                .unwrap();
            left += p.high - before[&p.partition];
        }
        reader.assign(&tpl).unwrap();
        let mut born: HashMap<Key, Vec<i64>> = HashMap::new();
        while left > 0 {
            let Some(m) = reader.poll(Duration::from_secs(5)) else {
                continue;
            };
            let m = m.unwrap();
            left -= 1;
            let p = Payment::decode(m.payload().unwrap_or_default()).expect("a payment");
            let mut key = [0u8; KEY_LEN];
            key[..8].copy_from_slice(&(p.event_time.div_euclid(60_000) * 60_000).to_be_bytes());
            for (i, v) in [
                p.payer_country,
                p.payee_country,
                p.method,
                p.channel,
                p.currency,
            ]
            .into_iter()
            .enumerate()
            {
                key[8 + i] = v as u8;
            }
            born.entry(key)
                .or_default()
                .push(m.timestamp().to_millis().unwrap_or(0));
        }
        let mut updates: HashMap<Key, Vec<(i64, i64)>> = HashMap::new();
        for (key, at, count) in seen {
            updates.entry(key).or_default().push((at, count));
        }
        let mut ms = Vec::new();
        for (key, mut times) in born {
            times.sort_unstable();
            let base = baseline.get(&key).copied().unwrap_or(0);
            let ups = updates.get(&key).map(Vec::as_slice).unwrap_or_default();
            for (i, t) in times.iter().enumerate() {
                let need = base + i as i64 + 1;
                let at = ups
                    .iter()
                    .find(|(_, c)| *c >= need)
                    .expect("every new payment is counted by some update")
                    .0;
                ms.push(at - t);
            }
        }
        Latency::of(ms)
    }
}

impl Drop for Peer {
    /// SIGTERM (the app closes its streams), SIGKILL after 60 s; then the
    /// local state goes.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// Tradewind's latency at the same load, on topics and a database of its
/// own: one `tradewind aggregate` while `simulate` feeds it; the figures
/// are those the aggregator reports when it leaves (Kafka record time to
/// ClickHouse acknowledgement).
pub fn tradewind_latency(
    exe: &str,
    prefix: &str,
    rate: u64,
    secs: u64,
    simulate: impl FnOnce(u64, u64) -> Child,
) -> Option<Latency> {
    let db = prefix.trim_end_matches('.').to_string();
    let tw = |c: &mut Command| {
        c.args(["--topic-prefix", prefix, "--database", &db])
            .env("TRADEWIND_AGGREGATOR__GROUP_ID", format!("{db}-tw"))
            .env("TRADEWIND_AGGREGATOR__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info,rdkafka=warn")
            .env("NO_COLOR", "1");
    };
    let mut topics = Command::new(exe);
    tw(&mut topics);
    assert!(topics
        .arg("topics")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());
    let log = std::env::temp_dir().join(format!("{db}.log"));
    let mut agg = Command::new(exe);
    tw(&mut agg);
    let mut agg = agg
        .arg("aggregate")
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let ok = simulate(rate, secs).wait().unwrap().success();
    assert!(ok, "the latency simulator failed");
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill")
        .args(["-TERM", &agg.id().to_string()])
        .status();
    let _ = agg.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let line = text.lines().find(|l| l.contains("pipeline latency"))?;
    // Field values, whatever the log's colouring.
    let plain = super::common::plain(line);
    let field = |name: &str| -> Option<i64> {
        let at = plain.find(&format!("{name}="))? + name.len() + 1;
        plain[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some(Latency {
        records: field("records")? as usize,
        p50: field("p50_ms")?,
        p99: field("p99_ms")?,
        max: field("max_ms")?,
    })
}
