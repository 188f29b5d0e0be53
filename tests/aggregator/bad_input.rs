//! Hand-made bad records produced to a real broker next to a simulated
//! run: implausible values, an empty payload, FX poison, and a partition
//! that only ever holds rejections. Each must be dead-lettered with the
//! right reason (and field), counted nowhere, and `reconcile` must say OK.
//! Then a second pipeline (its own group and database) reads the same
//! topics: the shared DLQ must not confuse either pipeline's reconcile.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use tradewind_proto::{
    label_of, Country, Currency, FxRate, LogisticsEvent, Milestone, Payment, PaymentChannel,
    PaymentMethod,
};

use tradewind_sim::truth::PaymentRow;

use crate::world::{assert_dlq_holds, assert_metrics_match, terminate, wait_for, World};

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn payment(amount_minor: i64, event_time: i64) -> Vec<u8> {
    Payment {
        payment_id: 424_242,
        event_time,
        method: 1,
        channel: 1,
        payer_country: 1,
        payee_country: 1,
        currency: 1,
        amount_minor,
        status: 2,
        ..Default::default()
    }
    .encode_to_vec()
}

/// (topic suffix, partition, key, payload, expected reason, expected field)
type Bad = (
    &'static str,
    i32,
    &'static str,
    Option<Vec<u8>>,
    &'static str,
    &'static str,
);

fn bad_records() -> Vec<Bad> {
    let t = now_ms() - DAY_MS;
    let delivered = LogisticsEvent {
        shipment_id: 77,
        event_time: t,
        mode: 1,
        origin_country: 1,
        destination_country: 1,
        milestone: Milestone::Delivered as i32,
        created_time: 0,
        ..Default::default()
    };
    let fx = |rate_e9: i64, event_time: i64| {
        FxRate {
            base: 1,
            quote: 2,
            rate_e9,
            event_time,
        }
        .encode_to_vec()
    };
    vec![
        (
            "payments",
            0,
            "bad-max-1",
            Some(payment(i64::MAX, t)),
            "invalid",
            "amount_minor",
        ),
        (
            "payments",
            0,
            "bad-max-2",
            Some(payment(i64::MAX, t)),
            "invalid",
            "amount_minor",
        ),
        (
            "payments",
            0,
            "bad-negative",
            Some(payment(-5, t)),
            "invalid",
            "amount_minor",
        ),
        (
            "payments",
            0,
            "bad-zero",
            Some(payment(0, t)),
            "invalid",
            "amount_minor",
        ),
        (
            "payments",
            0,
            "bad-1969",
            Some(payment(100, -1)),
            "invalid",
            "event_time",
        ),
        (
            "payments",
            0,
            "bad-empty",
            Some(Vec::new()),
            "invalid",
            "payment_id",
        ),
        (
            "payments",
            0,
            "bad-tombstone",
            None,
            "invalid",
            "payment_id",
        ),
        (
            "logistics",
            0,
            "bad-transit",
            Some(delivered.encode_to_vec()),
            "invalid",
            "created_time",
        ),
        ("fx", 0, "bad-fx-rate", Some(fx(1, t)), "invalid", "rate_e9"),
        (
            "fx",
            0,
            "bad-fx-2100",
            Some(fx(140_000_000, 4_102_444_800_000)),
            "future_timestamp",
            "",
        ),
        // Logistics partition 4 is added below and only ever gets these.
        (
            "logistics",
            4,
            "bad-only-1",
            Some(vec![0xFF; 16]),
            "malformed",
            "",
        ),
        (
            "logistics",
            4,
            "bad-only-2",
            Some(vec![0x0F, 1, 2]),
            "malformed",
            "",
        ),
    ]
}

fn client(world: &World) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &world.brokers);
    c
}

