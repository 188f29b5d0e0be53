//! Property tests of the engine against a naive reference written here:
//! random disordered streams over two partitions, with late, too-late and
//! future events, random flush points, hopping and tumbling windows, and a
//! crash at a random point followed by restore and replay, from the
//! committed checkpoint alone or from a state snapshot taken at a random
//! point (crashes during the restore's replay included).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use prost::Message as _;
use tradewind_core::family::{Family, TimerOp};
use tradewind_core::{
    Checkpoint, CoreConfig, Engine, IotHealth, LedgerRow, LogisticsSla, Output, PartitionState,
    PaymentCorridors, Persist, Reason, SourceMeta,
};
use tradewind_proto::{DeviceKind, IotReading, LogisticsEvent, Milestone, Payment};

const SIZE: i64 = 10_000;
const DISORDER: i64 = 2_000;
const LATENESS: i64 = 20_000;
const SKEW: i64 = 5_000;
/// Small enough that the streams' jumps (up to ~9 s) meet the guard.
const STEP: i64 = 3_000;
const NO_TIME: i64 = i64::MIN;

fn config(slide: i64) -> CoreConfig {
    CoreConfig {
        window_size: Duration::from_millis(SIZE as u64),
        window_slide: Duration::from_millis(slide as u64),
        allowed_disorder: Duration::from_millis(DISORDER as u64),
        allowed_lateness: Duration::from_millis(LATENESS as u64),
        max_clock_skew: Duration::from_millis(SKEW as u64),
        max_watermark_step: Duration::from_millis(STEP as u64),
        // The reference never forgets an identity.
        dedup_horizon: Some(Duration::from_secs(86_400)),
        ..CoreConfig::default()
    }
}

/// The shortest dedup horizon allowed, so identities are forgotten (and
/// held anchors released) within the streams here.
fn forgetful(slide: i64) -> CoreConfig {
    CoreConfig {
        dedup_horizon: Some(Duration::from_millis((SIZE + LATENESS) as u64)),
        ..config(slide)
    }
}

#[derive(Debug, Clone)]
struct In<E> {
    partition: i32,
    offset: i64,
    record_time: i64,
    event: E,
}

fn payments() -> impl Strategy<Value = Vec<In<Payment>>> {
    // (partition, record-time step, (event-time delta, key, amount, status), id)
    let draw = (
        0..2i32,
        0..400i64,
        (-70_000..9_000i64, 0..4u8, 1..5_000i64, 2..5i32, 1..40u64),
    );
    prop::collection::vec(draw, 1..400).prop_map(|raw| {
        sequence(raw, |_, clock, (delta, key, amount, status, id)| Payment {
            payment_id: id,
            event_time: clock + delta,
            payer_country: 1 + (key % 2) as i32,
            payee_country: 1,
            method: 1 + (key / 2) as i32,
            channel: 2,
            currency: 1,
            amount_minor: amount,
            status,
            ..Default::default()
        })
    })
}

/// Final rows (highest version wins) and ledger rows, checking on the way
/// that equal versions always carry equal content.
#[derive(Debug)]
#[allow(clippy::type_complexity)]
struct Final<F: Family> {
    rows: BTreeMap<(i64, F::Key, i32), (i64, F::Agg)>,
    ledger: BTreeMap<(i32, i64), LedgerRow>,
    rejections: Vec<(i32, i64, Reason)>,
}

impl<F: Family> Default for Final<F> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            ledger: BTreeMap::new(),
            rejections: Vec::new(),
        }
    }
}

