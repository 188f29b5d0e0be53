//! Property tests of the engine against a naive reference written here:
//! random disordered streams over two partitions, with late, too-late and
//! future events, random flush points, hopping and tumbling windows, and a
//! crash at a random point followed by restore and replay.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use tradewind_core::engine::Output;
use tradewind_core::family::{CorridorAgg, CorridorKey, Family, PaymentCorridors};
use tradewind_core::{CoreConfig, Engine, LedgerRow, Reason, SourceMeta};
use tradewind_proto::Payment;

const SIZE: i64 = 10_000;
const DISORDER: i64 = 2_000;
const LATENESS: i64 = 20_000;
const SKEW: i64 = 5_000;
const NO_TIME: i64 = i64::MIN;

fn config(slide: i64) -> CoreConfig {
    CoreConfig {
        window_size: Duration::from_millis(SIZE as u64),
        window_slide: Duration::from_millis(slide as u64),
        allowed_disorder: Duration::from_millis(DISORDER as u64),
        allowed_lateness: Duration::from_millis(LATENESS as u64),
        max_clock_skew: Duration::from_millis(SKEW as u64),
    }
}

#[derive(Debug, Clone)]
struct In {
    partition: i32,
    offset: i64,
    record_time: i64,
    payment: Payment,
}

fn stream() -> impl Strategy<Value = Vec<In>> {
    // (partition, record-time step, event-time delta, key, amount, status)
    prop::collection::vec(
        (
            0..2i32,
            0..400i64,
            -70_000..9_000i64,
            0..4u8,
            1..5_000i64,
            2..5i32,
        ),
        1..400,
    )
    .prop_map(|raw| {
        let mut next_offset = [0i64; 2];
        let mut clock = 1_800_000_000_000i64;
        raw.into_iter()
            .map(|(partition, step, delta, key, amount, status)| {
                clock += step;
                let offset = next_offset[partition as usize];
                next_offset[partition as usize] += 1;
                let payment = Payment {
                    event_time: clock + delta,
                    payer_country: 1 + (key % 2) as i32,
                    payee_country: 1,
                    method: 1 + (key / 2) as i32,
                    channel: 2,
                    currency: 1,
                    amount_minor: amount,
                    status,
                    ..Default::default()
                };
                In {
                    partition,
                    offset,
                    record_time: clock,
                    payment,
                }
            })
            .collect()
    })
}

type RowKey = (i64, CorridorKey, i32);

/// Final rows (highest version wins) and ledger rows, checking on the way
/// that equal versions always carry equal content.
#[derive(Default, Debug, PartialEq)]
struct Final {
    rows: BTreeMap<RowKey, (i64, CorridorAgg)>,
    ledger: BTreeMap<(i32, i64), LedgerRow>,
    rejections: Vec<(i32, i64, Reason)>,
}

impl Final {
    fn absorb(&mut self, out: Output<CorridorKey, CorridorAgg>) {
        for r in out.rows {
            let k = (r.window_start, r.key, r.partition);
            match self.rows.get(&k) {
                Some((v, agg)) if *v == r.version => {
                    assert_eq!(agg, &r.agg, "same version, different content: {k:?}")
                }
                Some((v, _)) if *v > r.version => {}
                _ => {
                    self.rows.insert(k, (r.version, r.agg));
                }
            }
        }
        for l in out.ledger {
            let k = (l.partition, l.window_start);
            match self.ledger.get(&k) {
                Some(old) if old.version() == l.version() => assert_eq!(old, &l, "ledger {k:?}"),
                Some(old) if old.version() > l.version() => {}
                _ => {
                    self.ledger.insert(k, l);
                }
            }
        }
        self.rejections.extend(
            out.rejections
                .into_iter()
                .map(|r| (r.partition, r.offset, r.reason)),
        );
    }

    fn aggs(&self) -> BTreeMap<RowKey, CorridorAgg> {
        self.rows
            .iter()
            .map(|(k, (_, a))| (k.clone(), a.clone()))
            .collect()
    }
}

/// The reference: no state is ever freed, every rule spelled out directly.
fn reference(
    events: &[In],
    slide: i64,
) -> (
    BTreeMap<RowKey, CorridorAgg>,
    BTreeMap<(i32, i64), LedgerRow>,
    Vec<(i32, i64, Reason)>,
) {
    let mut rows: BTreeMap<RowKey, CorridorAgg> = BTreeMap::new();
    let mut rejections = Vec::new();
    let mut frontier = [NO_TIME; 2];
    // (partition, offset, ledger window after the event, outcome)
    let mut trail: Vec<(i32, i64, i64, Option<Reason>, bool)> = Vec::new();
    for e in events {
        let p = e.partition as usize;
        let et = e.payment.event_time;
        let wm = if frontier[p] == NO_TIME {
            None
        } else {
            Some(frontier[p] - DISORDER)
        };
        let last_start = et.div_euclid(slide) * slide;
        let first_start = last_start - SIZE + slide;
        let outcome = if et > e.record_time + SKEW {
            Some(Reason::FutureTimestamp)
        } else if wm.is_some_and(|wm| first_start + SIZE + LATENESS <= wm) {
            Some(Reason::TooLate)
        } else {
            None
        };
        let late = outcome.is_none() && wm.is_some_and(|wm| first_start + SIZE <= wm);
        if outcome.is_none() {
            let mut s = first_start;
            while s <= last_start {
                PaymentCorridors::fold(
                    rows.entry((s, PaymentCorridors::key(&e.payment), e.partition))
                        .or_default(),
                    &e.payment,
                );
                s += slide;
            }
            frontier[p] = frontier[p].max(et);
        } else {
            rejections.push((e.partition, e.offset, outcome.unwrap()));
        }
        let w = if frontier[p] == NO_TIME {
            NO_TIME
        } else {
            frontier[p].div_euclid(SIZE) * SIZE
        };
        trail.push((e.partition, e.offset, w, outcome, late));
    }
    let mut ledger: BTreeMap<(i32, i64), LedgerRow> = BTreeMap::new();
    for part in 0..2 {
        let mine: Vec<_> = trail.iter().filter(|t| t.0 == part).collect();
        let first_real = mine
            .iter()
            .map(|t| t.2)
            .find(|w| *w != NO_TIME)
            .unwrap_or(NO_TIME);
        for (_, offset, w, outcome, late) in mine {
            let w = if *w == NO_TIME { first_real } else { *w };
            let r = ledger.entry((part, w)).or_insert_with(|| LedgerRow {
                partition: part,
                window_start: w,
                first_offset: *offset,
                ..Default::default()
            });
            r.seen += 1;
            r.last_offset = *offset;
            match outcome {
                None => {
                    r.aggregated += 1;
                    r.corrected_late += *late as u64;
                }
                Some(Reason::TooLate) => r.too_late += 1,
                Some(Reason::FutureTimestamp) => r.future_timestamp += 1,
            }
        }
    }
    // A partition that never accepted anything has no window to book into.
    ledger.retain(|k, _| k.1 != NO_TIME);
    (rows, ledger, rejections)
}