/// (reason, invalid.field) of every DLQ record whose key starts with "bad-".
fn dlq_verdicts(world: &World, expect: usize) -> BTreeMap<String, (String, String)> {
    let reader: BaseConsumer = client(world)
        .set("group.id", format!("{}-reader", world.group))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    reader
        .subscribe(&[&format!("{}dlq", world.prefix)])
        .unwrap();
    let mut got = BTreeMap::new();
    let started = Instant::now();
    while got.len() < expect && started.elapsed() < Duration::from_secs(60) {
        let Some(Ok(m)) = reader.poll(Duration::from_millis(500)) else {
            continue;
        };
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        if !key.starts_with("bad-") {
            continue;
        }
        let header = |k: &str| {
            m.headers()
                .and_then(|h| {
                    h.iter()
                        .find(|x| x.key == k)
                        .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
                })
                .unwrap_or_default()
        };
        got.insert(key, (header("reason"), header("invalid.field")));
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_records_are_dead_lettered_with_reasons_and_reconcile_stays_ok() {
    let world = World::new("badinput");
    // Records flow; once payments partition 0 holds some, one payment
    // stamped with today's clock (the records are three days old) tries to
    // hijack its watermark: everything after it would be too late.
    let producer = {
        let w = world.clone();
        std::thread::spawn(move || w.simulate_at(20_000, Some(2_000)))
    };
    let hijack_at = now_ms();
    let payments = format!("{}payments", world.prefix);
    let probe: BaseConsumer = client(&world).create().unwrap();
    let started = Instant::now();
    while probe
        .fetch_watermarks(&payments, 0, Duration::from_secs(5))
        .map_or(0, |w| w.1)
        < 100
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no payments");
        std::thread::sleep(Duration::from_millis(100));
    }
    let hijacker: BaseProducer = client(&world).create().unwrap();
    let bytes = payment(1_234, hijack_at);
    hijacker
        .send(
            BaseRecord::to(&payments)
                .key("hijack")
                .partition(0)
                .payload(&bytes),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    hijacker.flush(Duration::from_secs(30)).unwrap();
    let mut truth = producer.join().unwrap();
    // The hijacker is a valid payment: it counts, in its own window.
    truth.payments.push(PaymentRow {
        window_start_ms: hijack_at.div_euclid(60_000) * 60_000,
        payer: label_of::<Country>(1),
        payee: label_of::<Country>(1),
        method: label_of::<PaymentMethod>(1),
        channel: label_of::<PaymentChannel>(1),
        currency: label_of::<Currency>(1),
        count: 1,
        duplicates: 0,
        amount_minor: 1_234,
        captured: 1,
        failed: 0,
        refunded: 0,
    });
    let admin: AdminClient<DefaultClientContext> = client(&world).create().unwrap();
    let logistics = format!("{}logistics", world.prefix);
    for r in admin
        .create_partitions(&[NewPartitions::new(&logistics, 5)], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let producer: BaseProducer = client(&world).create().unwrap();
    let bad = bad_records();
    for (topic, partition, key, payload, _, _) in &bad {
        let topic = format!("{}{topic}", world.prefix);
        let mut rec = BaseRecord::<str, [u8]>::to(&topic)
            .key(*key)
            .partition(*partition);
        if let Some(p) = payload {
            rec = rec.payload(p.as_slice());
        }
        producer.send(rec).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let mut agg = world.aggregator(&[], "run.log");
    let report = world.wait_reconciled(Duration::from_secs(120));
    assert!(report.contains("fx: 1 partitions"), "{report}");
    assert_dlq_holds(&report, &truth, bad.len() as u64);
    assert_metrics_match(&world, &truth).await;
    let verdicts = dlq_verdicts(&world, bad.len());
    for (_, _, key, _, reason, field) in &bad {
        assert_eq!(
            verdicts.get(*key),
            Some(&(reason.to_string(), field.to_string())),
            "{key}"
        );
    }
    // No poisoned quote reached the table the USD figures come from.
    let poisoned: u64 = world
        .client()
        .query("SELECT count() FROM fx_rates WHERE rate_e9 < 1000 OR event_time_ms > ?")
        .bind(now_ms() + DAY_MS)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(poisoned, 0);
    terminate(&agg);
    assert!(wait_for(&mut agg, Duration::from_secs(30)).success());

    // A second pipeline on the same topics: its own group and database.
    let second = World {
        db: format!("{}_second", world.db),
        group: format!("{}-second", world.group),
        ..world.clone()
    };
    let mut agg2 = second.aggregator(&[], "second.log");
    let report2 = second.wait_reconciled(Duration::from_secs(120));
    assert_dlq_holds(&report2, &truth, bad.len() as u64);
    assert_metrics_match(&second, &truth).await;
    // The first pipeline's reconcile is not confused by the second's DLQ records.
    let again = world.reconcile();
    assert_dlq_holds(&again, &truth, bad.len() as u64);
    terminate(&agg2);
    assert!(wait_for(&mut agg2, Duration::from_secs(30)).success());
}