impl<F: Family> Final<F> {
    fn absorb(&mut self, out: Output<F::Key, F::Agg>) {
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

    fn aggs(&self) -> BTreeMap<(i64, F::Key, i32), F::Agg> {
        self.rows
            .iter()
            .map(|(k, (_, a))| (k.clone(), a.clone()))
            .collect()
    }
}

/// Naive timer state: entities are never forgotten.
#[derive(Default)]
struct RefEntity {
    deadline: i64,
    armed: bool,
}

/// The reference: no state is ever freed and every rule is spelled out
/// directly. It reuses only the family's pure parts (key, fold, timer op).
#[allow(clippy::type_complexity)]
fn reference<F: Family>(
    family: &F,
    events: &[In<F::Event>],
    slide: i64,
) -> (
    BTreeMap<(i64, F::Key, i32), F::Agg>,
    BTreeMap<(i32, i64), LedgerRow>,
    Vec<(i32, i64, Reason)>,
) {
    let mut rows: BTreeMap<(i64, F::Key, i32), F::Agg> = BTreeMap::new();
    let mut rejections = Vec::new();
    let mut frontier = [NO_TIME; 2];
    let mut entities: [BTreeMap<u64, (RefEntity, Option<F::Timer>)>; 2] =
        [BTreeMap::new(), BTreeMap::new()];
    let windows_of = |time: i64| {
        let last = time.div_euclid(slide) * slide;
        (last - SIZE + slide..=last).step_by(slide as usize)
    };
    let mut trail: Vec<(i32, i64, i64, Option<Reason>, bool, bool)> = Vec::new();
    // Identities seen per partition: nothing is ever forgotten here.
    let mut seen: [BTreeSet<u64>; 2] = [BTreeSet::new(), BTreeSet::new()];
    for e in events {
        let p = e.partition as usize;
        let et = family.event_time(&e.event);
        let wm = if frontier[p] == NO_TIME {
            None
        } else {
            Some(frontier[p] - DISORDER)
        };
        let first_start = windows_of(et).next().unwrap();
        let outcome = if et > e.record_time + SKEW {
            Some(Reason::FutureTimestamp)
        } else if wm.is_some_and(|wm| first_start + SIZE + LATENESS <= wm) {
            Some(Reason::TooLate)
        } else {
            None
        };
        let late = outcome.is_none() && wm.is_some_and(|wm| first_start + SIZE <= wm);
        // A repeat is accepted in every way but the windows.
        let dup = outcome.is_none()
            && family
                .identity(&e.event)
                .is_some_and(|id| !seen[p].insert(id));
        match outcome {
            None => {
                if let Some(key) = family.key(&e.event).filter(|_| !dup) {
                    for s in windows_of(et) {
                        family.fold(
                            rows.entry((s, key.clone(), e.partition)).or_default(),
                            &e.event,
                        );
                    }
                }
                let w = wm.unwrap_or(NO_TIME);
                match family.timer_op(&e.event) {
                    TimerOp::None => {}
                    TimerOp::Arm {
                        id,
                        deadline,
                        timer,
                    } => {
                        if !entities[p].contains_key(&id) && deadline > w {
                            entities[p].insert(
                                id,
                                (
                                    RefEntity {
                                        deadline,
                                        armed: true,
                                    },
                                    Some(timer),
                                ),
                            );
                        }
                    }
                    TimerOp::Extend {
                        id,
                        deadline,
                        timer,
                    } => {
                        let newer = entities[p]
                            .get(&id)
                            .is_none_or(|(x, _)| deadline > x.deadline);
                        if newer && deadline > w {
                            entities[p].insert(
                                id,
                                (
                                    RefEntity {
                                        deadline,
                                        armed: true,
                                    },
                                    Some(timer),
                                ),
                            );
                        }
                    }
                    TimerOp::Disarm { id, deadline } => match entities[p].get_mut(&id) {
                        Some((x, _)) => x.armed = false,
                        None if deadline > w => {
                            entities[p].insert(
                                id,
                                (
                                    RefEntity {
                                        deadline,
                                        armed: false,
                                    },
                                    None,
                                ),
                            );
                        }
                        None => {}
                    },
                }
                // The outlier guard: at most STEP past the old frontier.
                frontier[p] = if frontier[p] == NO_TIME {
                    et
                } else {
                    frontier[p].max(et.min(frontier[p] + STEP))
                };
                let wm_after = frontier[p] - DISORDER;
                let mut due: Vec<(i64, u64)> = entities[p]
                    .iter()
                    .filter(|(_, (x, _))| x.armed && x.deadline <= wm_after)
                    .map(|(id, (x, _))| (x.deadline, *id))
                    .collect();
                due.sort();
                for (deadline, id) in due {
                    let (x, timer) = entities[p].get_mut(&id).unwrap();
                    x.armed = false;
                    let timer = timer.clone().unwrap();
                    for s in windows_of(deadline) {
                        family.fold_timer(
                            rows.entry((s, family.timer_key(&timer), e.partition))
                                .or_default(),
                            &timer,
                        );
                    }
                }
            }
            Some(r) => rejections.push((e.partition, e.offset, r)),
        }
        let w = if frontier[p] == NO_TIME {
            NO_TIME
        } else {
            frontier[p].div_euclid(SIZE) * SIZE
        };
        trail.push((e.partition, e.offset, w, outcome, late, dup));
    }
    let mut ledger: BTreeMap<(i32, i64), LedgerRow> = BTreeMap::new();
    for part in 0..2 {
        let mine: Vec<_> = trail.iter().filter(|t| t.0 == part).collect();
        for (_, offset, w, outcome, late, dup) in mine {
            // Before the first accepted event: the epoch's row.
            let w = if *w == NO_TIME { 0 } else { *w };
            let r = ledger.entry((part, w)).or_insert_with(|| LedgerRow {
                partition: part,
                window_start: w,
                first_offset: *offset,
                ..Default::default()
            });
            r.seen += 1;
            r.last_offset = *offset;
            match outcome {
                None if *dup => r.duplicate += 1,
                None => {
                    r.aggregated += 1;
                    r.corrected_late += *late as u64;
                }
                Some(Reason::TooLate) => r.too_late += 1,
                Some(Reason::FutureTimestamp) => r.future_timestamp += 1,
                Some(other) => unreachable!("the streams here decode: {other:?}"),
            }
        }
    }
    (rows, ledger, rejections)
}

fn meta<E>(e: &In<E>) -> SourceMeta {
    SourceMeta {
        partition: e.partition,
        offset: e.offset,
        record_time_ms: e.record_time,
    }
}

fn run<F: Family>(
    cfg: &CoreConfig,
    family: F,
    events: &[In<F::Event>],
    flushes: &[bool],
) -> Final<F> {
    let mut engine = Engine::new(cfg, family).unwrap();
    let mut fin = Final::default();
    for (i, e) in events.iter().enumerate() {
        engine.process(meta(e), &e.event);
        if flushes.get(i).copied().unwrap_or(false) {
            engine.flush();
        }
        fin.absorb(engine.take_output());
    }
    engine.flush();
    fin.absorb(engine.take_output());
    fin
}

/// Lives of an engine: each one restores from the previous checkpoints,
/// replays from the restart offsets up to its cut (a global event index,
/// possibly before the previous life's: a crash during replay), flushes,
/// checkpoints and "crashes". The last life runs to the end.
///
/// A life given a snapshot point also snapshots every partition there
/// (after a flush, with the checkpoint committed beside it, as the
/// aggregator does), and a later life restores from the newest snapshot
/// whenever it starts later than the checkpoint's restart offset. The
/// snapshot goes through its prost encoding.
fn crash_and_replay<F: Family + Persist>(
    cfg: &CoreConfig,
    make: impl Fn() -> F,
    events: &[In<F::Event>],
    cuts: &[(usize, Option<usize>)],
) -> Final<F> {
    let mut fin = Final::default();
    let mut checkpoints: BTreeMap<i32, Checkpoint> = BTreeMap::new();
    let mut snapshots: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
    let lives = cuts
        .iter()
        .map(|(cut, snap)| (Some(*cut), *snap))
        .chain([(None, None)]);
    for (cut, snap_at) in lives {
        let mut engine = Engine::new(cfg, make()).unwrap();
        let mut start: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, cp) in &checkpoints {
            let cp = Checkpoint::from_metadata(&cp.to_metadata()).unwrap();
            let snap = snapshots
                .get(p)
                .map(|b| PartitionState::decode(b.as_slice()).unwrap())
                .filter(|s| s.last_offset + 1 > cp.restart_offset);
            match snap {
                Some(s) => {
                    start.insert(*p, s.last_offset + 1);
                    engine.restore_snapshot(*p, s, Some(&cp)).unwrap();
                }
                None => {
                    start.insert(*p, cp.restart_offset);
                    engine.restore(*p, &cp);
                }
            }
        }
        let end = cut.unwrap_or(events.len());
        for (i, e) in events[..end].iter().enumerate() {
            if e.offset >= start.get(&e.partition).copied().unwrap_or(0) {
                engine.process(meta(e), &e.event);
                fin.absorb(engine.take_output());
            }
            if snap_at == Some(i) {
                engine.flush();
                fin.absorb(engine.take_output());
                for p in 0..2 {
                    if let (Some(c), Some(s)) = (engine.checkpoint(p), engine.snapshot(p)) {
                        checkpoints.insert(p, c);
                        snapshots.insert(p, s.encode_to_vec());
                    }
                }
            }
        }
        engine.flush();
        fin.absorb(engine.take_output());
        for p in 0..2 {
            if let Some(c) = engine.checkpoint(p) {
                checkpoints.insert(p, c);
            }
        }
    }
    fin
}

