//! The three metric engines and the FX engine behind one [`Stream`]
//! dispatch. A decoded record goes to its stream's engine; what the
//! engines emit (window rows, ledger rows, FX quotes) goes into the
//! [`Batch`] and their rejections come back to the caller. Every
//! per-stream `match` of the aggregator is written here, once.

use tradewind_core::{
    Checkpoint, CoreConfig, Engine, FxQuotes, IotHealth, LogisticsSla, PartitionState,
    PaymentCorridors, Reason, SnapshotError, SourceMeta,
};
use tradewind_proto::Stream;
use tradewind_sink::Batch;

use crate::decode::Decoded;

/// One engine per stream.
pub struct Engines {
    payments: Engine<PaymentCorridors>,
    iot: Engine<IotHealth>,
    logistics: Engine<LogisticsSla>,
    /// FX quotes are not windowed, but validated, booked in the ledger and
    /// checkpointed like the rest.
    fx: Engine<FxQuotes>,
}

/// Runs `$body` with `$e` bound to `$stream`'s engine.
macro_rules! on {
    ($engines:expr, $stream:expr, |$e:ident| $body:expr) => {
        match $stream {
            Stream::Payments => {
                let $e = &$engines.payments;
                $body
            }
            Stream::Iot => {
                let $e = &$engines.iot;
                $body
            }
            Stream::Logistics => {
                let $e = &$engines.logistics;
                $body
            }
            Stream::Fx => {
                let $e = &$engines.fx;
                $body
            }
        }
    };
    (mut $engines:expr, $stream:expr, |$e:ident| $body:expr) => {
        match $stream {
            Stream::Payments => {
                let $e = &mut $engines.payments;
                $body
            }
            Stream::Iot => {
                let $e = &mut $engines.iot;
                $body
            }
            Stream::Logistics => {
                let $e = &mut $engines.logistics;
                $body
            }
            Stream::Fx => {
                let $e = &mut $engines.fx;
                $body
            }
        }
    };
}

impl Engines {
    pub fn new(core: &CoreConfig) -> Result<Self, tradewind_core::Error> {
        Ok(Self {
            payments: Engine::new(core, PaymentCorridors)?,
            iot: Engine::new(core, core.iot())?,
            logistics: Engine::new(core, core.logistics())?,
            fx: Engine::new(core, FxQuotes)?,
        })
    }

    pub fn restore(&mut self, stream: Stream, partition: i32, cp: &Checkpoint) {
        on!(mut self, stream, |e| e.restore(partition, cp))
    }

    /// `partition`'s whole state (see [`Engine::snapshot`]).
    pub fn snapshot(&self, stream: Stream, partition: i32) -> Option<PartitionState> {
        on!(self, stream, |e| e.snapshot(partition))
    }

    pub fn restore_snapshot(
        &mut self,
        stream: Stream,
        partition: i32,
        state: PartitionState,
        cp: Option<&Checkpoint>,
    ) -> Result<(), SnapshotError> {
        on!(mut self, stream, |e| e.restore_snapshot(partition, state, cp))
    }

    pub fn drop_partition(&mut self, stream: Stream, partition: i32) {
        on!(mut self, stream, |e| e.drop_partition(partition))
    }

    pub fn checkpoint(&self, stream: Stream, partition: i32) -> Option<Checkpoint> {
        on!(self, stream, |e| e.checkpoint(partition))
    }

    pub fn watermark(&self, stream: Stream, partition: i32) -> Option<i64> {
        on!(self, stream, |e| e.watermark(partition))
    }

    /// Books a record that never reached an engine (it did not decode or
    /// validate) in its partition's ledger.
    pub fn record_invalid(&mut self, stream: Stream, partition: i32, offset: i64, reason: Reason) {
        on!(mut self, stream, |e| e.record_invalid(partition, offset, reason))
    }

    /// Folds a decoded record into its engine. An FX quote the engine
    /// accepts is a row of its own; it goes into `batch` at once.
    pub fn process(&mut self, meta: SourceMeta, record: &Decoded, batch: &mut Batch) {
        match record {
            Decoded::Payment(p) => {
                self.payments.process(meta, p);
            }
            Decoded::Iot(r) => {
                self.iot.process(meta, r);
            }
            Decoded::Logistics(l) => {
                self.logistics.process(meta, l);
            }
            Decoded::Fx(q) => {
                if self.fx.process(meta, q).is_none() {
                    batch.push_fx(q, meta.offset);
                }
            }
        }
    }

    /// Closes every window and timer the watermarks allow, in every engine.
    pub fn flush(&mut self) {
        for s in Stream::ALL {
            on!(mut self, s, |e| e.flush())
        }
    }

    /// Moves `stream`'s engine output into `batch` (rows tagged with
    /// `topic`); returns its rejections.
    pub fn drain(&mut self, stream: Stream, topic: &str, batch: &mut Batch) -> Vec<Reason> {
        if !on!(self, stream, |e| e.has_output()) {
            return Vec::new();
        }
        let (ledger, rejections) = match stream {
            Stream::Payments => {
                let out = self.payments.take_output();
                out.rows
                    .into_iter()
                    .for_each(|r| batch.push_corridor(topic, r));
                (out.ledger, out.rejections)
            }
            Stream::Iot => {
                let out = self.iot.take_output();
                out.rows.into_iter().for_each(|r| batch.push_iot(topic, r));
                (out.ledger, out.rejections)
            }
            Stream::Logistics => {
                let out = self.logistics.take_output();
                out.rows
                    .into_iter()
                    .for_each(|r| batch.push_logistics(topic, r));
                (out.ledger, out.rejections)
            }
            Stream::Fx => {
                let out = self.fx.take_output();
                (out.ledger, out.rejections)
            }
        };
        for l in ledger {
            batch.push_ledger(topic, l);
        }
        rejections.into_iter().map(|r| r.reason).collect()
    }
}
