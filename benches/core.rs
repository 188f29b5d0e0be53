//! Decode + aggregate throughput of the event-time core on one thread:
//! protobuf payments with 10,000 distinct corridor/method/channel/currency
//! keys, decoded with prost and folded by the engine (1-minute tumbling
//! windows, closing and freeing as event time advances).
//!
//!   cargo bench --bench core

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use prost::Message;
use tradewind_core::{CoreConfig, Engine, PaymentCorridors, SourceMeta};
use tradewind_proto::Payment;

const EVENTS: usize = 200_000;

fn payments() -> Vec<Vec<u8>> {
    let start = 1_794_355_200_000i64;
    let mut state = 0x2545F4914F6CDD1Du64;
    (0..EVENTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let k = (state % 10_000) as i32; // 20 x 20 x 5 x 5 keys
            Payment {
                payment_id: i as u64,
                order_id: i as u64,
                // ~3,300 events per simulated minute, a little disordered.
                event_time: start + (i as i64) * 18 - (state % 2_000) as i64,
                payer_country: k % 20,
                payee_country: (k / 20) % 20,
                method: (k / 400) % 5,
                channel: (k / 2_000) % 5,
                currency: 1,
                amount_minor: 100 + (state >> 40) as i64 % 100_000,
                status: 2,
                merchant_category: 1,
                buyer_id: state >> 20,
            }
            .encode_to_vec()
        })
        .collect()
}

fn decode_and_aggregate(c: &mut Criterion) {
    let encoded = payments();
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.bench_function("payments_decode_aggregate_10k_keys", |b| {
        b.iter_batched(
            || Engine::<PaymentCorridors>::new(&CoreConfig::default()).expect("config"),
            |mut engine| {
                for (i, bytes) in encoded.iter().enumerate() {
                    let p = Payment::decode(bytes.as_slice()).expect("valid payment");
                    let meta = SourceMeta {
                        partition: 0,
                        offset: i as i64,
                        record_time_ms: p.event_time,
                    };
                    engine.process(meta, &p);
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

criterion_group!(benches, decode_and_aggregate);
criterion_main!(benches);