fn assert_same<F: Family>(got: &Final<F>, want: &Final<F>) {
    assert_eq!(got.aggs(), want.aggs());
    assert_eq!(got.ledger, want.ledger);
    let mut g = got.rejections.clone();
    g.sort();
    let mut w = want.rejections.clone();
    w.sort();
    assert_eq!(
        g.len(),
        g.iter().collect::<BTreeSet<_>>().len(),
        "a rejection was emitted twice"
    );
    assert_eq!(g, w);
}

fn check_family<F: Family + Persist>(
    make: impl Fn() -> F,
    events: &[In<F::Event>],
    slide: i64,
    flushes: &[bool],
    cuts: &[f64],
    snaps: &[f64],
) {
    let whole = run(&config(slide), make(), events, flushes);
    let (rows, ledger, rejections) = reference(&make(), events, slide);
    assert_eq!(whole.aggs(), rows);
    assert_eq!(whole.ledger, ledger);
    assert_eq!(whole.rejections, rejections);
    let cuts: Vec<usize> = cuts
        .iter()
        .map(|c| ((events.len() as f64) * c) as usize)
        .collect();
    let plain: Vec<(usize, Option<usize>)> = cuts.iter().map(|c| (*c, None)).collect();
    assert_same(
        &crash_and_replay(&config(slide), &make, events, &plain),
        &whole,
    );
    // One snapshot per life, at a point of its own (past the life's cut:
    // no snapshot in that life).
    let snap_cuts: Vec<(usize, Option<usize>)> = cuts
        .iter()
        .zip(snaps.iter().cycle())
        .map(|(c, s)| (*c, Some(((events.len() as f64) * s) as usize)))
        .collect();
    assert_same(
        &crash_and_replay(&config(slide), &make, events, &snap_cuts),
        &whole,
    );
    // With identities forgotten as soon as allowed, a crash and replay
    // still repeats every decision of an uninterrupted run.
    let short = forgetful(slide);
    let whole = run(&short, make(), events, flushes);
    assert_same(&crash_and_replay(&short, &make, events, &plain), &whole);
    assert_same(&crash_and_replay(&short, make, events, &snap_cuts), &whole);
}

