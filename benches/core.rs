//! Decode + aggregate throughput of the event-time core on one thread, per
//! stream, plus memory per live key:
//! - payments with 10,000 distinct payer/payee/method/channel keys;
//! - IoT readings from 20,000 devices (silence timers, HLL of devices);
//! - logistics milestones of 50,000 shipments in flight (SLA timers);
//! - bytes of resident memory per live window key with 1,000,000 keys
//!   (each key's payment is also a remembered identity);
//! - bytes of resident memory per remembered identity (deduplication)
//!   with 1,000,000 FX quotes, which feed no window.
//!
//!   cargo bench --bench core
//!   TRADEWIND_BENCH_DEDUP=0 cargo bench --bench core   # without deduplication

mod core_input;

use core_input::{bench_config, decode_and_fold, milestones, payments, readings, EVENTS, START};
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use prost::Message;
use tradewind_core::{CoreConfig, Engine, Family, FxQuotes, PaymentCorridors, SourceMeta};
use tradewind_proto::{FxRate, Payment};

fn bench_family<F: Family>(c: &mut Criterion, name: &str, encoded: &[Vec<u8>], make: impl Fn() -> F)
where
    F::Event: Message + Default,
{
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(encoded.len() as u64));
    group.sample_size(10);
    let family = make();
    group.bench_function(name, |b| {
        b.iter_batched(
            || Engine::new(&bench_config(), make()).expect("config"),
            |mut engine| {
                let mut last = None;
                decode_and_fold(&mut engine, &family, encoded, |out| last = Some(out));
                last
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn decode_and_aggregate(c: &mut Criterion) {
    let cfg = CoreConfig::default();
    bench_family(
        c,
        "payments_decode_aggregate_10k_keys",
        &payments(EVENTS),
        || PaymentCorridors,
    );
    bench_family(
        c,
        "iot_decode_aggregate_20k_devices",
        &readings(EVENTS),
        || cfg.iot(),
    );
    bench_family(
        c,
        "logistics_decode_aggregate_50k_shipments",
        &milestones(EVENTS),
        || cfg.logistics(),
    );
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Feeds `n` events made by `event(k)` (with their event time, also used as
/// the record time; offset `k`) to a fresh engine of `family`, and prints the growth of
/// resident memory per `unit` (`count(&engine)` of them must be `n`).
fn memory_per<F: Family>(
    name: &str,
    unit: &str,
    family: F,
    n: i64,
    event: impl Fn(i64) -> (F::Event, i64),
    count: impl Fn(&Engine<F>) -> usize,
) {
    let before = resident_bytes();
    let mut engine = Engine::new(&CoreConfig::default(), family).expect("config");
    for k in 0..n {
        let (e, time) = event(k);
        let meta = SourceMeta {
            partition: 0,
            offset: k,
            record_time_ms: time,
        };
        engine.process(meta, &e);
    }
    let after = resident_bytes();
    assert_eq!(count(&engine), n as usize);
    println!(
        "core/{name}: {n} x {unit}, {:.0} bytes per {unit} (resident {} MB -> {} MB)",
        (after.saturating_sub(before)) as f64 / n as f64,
        before / 1_000_000,
        after / 1_000_000
    );
}

/// One window holding 1,000,000 payment keys (100 payers x 100 payees x 100
/// methods), measured as growth of resident memory.
fn memory_per_live_key() {
    memory_per(
        "memory_per_live_key",
        "live key",
        PaymentCorridors,
        1_000_000,
        |k| {
            let p = Payment {
                payment_id: k as u64 + 1,
                event_time: START + 1_000,
                payer_country: (k % 100) as i32,
                payee_country: ((k / 100) % 100) as i32,
                method: (k / 10_000) as i32,
                currency: 1,
                amount_minor: 1_000,
                status: 2,
                ..Default::default()
            };
            (p, START + 1_000)
        },
        |e| e.live_windows(),
    );
}

/// 1,000,000 distinct FX quotes within the dedup horizon: no windows, so
/// the growth of resident memory is the dedup memory (plus one ledger row).
fn memory_per_remembered_id() {
    memory_per(
        "memory_per_remembered_id",
        "identity",
        FxQuotes,
        1_000_000,
        |k| {
            let q = FxRate {
                base: 1,
                quote: 2,
                rate_e9: 140_000_000,
                event_time: START + k,
            };
            (q, START + k)
        },
        |e| e.remembered_ids(),
    );
}

criterion_group!(benches, decode_and_aggregate);

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        memory_per_live_key();
        memory_per_remembered_id();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
