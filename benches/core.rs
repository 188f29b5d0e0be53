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

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use prost::Message;
use tradewind_core::{CoreConfig, Engine, Family, FxQuotes, PaymentCorridors, SourceMeta};
use tradewind_proto::{FxRate, IotReading, LogisticsEvent, Payment};

const EVENTS: usize = 200_000;
const START: i64 = 1_794_355_200_000;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// ~3,300 events per simulated minute, a little disordered.
fn event_time(i: usize, r: u64) -> i64 {
    START + (i as i64) * 18 - (r % 2_000) as i64
}

fn payments() -> Vec<Vec<u8>> {
    let mut rng = XorShift(0x2545F4914F6CDD1D);
    (0..EVENTS)
        .map(|i| {
            let r = rng.next();
            let k = (r % 10_000) as i32; // 20 x 20 x 5 x 5 keys
            Payment {
                payment_id: i as u64,
                order_id: i as u64,
                event_time: event_time(i, r),
                payer_country: k % 20,
                payee_country: (k / 20) % 20,
                method: (k / 400) % 5,
                channel: (k / 2_000) % 5,
                currency: 1,
                amount_minor: 100 + (r >> 40) as i64 % 100_000,
                status: 2,
                merchant_category: 1,
                buyer_id: r >> 20,
            }
            .encode_to_vec()
        })
        .collect()
}

fn readings() -> Vec<Vec<u8>> {
    let mut rng = XorShift(0x9E3779B97F4A7C15);
    (0..EVENTS)
        .map(|i| {
            let r = rng.next();
            let device = r % 20_000;
            IotReading {
                device_id: device,
                kind: 1 + (device % 4) as i32,
                country: 1 + (device % 6) as i32,
                event_time: event_time(i, r),
                lat_micro_deg: 31_230_000,
                lon_micro_deg: 121_470_000,
                temperature_centi_c: 200 + (r % 700) as i32,
                humidity_permille: 500,
                shock_milli_g: 10,
                battery_permille: (r >> 50) as u32 % 1000,
            }
            .encode_to_vec()
        })
        .collect()
}

fn milestones() -> Vec<Vec<u8>> {
    let mut rng = XorShift(0xD1B54A32D192ED03);
    (0..EVENTS)
        .map(|i| {
            let r = rng.next();
            let shipment = (i / 4) as u64 % 50_000 + (i as u64 / 200_000) * 50_000;
            LogisticsEvent {
                shipment_id: shipment,
                order_id: shipment,
                event_time: event_time(i, r),
                mode: 1 + (r % 4) as i32,
                origin_country: 1 + (shipment % 3) as i32,
                destination_country: 1 + (shipment % 5) as i32,
                milestone: 1 + (i % 4) as i32 + (i % 4 == 3) as i32,
                created_time: event_time(i, r) - (i % 4) as i64 * 3_600_000,
            }
            .encode_to_vec()
        })
        .collect()
}

fn bench_family<F: Family>(c: &mut Criterion, name: &str, encoded: &[Vec<u8>], make: impl Fn() -> F)
where
    F::Event: Message + Default,
{
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(encoded.len() as u64));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter_batched(
            || Engine::new(&bench_config(), make()).expect("config"),
            |mut engine| {
                for (i, bytes) in encoded.iter().enumerate() {
                    let e = F::Event::decode(bytes.as_slice()).expect("valid event");
                    let t = make().event_time(&e);
                    engine.process(
                        SourceMeta {
                            partition: 0,
                            offset: i as i64,
                            record_time_ms: t,
                        },
                        &e,
                    );
                    if i % 4096 == 0 {
                        engine.take_output();
                    }
                }
                engine.flush();
                engine.take_output()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn decode_and_aggregate(c: &mut Criterion) {
    let cfg = CoreConfig::default();
    bench_family(c, "payments_decode_aggregate_10k_keys", &payments(), || {
        PaymentCorridors
    });
    bench_family(c, "iot_decode_aggregate_20k_devices", &readings(), || {
        cfg.iot()
    });
    bench_family(
        c,
        "logistics_decode_aggregate_50k_shipments",
        &milestones(),
        || cfg.logistics(),
    );
}

/// The default core config; `TRADEWIND_BENCH_DEDUP=0` turns deduplication
/// off, to measure what it costs.
fn bench_config() -> CoreConfig {
    CoreConfig {
        dedup: std::env::var("TRADEWIND_BENCH_DEDUP").map_or(true, |v| v != "0"),
        ..CoreConfig::default()
    }
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