/// Shipments: a few ids per partition, each with a fixed creation time and
/// random milestones, so deadlines fire, are disarmed, and arrive out of order.
fn shipments() -> impl Strategy<Value = Vec<In<LogisticsEvent>>> {
    let draw = (
        0..2i32,
        0..400i64,
        (-40_000..9_000i64, 0..6u64, 0..5i32, 0..3u8),
    );
    prop::collection::vec(draw, 1..400).prop_map(|raw| {
        sequence(raw, |partition, clock, (delta, ship, milestone, mode)| {
            let id = ship * 2 + partition as u64; // one shipment, one partition
            LogisticsEvent {
                shipment_id: id,
                event_time: clock + delta,
                created_time: 1_800_000_000_000 + (id as i64) * 7_000,
                mode: 1 + mode as i32,
                origin_country: 1,
                destination_country: 1 + (id % 2) as i32,
                milestone: 1 + milestone,
                ..Default::default()
            }
        })
    })
}

/// Readings from a few devices with gaps long enough to go silent.
fn readings() -> impl Strategy<Value = Vec<In<IotReading>>> {
    let draw = (
        0..2i32,
        0..3_000i64,
        (-30_000..9_000i64, 0..6u64, -500..1_500i32),
    );
    prop::collection::vec(draw, 1..300).prop_map(|raw| {
        sequence(raw, |partition, clock, (delta, dev, temp)| {
            let id = dev * 2 + partition as u64;
            IotReading {
                device_id: id,
                kind: 1 + (id % 2) as i32,
                country: 1,
                event_time: clock + delta,
                temperature_centi_c: temp,
                battery_permille: (id * 100) as u32,
                ..Default::default()
            }
        })
    })
}

