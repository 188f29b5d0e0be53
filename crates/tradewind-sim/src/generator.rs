//! The deterministic event generator. Business events *occur* in simulated
//! time (a thinned Poisson process shaped by the daily cycle and festivals,
//! plus scheduled follow-ups: shipment milestones and refunds); IoT devices
//! report on their fleet's own interval and FX quotes tick; each is then
//! *reported* after a disorder delay. Records leave in report order, so the
//! Kafka stream shows jitter, late arrivals, duplicates and poison exactly as
//! the scenario asks. Same scenario + seed + start = same bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use prost::Message;
use rand::distr::Distribution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp1, Normal};
use tradewind_proto::{
    decimal_key, Currency, FxRate, IotReading, LogisticsEvent, Milestone, Payment, PaymentChannel,
    PaymentMethod, PaymentStatus, Stream,
};

use crate::names::CurrencyName;
use crate::scenario::Scenario;
use crate::truth::{Flags, TopicTruth, Truth, TruthBuilder};
use crate::world::{Kind, World};
use crate::Result;

/// One Kafka record ready to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecord {
    pub stream: Stream,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    /// Simulated time at which the record is reported (not its event time).
    pub report_ms: i64,
    pub poison: bool,
    pub flags: Flags,
}

#[derive(Debug, Clone)]
enum Event {
    Payment(Payment),
    Iot(IotReading, bool),
    Logistics(LogisticsEvent),
    Fx(FxRate),
}

/// A shipment between milestones. Only its next milestone is scheduled, so
/// memory grows with shipments in flight, not with milestones.
#[derive(Debug, Clone)]
struct Shipment {
    template: LogisticsEvent,
    transit_ms: i64,
    plan: &'static [(Milestone, f64)],
    next: u8,
}

const DOMESTIC_PLAN: &[(Milestone, f64)] =
    &[(Milestone::Departed, 0.15), (Milestone::Delivered, 1.0)];
const INTERNATIONAL_PLAN: &[(Milestone, f64)] = &[
    (Milestone::Departed, 0.1),
    (Milestone::BorderCrossed, 0.5),
    (Milestone::CustomsCleared, 0.7),
    (Milestone::Delivered, 1.0),
];

#[derive(Debug)]
enum Item {
    Report(Event, Flags),
    Milestone(Shipment),
    Refund(Payment),
}

#[derive(Debug)]
struct Pending {
    at: i64,
    seq: u64,
    // Boxed so heap sifts move 24 bytes, not whole events.
    item: Box<Item>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// An endless, deterministic stream of [`SimRecord`]s.
pub struct Generator {
    world: World,
    rng: ChaCha8Rng,
    seed: u64,
    start_ms: i64,
    now_ms: i64,
    next_arrival: f64,
    /// New events per millisecond at a factor of 1.
    base_rate: f64,
    /// Thinning bound of the current span and where the span ends.
    bound: f64,
    bound_until: i64,
    next_fx_ms: i64,
    fx_interval_ms: i64,
    fx_step: Normal<f64>,
    fx_rates: Vec<(Currency, f64)>,
    /// When each IoT device reads next, by device index.
    devices_due: BinaryHeap<Reverse<(i64, u32)>>,
    /// Delayed reports (seconds to hours ahead): many, short-lived.
    reports: BinaryHeap<Reverse<Pending>>,
    /// Milestones and refunds (hours to weeks ahead): fewer pushes, but a
    /// large heap; keeping the two apart keeps most sifts shallow.
    followups: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// Records made but not yet handed out, with the event each encodes
    /// (none for poison); the truth counts them when they leave.
    ready: VecDeque<(SimRecord, Option<Event>)>,
    next_id: u64,
    disorder: Disorder,
    truth: TruthBuilder,
}

struct Disorder {
    jitter_rate: f64,
    jitter_max_ms: i64,
    late_rate: f64,
    late_ms: (i64, i64),
    duplicate_rate: f64,
    poison_rate: f64,
    refund_rate: f64,
    refund_ms: (i64, i64),
    lost_rate: f64,
    buyers: u64,
}

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis() as i64
}

