//! Partition snapshots: one partition's engine state ⇄ the prost
//! [`PartitionState`] of `proto/tradewind/v1/state.proto`, so a restart
//! resumes from the snapshot's offset instead of replaying the history
//! that kept state still depends on.
//!
//! [`Engine::snapshot`] captures everything a partition holds: kept
//! windows with their bookkeeping, entity timers, the open ledger row, the
//! deduplication memory and the replay bounds of an earlier restore.
//! [`Engine::restore_snapshot`] rebuilds it; replaying the records after
//! [`PartitionState::last_offset`] then repeats every decision of the first
//! life exactly. The only thing a snapshot does not fix is the order in
//! which rows of one window come out (hash-map order), which no reader
//! depends on.
//!
//! Restored on top of a later checkpoint (the offsets committed after the
//! snapshot), the checkpoint's highest processed offset wins, so no
//! rejection is sent twice.

use tradewind_proto as pb;
use tradewind_proto::window_cell::Cell;

use crate::engine::{Partition, WindowState};
use crate::family::{
    CorridorAgg, CorridorKey, Family, FxQuotes, IotAgg, IotHealth, IotKey, LogisticsAgg,
    LogisticsKey, LogisticsSla, PaymentCorridors,
};
use crate::ledger::OpenLedger;
use crate::output::Checkpoint;
use crate::sketch::{Hll, LogHistogram};
use crate::timers::Timers;
use crate::{dedup::Dedup, Engine};

pub use tradewind_proto::PartitionState;