fn meta(e: &In) -> SourceMeta {
    SourceMeta {
        partition: e.partition,
        offset: e.offset,
        record_time_ms: e.record_time,
    }
}

fn run(events: &[In], slide: i64, flushes: &[bool]) -> Final {
    let mut engine: Engine<PaymentCorridors> = Engine::new(&config(slide)).unwrap();
    let mut fin = Final::default();
    for (i, e) in events.iter().enumerate() {
        engine.process(meta(e), &e.payment);
        if flushes.get(i).copied().unwrap_or(false) {
            engine.flush();
        }
        fin.absorb(engine.take_output());
    }
    engine.flush();
    fin.absorb(engine.take_output());
    fin
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn engine_matches_the_reference(events in stream(), hopping in any::<bool>(), flushes in prop::collection::vec(prop::bool::weighted(0.1), 400)) {
        let slide = if hopping { SIZE / 2 } else { SIZE };
        let fin = run(&events, slide, &flushes);
        let (rows, ledger, rejections) = reference(&events, slide);
        prop_assert_eq!(fin.aggs(), rows);
        prop_assert_eq!(&fin.ledger, &ledger);
        prop_assert_eq!(&fin.rejections, &rejections);
    }

    #[test]
    fn crash_restore_replay_gives_the_same_final_rows(events in stream(), hopping in any::<bool>(), cut in 0.0..1.0f64) {
        let slide = if hopping { SIZE / 2 } else { SIZE };
        let whole = run(&events, slide, &[]);
        let k = ((events.len() as f64) * cut) as usize;

        // First life: up to the cut, then flush, acknowledge, checkpoint, crash.
        let mut a: Engine<PaymentCorridors> = Engine::new(&config(slide)).unwrap();
        let mut fin = Final::default();
        for e in &events[..k] {
            a.process(meta(e), &e.payment);
        }
        a.flush();
        fin.absorb(a.take_output());
        let checkpoints: BTreeMap<i32, _> = (0..2).filter_map(|p| a.checkpoint(p).map(|c| (p, c))).collect();
        drop(a);

        // Second life: restore from the metadata string, replay from the restart offsets.
        let mut b: Engine<PaymentCorridors> = Engine::new(&config(slide)).unwrap();
        for (p, cp) in &checkpoints {
            let cp = tradewind_core::Checkpoint::from_metadata(&cp.to_metadata()).unwrap();
            b.restore(*p, &cp);
        }
        for e in &events {
            let start = checkpoints.get(&e.partition).map(|c| c.restart_offset).unwrap_or(0);
            if e.offset >= start {
                b.process(meta(e), &e.payment);
                fin.absorb(b.take_output());
            }
        }
        b.flush();
        fin.absorb(b.take_output());

        prop_assert_eq!(fin.aggs(), whole.aggs());
        prop_assert_eq!(&fin.ledger, &whole.ledger);
        // Every rejection exactly once across both lives.
        let mut got = fin.rejections.clone();
        got.sort();
        let mut want = whole.rejections.clone();
        want.sort();
        prop_assert_eq!(got.len(), got.iter().collect::<BTreeSet<_>>().len());
        prop_assert_eq!(got, want);
    }
}

#[test]
fn window_state_is_freed_after_lateness() {
    let mut engine: Engine<PaymentCorridors> = Engine::new(&config(SIZE)).unwrap();
    for i in 0..10_000i64 {
        let t = 1_800_000_000_000 + i * 1_000;
        let p = Payment {
            event_time: t,
            currency: 1,
            status: 2,
            amount_minor: 5,
            ..Default::default()
        };
        engine.process(
            SourceMeta {
                partition: 0,
                offset: i,
                record_time_ms: t,
            },
            &p,
        );
        engine.take_output();
    }
    // Only the windows within disorder + lateness of the frontier remain.
    assert!(
        engine.live_windows() <= ((DISORDER + LATENESS) / SIZE + 2) as usize,
        "{}",
        engine.live_windows()
    );
}

#[test]
fn config_rejects_a_slide_that_does_not_divide_the_size() {
    let cfg = CoreConfig {
        window_slide: Duration::from_millis(3_000),
        ..config(SIZE)
    };
    let err = Engine::<PaymentCorridors>::new(&cfg)
        .err()
        .expect("rejected")
        .to_string();
    assert!(err.contains("must divide"), "{err}");
}