impl Generator {
    /// Builds a generator. `start_ms` is the first simulated instant; `windows`
    /// turns on the per-window ground truth (topic counts are always kept).
    pub fn new(s: &Scenario, seed: u64, start_ms: i64, windows: bool) -> Result<Self> {
        s.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let world = World::build(s, start_ms, &mut rng)?;
        let (bound, bound_until) = world.bound(start_ms);
        let fx_step = Normal::new(0.0, s.fx.volatility_bp / 10_000.0)
            .map_err(|e| crate::Error::Scenario(format!("fx.volatility_bp: {e}")))?;
        let d = &s.disorder;
        let mut g = Self {
            world,
            seed,
            start_ms,
            now_ms: start_ms,
            next_arrival: start_ms as f64,
            base_rate: s.clock.events_per_second / 1000.0,
            bound,
            bound_until,
            next_fx_ms: start_ms,
            fx_interval_ms: ms(s.fx.interval),
            fx_step,
            fx_rates: s.fx.usd_rates.iter().map(|(c, r)| (c.0, *r)).collect(),
            devices_due: BinaryHeap::new(),
            reports: BinaryHeap::new(),
            followups: BinaryHeap::new(),
            seq: 0,
            ready: VecDeque::new(),
            next_id: 1,
            disorder: Disorder {
                jitter_rate: d.jitter_rate,
                jitter_max_ms: ms(d.jitter_max).max(1),
                late_rate: d.late_rate,
                late_ms: (ms(d.late.min), ms(d.late.max)),
                duplicate_rate: d.duplicate_rate,
                poison_rate: d.poison_rate,
                refund_rate: s.payments.refund_rate,
                refund_ms: (
                    ms(s.payments.refund_delay.min),
                    ms(s.payments.refund_delay.max),
                ),
                lost_rate: s.logistics.lost_rate,
                buyers: s.payments.buyers_per_country.max(1),
            },
            truth: TruthBuilder::new(
                windows,
                ms(s.truth.window),
                ms(s.truth.sla_domestic),
                ms(s.truth.sla_international),
            ),
            rng,
        };
        g.draw_arrival(start_ms as f64);
        // Each device starts at a random phase of its interval.
        for di in 0..g.world.devices.len() {
            let every = g.world.fleets[g.world.devices[di].fleet].report_ms;
            let at = start_ms + g.rng.random_range(0..every);
            g.devices_due.push(Reverse((at, di as u32)));
        }
        Ok(g)
    }

    /// Payment, order and shipment ids start after `after` (by default
    /// after 1). Runs into the same topics need ranges of their own, or the
    /// aggregator's deduplication takes a later run's events as repeats.
    pub fn with_ids_after(mut self, after: u64) -> Self {
        self.next_id = after.max(1);
        self
    }

    /// Per-topic counts of everything produced so far.
    pub fn topic_stats(&self) -> std::collections::BTreeMap<String, TopicTruth> {
        self.truth.topics()
    }

    /// The ground truth of everything produced so far.
    pub fn truth(&self) -> Truth {
        self.truth.finish(self.seed, self.start_ms)
    }

