//! `tradewind simulate`: runs the scenario-driven generator and produces its
//! records to Kafka, for a count, a duration or until SIGTERM/Ctrl-C. Two
//! clocks:
//! - **fast** (default): simulated time runs as fast as the producer (or
//!   `--rate`) allows, from the scenario's `clock.start` (`now-6d`): days of
//!   history in minutes, for demos, tests and benches;
//! - **real time** (`--realtime`): simulated time is the wall clock. Each
//!   record is produced once the wall clock reaches the moment it is
//!   reported, so late and jittered records arrive after their event time
//!   as in life, and a stack can run for days without a record from the
//!   future. `--rate` then scales the scenario's volume to about that many
//!   records per second.
//!
//! At the end it prints per-topic stats and, with `--truth`, writes the
//! ground truth of exactly what was produced.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use indicatif::{ProgressBar, ProgressStyle};
use tradewind_kafka::{admin, RecordProducer};
use tradewind_sim::{clock, Generator, Scenario, SimRecord};

use crate::config::AppConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Scenario file (TOML). Defaults to the built-in scenarios/default.toml.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Random seed; overrides the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Start of simulated time (RFC 3339, unix ms, `now`, `now-6d`); overrides the scenario's.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Stop after producing this many records (all topics, duplicates and poison included).
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this much wall-clock time, e.g. `30s`, `5m`.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Target records per second. Fast clock: a cap (omit to produce as fast
    /// as possible). With `--realtime`: the scenario's volume is scaled to
    /// about this many records per second on average.
    #[arg(long, value_parser = parse_rate, allow_hyphen_values = true, value_name = "PER_SEC")]
    pub rate: Option<NonZeroU32>,
    /// Simulated time follows the wall clock, starting now (or at `--start`;
    /// a start in the past is caught up at full speed). Runs until
    /// `--count`, `--duration` or a signal.
    #[arg(long)]
    pub realtime: bool,
    /// Write the ground truth of what was produced to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Override one scenario setting, e.g. `--set disorder.clock_ahead_device_rate=0`
    /// (repeatable; dotted keys as in the scenario file).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Payment, order and shipment ids start after this. Give each run into
    /// the same topics a range of its own (e.g. `--ids-after 1000000000`
    /// for a second run): within the deduplication horizon the aggregator
    /// takes a repeated id as a duplicate.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub ids_after: u64,
}

fn parse_rate(s: &str) -> Result<NonZeroU32, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("rate must be a number of records per second, got {s:?}"))?;
    if !(v >= 1.0 && v <= u32::MAX as f64) {
        return Err(format!(
            "rate must be a positive number of records per second (at least 1), got {s}"
        ));
    }
    Ok(NonZeroU32::new(v as u32).expect("checked above"))
}

/// What a finished run produced.
pub struct RunStats {
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

pub async fn run(cfg: &AppConfig, args: SimulateArgs) -> Result<()> {
    if args.count.is_none() && args.duration.is_none() && !args.realtime {
        bail!("give --count N or --duration D (or both) so the run ends, or --realtime to run until stopped");
    }
    let (text, name) = match &args.scenario {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            tradewind_sim::scenario::DEFAULT_SCENARIO.to_string(),
            "(built-in default)".to_string(),
        ),
    };
    let text = tradewind_sim::overrides::apply(&text, &args.set)
        .with_context(|| format!("scenario {name}"))?;
    let scenario = Scenario::parse(&text).with_context(|| format!("scenario {name}"))?;
    let seed = args.seed.unwrap_or(scenario.seed);
    let default_start = if args.realtime {
        "now".to_string()
    } else {
        scenario.clock.start.clone()
    };
    let start_spec = args.start.clone().unwrap_or(default_start);
    let start_ms = clock::parse_start(&start_spec, clock::wall_now_ms())?;
    let scenario = match (args.realtime, args.rate) {
        (true, Some(rate)) => {
            let base = scenario.mean_record_rate(seed, start_ms)?;
            let factor = f64::from(rate.get()) / base.max(1e-9);
            tracing::info!(
                base_records_per_sec = format!("{base:.1}"),
                factor = format!("{factor:.3}"),
                "scaling the scenario to --rate in real time"
            );
            scenario.scaled(factor)
        }
        _ => scenario,
    };
    let generator = Generator::new(&scenario, seed, start_ms, args.truth.is_some())?
        .with_ids_after(args.ids_after);

    admin::ensure_topics(&cfg.kafka, &cfg.kafka.all_topics())
        .await
        .context("preparing Kafka topics")?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = stop.clone();
    let token = crate::shutdown::on_signal("flushing what is generated, then the truth");
    tokio::spawn(async move {
        token.cancelled().await;
        stop_on_signal.store(true, Ordering::Relaxed);
    });

    let cfg2 = cfg.clone();
    let args2 = args.clone();
    let (generator, stats) =
        tokio::task::spawn_blocking(move || produce(&cfg2, &args2, generator, &stop))
            .await
            .context("producer thread")??;

    print_stats(&generator, &stats, seed, start_ms);
    if let Some(path) = &args.truth {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(file), &generator.truth())?;
        println!("truth written to {}", path.display());
    }
    Ok(())
}

/// Records per hand-over from the generator thread to the producing loop.
const BATCH: usize = 1024;

