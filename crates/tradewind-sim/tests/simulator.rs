//! Scenario validation, determinism and truth consistency of the simulator,
//! without Kafka (the pipeline tests in the workspace root cover Kafka).

use prost::Message;
use tradewind_proto::{IotReading, LogisticsEvent, Milestone, Payment, Stream};
use tradewind_sim::{record_checksum, Generator, Scenario};

const START: i64 = 1_794_355_200_000; // 2026-11-11T00:00:00Z

fn default_text() -> &'static str {
    tradewind_sim::scenario::DEFAULT_SCENARIO
}

fn err_of(text: &str) -> String {
    Scenario::parse(text)
        .expect_err("scenario should be rejected")
        .to_string()
}

#[test]
fn default_scenario_is_valid() {
    let s = Scenario::default_scenario();
    assert!(s.corridors.len() >= 8);
}

#[test]
fn unknown_key_is_an_error_naming_the_key() {
    let text = default_text().replace(
        "duplicate_rate = 0.002",
        "duplicate_rate = 0.002\nduplicat_rate = 0.1",
    );
    let err = err_of(&text);
    assert!(err.contains("duplicat_rate"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn negative_rate_is_rejected_with_a_clear_message() {
    let err =
        err_of(&default_text().replace("events_per_second = 3.35", "events_per_second = -5.0"));
    assert!(
        err.contains("clock.events_per_second must be a positive number"),
        "{err}"
    );
    let err = err_of(&default_text().replace("late_rate = 0.01", "late_rate = -0.01"));
    assert!(
        err.contains("disorder.late_rate must be a probability"),
        "{err}"
    );
}

#[test]
fn empty_corridor_list_is_rejected() {
    // Cut every [[corridors]] table out and declare an empty list instead.
    let text = default_text();
    let head = &text[..text.find("[[corridors]]").unwrap()];
    let tail = &text[text.find("[iot]").unwrap()..];
    let err = err_of(&format!("corridors = []\n{head}{tail}"));
    assert!(
        err.contains("corridors must list at least one corridor"),
        "{err}"
    );
}

#[test]
fn unknown_country_names_the_choices() {
    let err = err_of(&default_text().replace("from = \"JP\"", "from = \"XX\""));
    assert!(err.contains("unknown country \"XX\""), "{err}");
}

#[test]
fn same_seed_gives_byte_identical_records() {
    let s = Scenario::default_scenario();
    let a: Vec<_> = Generator::new(&s, 7, START, false)
        .unwrap()
        .take(20_000)
        .collect();
    let b: Vec<_> = Generator::new(&s, 7, START, false)
        .unwrap()
        .take(20_000)
        .collect();
    assert_eq!(a, b);
    let c: Vec<_> = Generator::new(&s, 8, START, false)
        .unwrap()
        .take(20_000)
        .collect();
    assert_ne!(a, c);
}

#[test]
fn truth_matches_what_the_records_decode_to() {
    // A slow clock so that 60,000 records span more than a day of event time.
    let s = Scenario::parse(
        &default_text()
            .replace("events_per_second = 3.35", "events_per_second = 0.335")
            .replace("fleet_scale = 1.0", "fleet_scale = 0.1"),
    )
    .unwrap();
    let mut g = Generator::new(&s, 11, START, true).unwrap();
    let records: Vec<_> = g.by_ref().take(60_000).collect();
    let truth = g.truth();
    assert_eq!(truth.total_records(), 60_000);

    let mut checksum = [0u64; 4];
    let (mut payments, mut readings, mut delivered, mut poison) = (0u64, 0u64, 0u64, 0u64);
    for r in &records {
        let i = Stream::ALL.iter().position(|s| *s == r.stream).unwrap();
        checksum[i] = checksum[i].wrapping_add(record_checksum(&r.key, &r.payload));
        if r.poison {
            poison += 1;
            assert!(
                Payment::decode(r.payload.as_slice()).is_err(),
                "poison must not decode"
            );
            continue;
        }
        if r.flags.duplicate {
            continue; // each event counts once
        }
        match r.stream {
            Stream::Payments => {
                let p = Payment::decode(r.payload.as_slice()).unwrap();
                assert_eq!(r.key, p.payment_id.to_string().into_bytes());
                payments += 1;
            }
            Stream::Iot => {
                let x = IotReading::decode(r.payload.as_slice()).unwrap();
                readings += !r.flags.clock_ahead as u64;
                assert_eq!(r.key, x.device_id.to_string().into_bytes());
            }
            Stream::Logistics => {
                let e = LogisticsEvent::decode(r.payload.as_slice()).unwrap();
                assert_eq!(r.key, e.shipment_id.to_string().into_bytes());
                delivered += (e.milestone() == Milestone::Delivered) as u64;
            }
            Stream::Fx => {}
        }
    }
    for (i, s) in Stream::ALL.iter().enumerate() {
        assert_eq!(
            truth.topics[s.as_str()].checksum,
            checksum[i],
            "checksum of {s}"
        );
    }
    assert_eq!(
        truth.payments.iter().map(|r| r.count).sum::<u64>(),
        payments
    );
    assert_eq!(truth.iot.iter().map(|r| r.readings).sum::<u64>(), readings);
    assert_eq!(
        truth.logistics.iter().map(|r| r.delivered).sum::<u64>(),
        delivered
    );
    assert_eq!(truth.topics.values().map(|t| t.poison).sum::<u64>(), poison);

    // The disorder knobs all show up in a run of this size.
    let t = |f: fn(&tradewind_sim::TopicTruth) -> u64| truth.topics.values().map(f).sum::<u64>();
    assert!(t(|x| x.late) > 0 && t(|x| x.jittered) > 0 && t(|x| x.duplicates) > 0 && poison > 0);
    // Most domestic deliveries make the one-day promise, and some miss it.
    let (on_time, all) = truth
        .logistics
        .iter()
        .filter(|r| r.origin == r.destination)
        .fold((0, 0), |(a, b), r| (a + r.on_time, b + r.delivered));
    assert!(
        all > 100 && on_time * 100 > all * 80 && on_time < all,
        "{on_time}/{all}"
    );
}

#[test]
fn records_leave_in_report_order_with_disordered_event_times() {
    let s = Scenario::default_scenario();
    let recs: Vec<_> = Generator::new(&s, 3, START, false)
        .unwrap()
        .take(20_000)
        .collect();
    assert!(recs.windows(2).all(|w| w[0].report_ms <= w[1].report_ms));
    let late = recs.iter().filter(|r| r.flags.late).count();
    assert!(late > 0);
}

#[test]
fn truth_counts_exactly_the_records_handed_out_wherever_the_run_stops() {
    // Duplicates and FX ticks make several records at once; a run cut off
    // by a record count must not count the ones it never handed out.
    let s = Scenario::parse(
        &default_text()
            .replace("duplicate_rate = 0.002", "duplicate_rate = 0.3")
            .replace("poison_rate = 0.0005", "poison_rate = 0.1"),
    )
    .unwrap();
    for n in (1..400).step_by(7) {
        let mut g = Generator::new(&s, 5, START, true).unwrap();
        let records: Vec<_> = g.by_ref().take(n).collect();
        let truth = g.truth();
        assert_eq!(truth.total_records(), n as u64, "cut at {n}");
        for stream in Stream::ALL {
            let made = records.iter().filter(|r| r.stream == stream).count() as u64;
            let t = &truth.topics[stream.as_str()];
            assert_eq!(t.records, made, "{} cut at {n}", stream.as_str());
            let dups = records
                .iter()
                .filter(|r| r.stream == stream && r.flags.duplicate)
                .count() as u64;
            assert_eq!(
                t.duplicates,
                dups,
                "{} duplicates cut at {n}",
                stream.as_str()
            );
        }
    }
}

#[test]
fn each_device_reports_on_its_fleet_interval_and_a_few_percent_fall_silent() {
    // One simulated day of the default scenario.
    let s = Scenario::default_scenario();
    let mut g = Generator::new(&s, 5, START, false).unwrap();
    let day = 86_400_000;
    let mut times: std::collections::HashMap<u64, Vec<i64>> = Default::default();
    let (mut iot, mut all) = (0u64, 0u64);
    for r in g.by_ref() {
        if r.report_ms >= START + day {
            break;
        }
        all += 1;
        if r.stream != Stream::Iot || r.poison || r.flags.duplicate {
            continue;
        }
        iot += 1;
        let x = IotReading::decode(r.payload.as_slice()).unwrap();
        // A device's clock may run ahead by a constant and its reports may
        // be late; gaps are between its event times in order.
        times.entry(x.device_id).or_default().push(x.event_time);
    }
    let devices: u32 = s.iot.fleets.iter().map(|f| f.devices).sum();
    assert_eq!(times.len() as u32, devices, "every device reports in a day");
    // The aggregator's default silence gap is 30 minutes.
    let silent = times
        .values_mut()
        .map(|t| {
            t.sort_unstable();
            t.windows(2).any(|w| w[1] - w[0] > 30 * 60_000)
        })
        .filter(|quiet| *quiet)
        .count();
    let share = silent as f64 / devices as f64;
    assert!(
        (0.005..0.05).contains(&share),
        "{silent} of {devices} devices silent in a day"
    );
    let iot_share = iot as f64 / all as f64;
    assert!(
        (0.2..0.45).contains(&iot_share),
        "IoT is {iot} of {all} records"
    );
    eprintln!(
        "one simulated day: {all} records, {iot} readings, {silent} of {devices} devices silent"
    );
}

#[test]
fn scaling_a_scenario_scales_its_record_rate() {
    let s = Scenario::default_scenario();
    let base = s.mean_record_rate(1, START).unwrap();
    // About 496,000 records per simulated day.
    assert!((4.0..8.0).contains(&base), "{base} records/s");
    let tenth = s.scaled(0.1).mean_record_rate(1, START).unwrap();
    let ratio = tenth / base;
    assert!((0.08..0.13).contains(&ratio), "{tenth} vs {base}");
}