/// Gives each draw its partition's next offset and a record time that moves
/// forward by the draw's step; `make` builds the event at that time.
fn sequence<R, E>(raw: Vec<(i32, i64, R)>, make: impl Fn(i32, i64, R) -> E) -> Vec<In<E>> {
    let mut next_offset = [0i64; 2];
    let mut clock = 1_800_000_000_000i64;
    raw.into_iter()
        .map(|(partition, step, rest)| {
            clock += step;
            let offset = next_offset[partition as usize];
            next_offset[partition as usize] += 1;
            In {
                partition,
                offset,
                record_time: clock,
                event: make(partition, clock, rest),
            }
        })
        .collect()
}

fn flush_points() -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(prop::bool::weighted(0.1), 400)
}

fn slide_of(hopping: bool) -> i64 {
    if hopping {
        SIZE / 2
    } else {
        SIZE
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn payments_match_the_reference_and_survive_a_crash(events in payments(), hopping in any::<bool>(), flushes in flush_points(), cuts in prop::collection::vec(0.0..1.0f64, 1..4), snaps in prop::collection::vec(0.0..1.0f64, 3)) {
        check_family(|| PaymentCorridors, &events, slide_of(hopping), &flushes, &cuts, &snaps);
    }

    #[test]
    fn shipments_match_the_reference_and_survive_a_crash(events in shipments(), hopping in any::<bool>(), flushes in flush_points(), cuts in prop::collection::vec(0.0..1.0f64, 1..4), snaps in prop::collection::vec(0.0..1.0f64, 3)) {
        check_family(|| LogisticsSla::new(Duration::from_secs(15), Duration::from_secs(25)), &events, slide_of(hopping), &flushes, &cuts, &snaps);
    }

    #[test]
    fn devices_match_the_reference_and_survive_a_crash(events in readings(), hopping in any::<bool>(), flushes in flush_points(), cuts in prop::collection::vec(0.0..1.0f64, 1..4), snaps in prop::collection::vec(0.0..1.0f64, 3)) {
        check_family(|| IotHealth::new(Duration::from_secs(8), [2.0, 8.0]), &events, slide_of(hopping), &flushes, &cuts, &snaps);
    }
}

#[test]
fn window_state_is_freed_after_lateness() {
    let mut engine = Engine::new(&config(SIZE), PaymentCorridors).unwrap();
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
    let err = Engine::new(&cfg, PaymentCorridors)
        .err()
        .expect("rejected")
        .to_string();
    assert!(err.contains("must divide"), "{err}");
}

fn ship(id: u64, milestone: Milestone, t: i64) -> LogisticsEvent {
    LogisticsEvent {
        shipment_id: id,
        event_time: t,
        // Shipment 3 is created when it first shows up; the others at the base time.
        created_time: if id == 3 { t } else { 1_800_000_000_000 },
        mode: 1,
        origin_country: 1,
        destination_country: 2,
        milestone: milestone as i32,
        ..Default::default()
    }
}

#[test]
fn a_missing_delivery_breaches_when_the_watermark_crosses_the_deadline() {
    let base = 1_800_000_000_000i64;
    // One event moves the watermark 30 s here: no outlier guard.
    let cfg = CoreConfig {
        max_watermark_step: Duration::ZERO,
        ..config(SIZE)
    };
    let mut engine = Engine::new(
        &cfg,
        LogisticsSla::new(Duration::from_secs(10), Duration::from_secs(30)),
    )
    .unwrap();
    let mut offset = 0;
    let mut feed = |engine: &mut Engine<LogisticsSla>, e: LogisticsEvent| {
        engine.process(
            SourceMeta {
                partition: 0,
                offset,
                record_time_ms: e.event_time,
            },
            &e,
        );
        offset += 1;
        engine.take_output().rows
    };
    assert!(feed(&mut engine, ship(1, Milestone::Created, base)).is_empty());
    feed(&mut engine, ship(2, Milestone::Created, base));
    feed(&mut engine, ship(2, Milestone::Delivered, base + 20_000));
    // Another shipment's event moves the watermark past 1's deadline (base + 30s).
    let rows = feed(
        &mut engine,
        ship(3, Milestone::Created, base + 30_000 + DISORDER + SIZE),
    );
    let breaches: u64 = rows.iter().map(|r| r.agg.breaches).sum();
    assert_eq!(breaches, 1, "{rows:?}");
    let breach = rows.iter().find(|r| r.agg.breaches == 1).unwrap();
    assert_eq!(breach.window_start, base + 30_000);
    let delivered: u64 = rows.iter().map(|r| r.agg.delivered).sum();
    assert_eq!(delivered, 1);
    // The late delivery of shipment 1 counts as delivered, not on time, and
    // does not undo the breach.
    engine.process(
        SourceMeta {
            partition: 0,
            offset: 99,
            record_time_ms: base + 45_000,
        },
        &ship(1, Milestone::Delivered, base + 44_000),
    );
    engine.flush();
    let out = engine.take_output().rows;
    let late = out
        .iter()
        .find(|r| r.agg.delivered == 1)
        .expect("delivered row");
    assert_eq!((late.agg.on_time, late.agg.breaches), (0, 0));
}

#[test]
fn a_device_that_stops_reporting_is_counted_silent_once() {
    let base = 1_800_000_000_000i64;
    let mut engine = Engine::new(
        &config(SIZE),
        IotHealth::new(Duration::from_secs(15), [2.0, 8.0]),
    )
    .unwrap();
    let reading = |device: u64, t: i64, temp: i32| IotReading {
        device_id: device,
        kind: DeviceKind::ColdChainContainer as i32,
        country: 1,
        event_time: t,
        temperature_centi_c: temp,
        battery_permille: 900,
        ..Default::default()
    };
    let mut silent = 0;
    let mut excursions = 0;
    // Device 7 reports every 5 s for a minute; device 8 reports twice, then stops.
    for (i, t) in (0..60_000).step_by(5_000).enumerate() {
        let mut events = vec![reading(7, base + t, if i == 3 { 950 } else { 500 })];
        if i < 2 {
            events.push(reading(8, base + t, 400));
        }
        for (j, e) in events.iter().enumerate() {
            engine.process(
                SourceMeta {
                    partition: 0,
                    offset: (i * 2 + j) as i64,
                    record_time_ms: e.event_time,
                },
                e,
            );
        }
    }
    engine.flush();
    let mut last: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for r in engine.take_output().rows {
        last.insert(r.window_start, (r.agg.silent, r.agg.excursions));
    }
    for (s, x) in last.values() {
        silent += s;
        excursions += x;
    }
    assert_eq!(silent, 1, "{last:?}");
    assert_eq!(excursions, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Same input sequence, same output sequence, row for row.
    #[test]
    fn output_is_a_pure_function_of_the_input(events in shipments()) {
        let once = || {
            let mut engine = Engine::new(&config(SIZE), LogisticsSla::new(Duration::from_secs(15), Duration::from_secs(25))).unwrap();
            let mut rows = Vec::new();
            let mut ledger = Vec::new();
            for e in &events {
                engine.process(meta(e), &e.event);
                let out = engine.take_output();
                rows.extend(out.rows);
                ledger.extend(out.ledger);
            }
            engine.flush();
            let out = engine.take_output();
            rows.extend(out.rows);
            ledger.extend(out.ledger);
            (rows, ledger)
        };
        prop_assert_eq!(once(), once());
    }
}

#[test]
fn a_device_that_keeps_reporting_does_not_hold_the_restart_offset_back() {
    // One device reporting every second for an hour, in order. Its silence
    // timer is pushed out by every reading; the restart point must follow
    // it instead of staying at its first reading.
    let base = 1_800_000_000_000i64;
    // The default dedup horizon: window size + lateness.
    let mut engine = Engine::new(
        &forgetful(SIZE),
        IotHealth::new(Duration::from_secs(8), [2.0, 8.0]),
    )
    .unwrap();
    let n = 3_600i64;
    for i in 0..n {
        let e = IotReading {
            device_id: 42,
            kind: DeviceKind::SmartMeter as i32,
            country: 1,
            event_time: base + i * 1_000,
            battery_permille: 900,
            ..Default::default()
        };
        let meta = SourceMeta {
            partition: 0,
            offset: i,
            record_time_ms: e.event_time,
        };
        engine.process(meta, &e);
    }
    engine.flush();
    let cp = engine.checkpoint(0).unwrap();
    // Kept windows, lateness and remembered identities reach back SIZE +
    // LATENESS (plus disorder); nothing should reach back to offset 0.
    let span = (SIZE + LATENESS + DISORDER) / 1_000 + 2;
    assert!(
        cp.restart_offset >= n - span,
        "restart offset {} is more than {span} readings back",
        cp.restart_offset
    );
}

#[test]
fn one_far_ahead_event_cannot_hijack_the_watermark_but_a_real_jump_is_followed() {
    let base = 1_800_000_000_000i64;
    let cfg = CoreConfig {
        max_watermark_step: Duration::from_secs(600),
        allowed_lateness: Duration::from_secs(3600),
        ..config(SIZE)
    };
    let mut engine = Engine::new(&cfg, PaymentCorridors).unwrap();
    let pay = |t: i64| Payment {
        payment_id: 1,
        event_time: t,
        payer_country: 1,
        payee_country: 1,
        method: 1,
        channel: 1,
        currency: 1,
        amount_minor: 10,
        status: 2,
        ..Default::default()
    };
    let mut offset = 0;
    let mut feed = |engine: &mut Engine<PaymentCorridors>, t: i64, now: i64| {
        offset += 1;
        engine.process(
            SourceMeta {
                partition: 0,
                offset,
                record_time_ms: now,
            },
            &pay(t),
        )
    };
    let now = base + 3 * 86_400_000; // a replay of three-day-old records, today
    for i in 0..10 {
        assert_eq!(feed(&mut engine, base + i * 1_000, now), None);
    }
    // One record stamped with today's clock: accepted, but the watermark
    // moves one step (10 min), not three days.
    assert_eq!(feed(&mut engine, now, now), None);
    assert_eq!(engine.watermark(0), Some(base + 9_000 + 600_000 - DISORDER));
    // So the replay goes on: nothing after it is too late.
    for i in 10..40 {
        assert_eq!(feed(&mut engine, base + i * 1_000, now), None, "record {i}");
    }
    // A real jump (the producer was paused) is followed, a step per record.
    for i in 0..500 {
        assert_eq!(feed(&mut engine, now + i * 1_000, now + i * 1_000), None);
    }
    assert_eq!(engine.watermark(0), Some(now + 499_000 - DISORDER));
}