/// Why a snapshot cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot cell is not of this stream's kind ({0})")]
    WrongKind(&'static str),
    #[error("snapshot field missing: {0}")]
    Missing(&'static str),
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

/// How a family's keys, aggregates and timers are written in a snapshot.
pub trait Persist: Family {
    fn encode_cell(key: &Self::Key, agg: &Self::Agg) -> Option<Cell>;
    fn decode_cell(cell: Option<Cell>) -> Result<(Self::Key, Self::Agg), SnapshotError>;
    fn encode_timer(_t: &Self::Timer) -> pb::TimerPayload {
        pb::TimerPayload::default()
    }
    fn decode_timer(t: pb::TimerPayload) -> Result<Self::Timer, SnapshotError>;
}

impl<F: Family + Persist> Engine<F> {
    /// The state of `partition` as of its last folded record. Take it after
    /// [`Engine::flush`] and after the sink acknowledged what it emitted.
    pub fn snapshot(&self, partition: i32) -> Option<PartitionState> {
        let p = self.parts.get(&partition)?;
        let mut windows = Vec::with_capacity(p.windows.values().map(|k| k.len()).sum());
        for (start, keyed) in &p.windows {
            let mut cells: Vec<_> = keyed.iter().collect();
            cells.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (key, w) in cells {
                windows.push(pb::WindowCell {
                    window_start: *start,
                    version: w.version,
                    first_offset: w.first_offset,
                    frontier_before: w.frontier_before,
                    closed: w.closed,
                    dirty: w.dirty,
                    cell: F::encode_cell(key, &w.agg),
                });
            }
        }
        Some(PartitionState {
            last_offset: p.last_offset,
            frontier: p.frontier,
            closed_watermark: p.closed_wm,
            highest_processed: p.highest_processed,
            final_frontier: p.final_frontier,
            final_watermark: p.final_watermark,
            windows,
            entities: p.timers.to_state(F::encode_timer),
            ledger: Some(p.ledger.to_state()),
            dedup: Some(p.dedup.to_state()),
        })
    }

    /// Rebuilds `partition` from `state`; replay from
    /// `state.last_offset + 1`. `cp` is the checkpoint committed since the
    /// snapshot, if any: its highest processed offset and frontier carry
    /// on, so rejections it already sent are not sent again.
    pub fn restore_snapshot(
        &mut self,
        partition: i32,
        state: PartitionState,
        cp: Option<&Checkpoint>,
    ) -> Result<(), SnapshotError> {
        let t = self.t;
        let mut p = Partition::<F>::new(partition, t);
        p.last_offset = state.last_offset;
        p.frontier = state.frontier;
        p.closed_wm = state.closed_watermark;
        p.highest_processed = state.highest_processed;
        p.final_frontier = state.final_frontier;
        p.final_watermark = state.final_watermark;
        if let Some(cp) = cp {
            if cp.highest_processed < state.last_offset {
                return Err(SnapshotError::Inconsistent(format!(
                    "the committed checkpoint (offset {}) is older than the snapshot (offset {})",
                    cp.highest_processed, state.last_offset
                )));
            }
            p.highest_processed = p.highest_processed.max(cp.highest_processed);
            p.final_frontier = p.final_frontier.max(cp.frontier_at_checkpoint);
        }
        for w in state.windows {
            let (key, agg) = F::decode_cell(w.cell)?;
            if w.first_offset > state.last_offset || w.version > state.last_offset {
                return Err(SnapshotError::Inconsistent(format!(
                    "window at {} folds offset {} past the snapshot's {}",
                    w.window_start, w.version, state.last_offset
                )));
            }
            p.windows.entry(w.window_start).or_default().insert(
                key,
                WindowState {
                    agg,
                    version: w.version,
                    first_offset: w.first_offset,
                    frontier_before: w.frontier_before,
                    closed: w.closed,
                    dirty: w.dirty,
                },
            );
        }
        p.timers = Timers::from_state(t, state.entities, F::decode_timer)?;
        p.ledger = OpenLedger::from_state(
            partition,
            &state.ledger.ok_or(SnapshotError::Missing("ledger"))?,
        );
        p.dedup = Dedup::from_state(
            t.dedup_horizon.unwrap_or(i64::MAX),
            &state.dedup.ok_or(SnapshotError::Missing("dedup"))?,
        );
        self.parts.insert(partition, p);
        Ok(())
    }
}

fn hist(h: &LogHistogram) -> pb::HistogramState {
    let (keys, counts) = h.to_arrays();
    pb::HistogramState {
        keys: keys.into_iter().map(i32::from).collect(),
        counts,
    }
}

fn unhist(h: Option<pb::HistogramState>) -> Result<LogHistogram, SnapshotError> {
    let h = h.unwrap_or_default();
    if h.keys.len() != h.counts.len() {
        return Err(SnapshotError::Inconsistent(
            "histogram keys and counts differ in length".into(),
        ));
    }
    let keys: Vec<i16> = h
        .keys
        .iter()
        .map(|k| i16::try_from(*k))
        .collect::<Result<_, _>>()
        .map_err(|_| SnapshotError::Inconsistent("histogram key out of range".into()))?;
    Ok(LogHistogram::from_arrays(&keys, &h.counts))
}

fn hll(h: &Hll) -> pb::HllState {
    pb::HllState {
        packed: h.to_packed(),
    }
}

fn unhll(h: Option<pb::HllState>) -> Hll {
    Hll::from_packed(&h.unwrap_or_default().packed)
}

fn logistics_key(k: &LogisticsKey) -> pb::LogisticsKeyState {
    pb::LogisticsKeyState {
        origin: k.origin,
        destination: k.destination,
        mode: k.mode,
    }
}

fn un_logistics_key(k: Option<pb::LogisticsKeyState>) -> Result<LogisticsKey, SnapshotError> {
    let k = k.ok_or(SnapshotError::Missing("logistics key"))?;
    Ok(LogisticsKey {
        origin: k.origin,
        destination: k.destination,
        mode: k.mode,
    })
}

fn iot_key(k: &IotKey) -> pb::IotKeyState {
    pb::IotKeyState {
        kind: k.kind,
        country: k.country,
    }
}

fn un_iot_key(k: Option<pb::IotKeyState>) -> Result<IotKey, SnapshotError> {
    let k = k.ok_or(SnapshotError::Missing("IoT key"))?;
    Ok(IotKey {
        kind: k.kind,
        country: k.country,
    })
}

impl Persist for PaymentCorridors {
    fn encode_cell(k: &CorridorKey, a: &CorridorAgg) -> Option<Cell> {
        Some(Cell::Payment(pb::PaymentCell {
            payer: k.payer,
            payee: k.payee,
            method: k.method,
            channel: k.channel,
            currency: k.currency,
            payments: a.payments,
            captured: a.captured,
            failed: a.failed,
            refunded: a.refunded,
            amount_minor: a.amount_minor,
            amount_min: a.amount_min,
            amount_max: a.amount_max,
            amount_hist: Some(hist(&a.amount_hist)),
            buyers: Some(hll(&a.buyers)),
        }))
    }

    fn decode_cell(cell: Option<Cell>) -> Result<(CorridorKey, CorridorAgg), SnapshotError> {
        let Some(Cell::Payment(c)) = cell else {
            return Err(SnapshotError::WrongKind("payments"));
        };
        let key = CorridorKey {
            payer: c.payer,
            payee: c.payee,
            method: c.method,
            channel: c.channel,
            currency: c.currency,
        };
        let agg = CorridorAgg {
            payments: c.payments,
            captured: c.captured,
            failed: c.failed,
            refunded: c.refunded,
            amount_minor: c.amount_minor,
            amount_min: c.amount_min,
            amount_max: c.amount_max,
            amount_hist: unhist(c.amount_hist)?,
            buyers: unhll(c.buyers),
        };
        Ok((key, agg))
    }

    fn decode_timer(_: pb::TimerPayload) -> Result<(), SnapshotError> {
        Ok(())
    }
}

impl Persist for LogisticsSla {
    fn encode_cell(k: &LogisticsKey, a: &LogisticsAgg) -> Option<Cell> {
        Some(Cell::Logistics(pb::LogisticsCell {
            key: Some(logistics_key(k)),
            delivered: a.delivered,
            on_time: a.on_time,
            transit_ms_sum: a.transit_ms_sum,
            transit_ms_max: a.transit_ms_max,
            transit_hist: Some(hist(&a.transit_hist)),
            breaches: a.breaches,
        }))
    }

    fn decode_cell(cell: Option<Cell>) -> Result<(LogisticsKey, LogisticsAgg), SnapshotError> {
        let Some(Cell::Logistics(c)) = cell else {
            return Err(SnapshotError::WrongKind("logistics"));
        };
        let agg = LogisticsAgg {
            delivered: c.delivered,
            on_time: c.on_time,
            transit_ms_sum: c.transit_ms_sum,
            transit_ms_max: c.transit_ms_max,
            transit_hist: unhist(c.transit_hist)?,
            breaches: c.breaches,
        };
        Ok((un_logistics_key(c.key)?, agg))
    }

    fn encode_timer(t: &LogisticsKey) -> pb::TimerPayload {
        pb::TimerPayload {
            timer: Some(pb::timer_payload::Timer::Shipment(logistics_key(t))),
        }
    }

    fn decode_timer(t: pb::TimerPayload) -> Result<LogisticsKey, SnapshotError> {
        match t.timer {
            Some(pb::timer_payload::Timer::Shipment(k)) => un_logistics_key(Some(k)),
            _ => Err(SnapshotError::WrongKind("logistics timer")),
        }
    }
}

impl Persist for IotHealth {
    fn encode_cell(k: &IotKey, a: &IotAgg) -> Option<Cell> {
        Some(Cell::Iot(pb::IotCell {
            key: Some(iot_key(k)),
            readings: a.readings,
            excursions: a.excursions,
            silent: a.silent,
            battery_hist: Some(hist(&a.battery_hist)),
            devices: Some(hll(&a.devices)),
            silent_devices: Some(hll(&a.silent_devices)),
        }))
    }

    fn decode_cell(cell: Option<Cell>) -> Result<(IotKey, IotAgg), SnapshotError> {
        let Some(Cell::Iot(c)) = cell else {
            return Err(SnapshotError::WrongKind("IoT"));
        };
        let agg = IotAgg {
            readings: c.readings,
            excursions: c.excursions,
            silent: c.silent,
            battery_hist: unhist(c.battery_hist)?,
            devices: unhll(c.devices),
            silent_devices: unhll(c.silent_devices),
        };
        Ok((un_iot_key(c.key)?, agg))
    }

    fn encode_timer(t: &(IotKey, u64)) -> pb::TimerPayload {
        pb::TimerPayload {
            timer: Some(pb::timer_payload::Timer::Device(pb::IotDeviceTimer {
                key: Some(iot_key(&t.0)),
                device_id: t.1,
            })),
        }
    }

    fn decode_timer(t: pb::TimerPayload) -> Result<(IotKey, u64), SnapshotError> {
        match t.timer {
            Some(pb::timer_payload::Timer::Device(d)) => Ok((un_iot_key(d.key)?, d.device_id)),
            _ => Err(SnapshotError::WrongKind("IoT timer")),
        }
    }
}

impl Persist for FxQuotes {
    fn encode_cell(_: &(), _: &()) -> Option<Cell> {
        None
    }

    fn decode_cell(cell: Option<Cell>) -> Result<((), ()), SnapshotError> {
        match cell {
            None => Ok(((), ())),
            Some(_) => Err(SnapshotError::WrongKind("fx")),
        }
    }

    fn decode_timer(_: pb::TimerPayload) -> Result<(), SnapshotError> {
        Ok(())
    }
}
