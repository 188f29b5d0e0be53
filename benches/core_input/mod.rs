//! The event streams the core benches feed the engine, shared by
//! `benches/core.rs` (criterion, wall clock) and
//! `benches/core_instructions.rs` (one deterministic run, for callgrind):
//! protobuf-encoded payments, IoT readings and logistics milestones, the
//! same bytes for the same `n` in every run.

#![allow(dead_code)]

use prost::Message;
use tradewind_core::{CoreConfig, Engine, Family, Output, SourceMeta};
use tradewind_proto::{IotReading, LogisticsEvent, Payment};

pub const EVENTS: usize = 200_000;
pub const START: i64 = 1_794_355_200_000;

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

/// `n` payments over 10,000 payer/payee/method/channel keys.
pub fn payments(n: usize) -> Vec<Vec<u8>> {
    let mut rng = XorShift(0x2545F4914F6CDD1D);
    (0..n)
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

/// `n` readings from 20,000 devices.
pub fn readings(n: usize) -> Vec<Vec<u8>> {
    let mut rng = XorShift(0x9E3779B97F4A7C15);
    (0..n)
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

/// `n` milestones of 50,000 shipments in flight.
pub fn milestones(n: usize) -> Vec<Vec<u8>> {
    let mut rng = XorShift(0xD1B54A32D192ED03);
    (0..n)
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

/// The default core config; `TRADEWIND_BENCH_DEDUP=0` turns deduplication
/// off, to measure what it costs.
pub fn bench_config() -> CoreConfig {
    CoreConfig {
        dedup: std::env::var("TRADEWIND_BENCH_DEDUP").map_or(true, |v| v != "0"),
        ..CoreConfig::default()
    }
}

/// Decodes every event and folds it into `engine` (partition 0, offsets
/// in order, record time = event time), taking the output every 4,096
/// events and handing it to `sink`; flushes at the end.
pub fn decode_and_fold<F: Family>(
    engine: &mut Engine<F>,
    family: &F,
    encoded: &[Vec<u8>],
    mut sink: impl FnMut(Output<F::Key, F::Agg>),
) where
    F::Event: Message + Default,
{
    for (i, bytes) in encoded.iter().enumerate() {
        let e = F::Event::decode(bytes.as_slice()).expect("valid event");
        let t = family.event_time(&e);
        engine.process(
            SourceMeta {
                partition: 0,
                offset: i as i64,
                record_time_ms: t,
            },
            &e,
        );
        if i % 4096 == 0 {
            sink(engine.take_output());
        }
    }
    engine.flush();
    sink(engine.take_output());
}