    /// Current simulated time.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Draws the next candidate arrival after `from`. Crossing into a new
    /// span re-draws from its start with the new bound; exponential gaps are
    /// memoryless, so the process stays exact.
    fn draw_arrival(&mut self, mut from: f64) {
        loop {
            let gap: f64 = Exp1.sample(&mut self.rng);
            let at = from + gap / (self.base_rate * self.bound);
            if at < self.bound_until as f64 {
                self.next_arrival = at;
                return;
            }
            from = self.bound_until as f64;
            (self.bound, self.bound_until) = self.world.bound(self.bound_until);
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn schedule(&mut self, at: i64, item: Item) {
        self.seq += 1;
        let heap = match item {
            Item::Report(..) => &mut self.reports,
            Item::Milestone(_) | Item::Refund(_) => &mut self.followups,
        };
        heap.push(Reverse(Pending {
            at,
            seq: self.seq,
            item: Box::new(item),
        }));
    }

    /// An event has happened now: report it now or after a disorder delay.
    fn occur(&mut self, ev: Event, clock_ahead: bool) {
        let d = &self.disorder;
        let u: f64 = self.rng.random();
        let mut flags = Flags {
            clock_ahead,
            ..Flags::default()
        };
        let delay = if u < d.late_rate {
            flags.late = true;
            self.rng.random_range(d.late_ms.0..=d.late_ms.1)
        } else if u < d.late_rate + d.jitter_rate {
            flags.jittered = true;
            self.rng.random_range(1..=d.jitter_max_ms)
        } else {
            0
        };
        if delay == 0 {
            self.report(ev, flags);
        } else {
            self.schedule(self.now_ms + delay, Item::Report(ev, flags));
        }
    }

    /// Encodes an event into records (with any duplicate or poison that
    /// follows it); the truth tallies them as they leave ([`Generator::next`]).
    fn report(&mut self, ev: Event, flags: Flags) {
        let mut kb = [0u8; 20];
        let (stream, key, payload) = match &ev {
            Event::Payment(p) => (
                Stream::Payments,
                decimal_key(p.payment_id, &mut kb).to_vec(),
                p.encode_to_vec(),
            ),
            Event::Iot(r, _) => (
                Stream::Iot,
                decimal_key(r.device_id, &mut kb).to_vec(),
                r.encode_to_vec(),
            ),
            Event::Logistics(e) => (
                Stream::Logistics,
                decimal_key(e.shipment_id, &mut kb).to_vec(),
                e.encode_to_vec(),
            ),
            Event::Fx(q) => {
                let key =
                    format!("{}/{}", CurrencyName(q.base()), CurrencyName(q.quote())).into_bytes();
                (Stream::Fx, key, q.encode_to_vec())
            }
        };
        let record = SimRecord {
            stream,
            key,
            payload,
            report_ms: self.now_ms,
            poison: false,
            flags,
        };
        if self.rng.random::<f64>() < self.disorder.duplicate_rate {
            let dup = SimRecord {
                flags: Flags {
                    duplicate: true,
                    ..flags
                },
                ..record.clone()
            };
            self.ready.push_back((record, Some(ev.clone())));
            self.ready.push_back((dup, Some(ev)));
        } else {
            self.ready.push_back((record, Some(ev)));
        }
        if self.rng.random::<f64>() < self.disorder.poison_rate {
            self.poison();
        }
    }

    /// An undecodable record: its first byte declares field 1 with wire type
    /// 7, which no protobuf decoder accepts.
    fn poison(&mut self) {
        let stream = Stream::ALL[self.rng.random_range(0..3)];
        let len = self.rng.random_range(8..64);
        let mut payload = vec![0x0F];
        payload.extend((1..len).map(|_| self.rng.random::<u8>()));
        let key = self.rng.random::<u64>().to_string().into_bytes();
        let record = SimRecord {
            stream,
            key,
            payload,
            report_ms: self.now_ms,
            poison: true,
            flags: Flags::default(),
        };
        self.ready.push_back((record, None));
    }

    fn fx_tick(&mut self) {
        let t = self.now_ms;
        for i in 0..self.fx_rates.len() {
            let step = self.fx_step.sample(&mut self.rng);
            let (quote, rate) = &mut self.fx_rates[i];
            *rate *= 1.0 + step;
            let q = FxRate {
                base: Currency::Usd as i32,
                quote: *quote as i32,
                rate_e9: (*rate * 1e9).round() as i64,
                event_time: t,
            };
            self.occur(Event::Fx(q), false);
        }
        self.next_fx_ms += self.fx_interval_ms;
    }

    /// Draws one candidate new event and keeps it with probability
    /// intensity / max-intensity (Lewis thinning).
    fn arrival(&mut self) {
        let t = self.now_ms;
        let kind = self.world.kinds.pick(&mut self.rng);
        let accept: f64 = self.rng.random::<f64>() * self.bound;
        match kind {
            Kind::Payment | Kind::Shipment => {
                let ci = self.world.corridor_pick.sample(&mut self.rng);
                let payer = self.world.corridors[ci].to;
                if accept >= self.world.activity(payer, t) {
                    return;
                }
                if matches!(kind, Kind::Payment) {
                    self.new_payment(ci);
                } else {
                    self.new_shipment(ci);
                }
            }
        }
    }

    fn new_payment(&mut self, ci: usize) {
        let c = &self.world.corridors[ci];
        let channel = c.channels.pick(&mut self.rng);
        // B2B settles by bank transfer; consumers pay the way their country does.
        let method = if channel == PaymentChannel::B2b {
            PaymentMethod::BankTransfer
        } else {
            self.world.method_for(c.to, &mut self.rng)
        };
        let failed = self.rng.random::<f64>() < self.world.failure_rate[method as usize];
        let p = Payment {
            payment_id: 0,
            order_id: 0,
            event_time: self.now_ms,
            method: method as i32,
            channel: channel as i32,
            payer_country: c.to as i32,
            payee_country: c.from as i32,
            currency: c.currency as i32,
            amount_minor: (c.amount.sample(&mut self.rng).round() as i64).max(1),
            status: if failed {
                PaymentStatus::Failed
            } else {
                PaymentStatus::Captured
            } as i32,
            merchant_category: c.categories.pick(&mut self.rng) as i32,
            buyer_id: ((c.to as u64) << 40) | self.rng.random_range(0..self.disorder.buyers),
        };
        let p = Payment {
            payment_id: self.id(),
            order_id: self.id(),
            ..p
        };
        if !failed
            && channel != PaymentChannel::B2b
            && self.rng.random::<f64>() < self.disorder.refund_rate
        {
            let delay = self
                .rng
                .random_range(self.disorder.refund_ms.0..=self.disorder.refund_ms.1);
            self.schedule(self.now_ms + delay, Item::Refund(p));
        }
        self.occur(Event::Payment(p), false);
    }

    fn new_shipment(&mut self, ci: usize) {
        let c = &self.world.corridors[ci];
        let (mode, transit) = c.modes.pick(&mut self.rng);
        let transit_ms = (transit.sample(&mut self.rng) as i64).max(60_000);
        let plan = if c.from == c.to {
            DOMESTIC_PLAN
        } else {
            INTERNATIONAL_PLAN
        };
        let (origin, dest) = (c.from, c.to);
        let lost = self.rng.random::<f64>() < self.disorder.lost_rate;
        let plan = if lost { &plan[..plan.len() - 1] } else { plan };
        let template = LogisticsEvent {
            shipment_id: self.id(),
            order_id: self.id(),
            event_time: self.now_ms,
            mode: mode as i32,
            origin_country: origin as i32,
            destination_country: dest as i32,
            milestone: Milestone::Created as i32,
            created_time: self.now_ms,
        };
        let ship = Shipment {
            template,
            transit_ms,
            plan,
            next: 0,
        };
        self.schedule_milestone(ship);
        self.occur(Event::Logistics(template), false);
    }

    fn schedule_milestone(&mut self, ship: Shipment) {
        if let Some((_, frac)) = ship.plan.get(ship.next as usize) {
            let at = ship.template.created_time + (ship.transit_ms as f64 * frac) as i64;
            self.schedule(at.max(self.now_ms), Item::Milestone(ship));
        }
    }

    /// Device `di` is due: it reads unless it is in its silence, and is
    /// scheduled again one interval (±10%) later either way.
    fn device_due(&mut self, di: usize) {
        let every = self.world.fleets[self.world.devices[di].fleet].report_ms;
        let next = self.now_ms + self.rng.random_range(every * 9 / 10..=every * 11 / 10);
        self.devices_due.push(Reverse((next, di as u32)));
        let t = self.now_ms;
        let dev = &self.world.devices[di];
        if dev.silent.is_some_and(|(a, b)| t >= a && t < b) {
            return;
        }
        self.new_reading(di);
    }

    fn new_reading(&mut self, di: usize) {
        let t = self.now_ms;
        let dev = &self.world.devices[di];
        let f = &self.world.fleets[dev.fleet];
        let mut temp = Normal::new(f.temperature.0, f.temperature.1.max(0.0))
            .map(|n| n.sample(&mut self.rng))
            .unwrap_or(f.temperature.0);
        let mut centi = (temp * 100.0).round() as i32;
        let mut excursion = false;
        if let Some((lo, hi)) = f.band_centi {
            if self.rng.random::<f64>() < f.excursion_rate {
                temp = if self.rng.random::<bool>() {
                    hi as f64 / 100.0 + self.rng.random_range(0.5..8.0)
                } else {
                    lo as f64 / 100.0 - self.rng.random_range(0.5..4.0)
                };
                centi = (temp * 100.0).round() as i32;
            } else {
                centi = centi.clamp(lo, hi);
            }
            excursion = centi < lo || centi > hi;
        }
        let moving = matches!(f.kind, tradewind_proto::DeviceKind::SharedBike);
        let (lat, lon) = if moving {
            let (la, lo) = (
                f.lat + self.rng.random_range(-f.spread..=f.spread),
                f.lon + self.rng.random_range(-f.spread..=f.spread),
            );
            ((la * 1e6) as i32, (lo * 1e6) as i32)
        } else {
            (dev.lat_micro, dev.lon_micro)
        };
        let drain = self.rng.random_range(0..100) < 3;
        let shock = (self.rng.random::<f64>().powi(6) * 4000.0) as u32;
        let humidity = self.rng.random_range(300..900);
        let dev = &mut self.world.devices[di];
        if drain {
            dev.battery_permille = if dev.battery_permille <= 50 {
                1000
            } else {
                dev.battery_permille - 1
            };
        }
        let r = IotReading {
            device_id: dev.id,
            kind: f.kind as i32,
            country: f.country as i32,
            event_time: t + dev.clock_ahead_ms,
            lat_micro_deg: lat,
            lon_micro_deg: lon,
            temperature_centi_c: centi,
            humidity_permille: humidity,
            shock_milli_g: shock,
            battery_permille: dev.battery_permille,
        };
        let ahead = dev.clock_ahead_ms != 0;
        self.occur(Event::Iot(r, excursion), ahead);
    }

    fn advance(&mut self) {
        let head = |h: &BinaryHeap<Reverse<Pending>>| {
            h.peek().map(|p| (p.0.at, p.0.seq)).unwrap_or((i64::MAX, 0))
        };
        let (report_at, followup_at) = (head(&self.reports), head(&self.followups));
        let heap_at = report_at.min(followup_at).0;
        let arrival_at = self.next_arrival as i64;
        let (device_at, device) = self
            .devices_due
            .peek()
            .map(|Reverse(d)| *d)
            .unwrap_or((i64::MAX, 0));
        if device_at < heap_at.min(self.next_fx_ms).min(arrival_at) {
            self.devices_due.pop();
            self.now_ms = device_at;
            self.device_due(device as usize);
        } else if heap_at <= self.next_fx_ms.min(arrival_at) {
            let heap = if report_at < followup_at {
                &mut self.reports
            } else {
                &mut self.followups
            };
            let Reverse(p) = heap.pop().expect("peeked");
            self.now_ms = p.at;
            match *p.item {
                Item::Report(ev, flags) => self.report(ev, flags),
                Item::Refund(p) => {
                    let refund = Payment {
                        event_time: self.now_ms,
                        status: PaymentStatus::Refunded as i32,
                        ..p
                    };
                    self.occur(Event::Payment(refund), false);
                }
                Item::Milestone(mut ship) => {
                    let milestone = ship.plan[ship.next as usize].0;
                    let ev = LogisticsEvent {
                        event_time: self.now_ms,
                        milestone: milestone as i32,
                        ..ship.template
                    };
                    ship.next += 1;
                    self.schedule_milestone(ship);
                    self.occur(Event::Logistics(ev), false);
                }
            }
        } else if self.next_fx_ms <= arrival_at {
            self.now_ms = self.next_fx_ms;
            self.fx_tick();
        } else {
            self.now_ms = arrival_at;
            self.draw_arrival(self.next_arrival);
            self.arrival();
        }
    }
}

impl Iterator for Generator {
    type Item = SimRecord;

    fn next(&mut self) -> Option<SimRecord> {
        loop {
            if let Some((r, ev)) = self.ready.pop_front() {
                // Tallied as it leaves, so a run cut off by a record count
                // counts exactly the records it produced.
                match ev {
                    Some(Event::Payment(p)) => self.truth.payment(&p, r.flags),
                    Some(Event::Iot(x, excursion)) => self.truth.iot(&x, r.flags, excursion),
                    Some(Event::Logistics(e)) => self.truth.logistics(&e, r.flags),
                    Some(Event::Fx(q)) => self.truth.fx(&q, r.flags),
                    None => {}
                }
                self.truth
                    .record(r.stream, &r.key, &r.payload, r.flags, r.poison);
                return Some(r);
            }
            self.advance();
        }
    }
}