/// Generates on one thread and produces on this one, so the generator's work
/// overlaps librdkafka's. Every generated record is produced: when the run
/// ends by duration or signal, the generator stops and the loop drains what
/// is already generated, so the truth always matches what reached Kafka.
fn produce(
    cfg: &AppConfig,
    args: &SimulateArgs,
    mut generator: Generator,
    stop: &AtomicBool,
) -> Result<(Generator, RunStats)> {
    let producer = RecordProducer::new(&cfg.kafka)?;
    let topics: Vec<String> = tradewind_proto::Stream::ALL
        .iter()
        .map(|s| cfg.kafka.topic(*s))
        .collect();
    if args.realtime {
        return produce_realtime(&producer, &topics, args, generator, stop);
    }
    let limiter = args.rate.map(|r| RateLimiter::direct(Quota::per_second(r)));
    let clock = DefaultClock::default();
    let bar = match args.count {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} records ({per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let enough = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<SimRecord>>(8);
    let limit = args.count.unwrap_or(u64::MAX);
    let enough_gen = enough.clone();
    let gen_thread = std::thread::Builder::new()
        .name("generator".into())
        .spawn(move || {
            let mut made = 0u64;
            while made < limit && !enough_gen.load(Ordering::Relaxed) {
                let n = (limit - made).min(BATCH as u64) as usize;
                let batch: Vec<SimRecord> = generator.by_ref().take(n).collect();
                made += n as u64;
                if tx.send(batch).is_err() {
                    break;
                }
            }
            generator
        })?;

    let started = Instant::now();
    let (mut produced, mut bytes) = (0u64, 0u64);
    let mut result = Ok(());
    'batches: for batch in rx.iter() {
        for rec in batch {
            if let Some(lim) = &limiter {
                while let Err(not_until) = lim.check() {
                    std::thread::sleep(not_until.wait_time_from(clock.now()));
                }
            }

            if let Err(e) = producer.send(&topics[rec.stream as usize], &rec.key, &rec.payload) {
                result = Err(e);
                enough.store(true, Ordering::Relaxed);
                break 'batches;
            }
            produced += 1;
            bytes += rec.payload.len() as u64;
        }
        bar.set_position(produced);
        if args.duration.is_some_and(|d| started.elapsed() >= d) || stop.load(Ordering::Relaxed) {
            enough.store(true, Ordering::Relaxed);
        }
    }
    drop(rx);
    let generator = gen_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?;
    result.context("producing to Kafka")?;
    bar.finish_and_clear();
    finish(&producer, generator, produced, bytes, started)
}

/// Flushes what is still queued and says what the run produced.
fn finish(
    producer: &RecordProducer,
    generator: Generator,
    records: u64,
    bytes: u64,
    started: Instant,
) -> Result<(Generator, RunStats)> {
    producer.flush_all().context("flushing the producer")?;
    let elapsed = started.elapsed();
    Ok((
        generator,
        RunStats {
            records,
            bytes,
            elapsed,
        },
    ))
}

/// The real-time loop: one thread, one record at a time, each produced once
/// the wall clock reaches its report time. Generation is cheap next to any
/// real-time rate, so nothing is generated ahead: when a signal arrives
/// while waiting, the one record in hand is produced at once (at most one
/// gap early) and the run ends, so the truth matches what reached Kafka.
fn produce_realtime(
    producer: &RecordProducer,
    topics: &[String],
    args: &SimulateArgs,
    mut generator: Generator,
    stop: &AtomicBool,
) -> Result<(Generator, RunStats)> {
    let started = Instant::now();
    let limit = args.count.unwrap_or(u64::MAX);
    let (mut produced, mut bytes) = (0u64, 0u64);
    let mut last_report = Instant::now();
    while produced < limit {
        let Some(rec) = generator.next() else { break };
        // Wait for the record's moment, in short naps so a signal or the
        // duration ends the wait promptly.
        loop {
            let due = rec.report_ms - clock::wall_now_ms();
            let over = args.duration.is_some_and(|d| started.elapsed() >= d);
            if due <= 0 || over || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(due.min(200) as u64));
        }
        producer
            .send(&topics[rec.stream as usize], &rec.key, &rec.payload)
            .context("producing to Kafka")?;
        produced += 1;
        bytes += rec.payload.len() as u64;
        if last_report.elapsed() >= Duration::from_secs(60) {
            tracing::info!(produced, "real-time simulation running");
            last_report = Instant::now();
        }
        let over = args.duration.is_some_and(|d| started.elapsed() >= d);
        if over || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    finish(producer, generator, produced, bytes, started)
}

fn print_stats(g: &Generator, s: &RunStats, seed: u64, start_ms: i64) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    println!(
        "seed {seed}, simulated time {} .. {}",
        fmt_ms(start_ms),
        fmt_ms(g.now_ms())
    );
    println!(
        "{:<10} {:>12} {:>12} {:>10} {:>8} {:>8} {:>8} {:>11}",
        "topic", "records", "bytes", "duplicate", "poison", "late", "jitter", "clock_ahead"
    );
    for (topic, t) in g.topic_stats() {
        println!(
            "{topic:<10} {:>12} {:>12} {:>10} {:>8} {:>8} {:>8} {:>11}",
            t.records, t.bytes, t.duplicates, t.poison, t.late, t.jittered, t.clock_ahead
        );
    }
    println!(
        "TOTAL records={} bytes={} seconds={:.3} events_per_sec={:.0} mb_per_sec={:.2}",
        s.records,
        s.bytes,
        secs,
        s.records as f64 / secs,
        s.bytes as f64 / secs / 1e6
    );
}

fn fmt_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
