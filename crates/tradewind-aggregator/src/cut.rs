//! A commit in two halves. At the cut, everything the commit carries is
//! taken out of the [`crate::pipeline::Pipeline`] at one instant: the rows
//! and their latency samples ([`Written`]), the dead letters, the
//! snapshots due and each partition's restart offset with its checkpoint.
//! The rows' ClickHouse write then runs on the tokio runtime while the
//! Kafka loop folds the next records, and the Kafka transaction (dead
//! letters, snapshots, offsets) follows once ClickHouse has acknowledged
//! the write ([`crate::commit::Committer`]). The protocol's order holds:
//! no offset commits before the rows it covers are acknowledged.
//!
//! At most one cut exists at a time, and only while its write is under
//! way. A cut whose write failed goes back into the pipeline whole
//! ([`crate::pipeline::Pipeline::uncut`]): its rows, dead letters and
//! snapshot records in front of what came after, so the next commit
//! carries both, and a later cut's offsets never commit without an
//! earlier cut's rows.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tradewind_sink::{WriteStats, Writer};

use crate::dlq::DeadLetter;
use crate::pipeline::PartitionOffset;
use crate::state::StateRecord;
use crate::written::{Buffers, Written};

pub struct Cut {
    pub written: Written,
    pub dead: Vec<DeadLetter>,
    pub state: Vec<StateRecord>,
    pub offsets: Vec<PartitionOffset>,
    write: Option<JoinHandle<tradewind_sink::Result<WriteStats>>>,
}

impl Cut {
    pub fn new(
        written: Written,
        dead: Vec<DeadLetter>,
        state: Vec<StateRecord>,
        offsets: Vec<PartitionOffset>,
    ) -> Self {
        Self {
            written,
            dead,
            state,
            offsets,
            write: None,
        }
    }

    /// Starts the rows' write in the background, if there are rows and no
    /// write is under way.
    pub fn start(&mut self, writer: &Writer, rt: &Handle) {
        if self.write.is_none() && !self.written.batch.is_empty() {
            let writer = writer.clone();
            let batch = Arc::clone(&self.written.batch);
            self.write = Some(rt.spawn(async move { writer.write(&batch).await }));
        }
    }

    /// Whether the rows' write is still running.
    pub fn in_flight(&self) -> bool {
        self.write.as_ref().is_some_and(|w| !w.is_finished())
    }

    /// Waits for the rows' write, starting it if it is not under way.
    /// `Ok(None)`: there were no rows (with `probe`, ClickHouse answered a
    /// ping instead).
    pub fn wait(
        &mut self,
        writer: &Writer,
        rt: &Handle,
        probe: bool,
    ) -> tradewind_sink::Result<Option<WriteStats>> {
        if self.written.batch.is_empty() {
            return if probe {
                rt.block_on(writer.ping()).map(|()| None)
            } else {
                Ok(None)
            };
        }
        self.start(writer, rt);
        let write = self.write.take().expect("started above");
        match rt.block_on(write) {
            Ok(result) => result.map(Some),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // A runtime shutting down cancels it: not acknowledged.
            Err(_) => Err(tradewind_sink::Error::Cancelled),
        }
    }

    /// The cut's buffers, emptied, once no write holds them any more.
    pub fn into_buffers(mut self) -> Option<Buffers> {
        std::mem::replace(&mut self.written, Written::empty()).into_buffers()
    }

    /// What the cut carries, for a failed write to hand back.
    pub fn into_parts(mut self) -> (Written, Vec<DeadLetter>, Vec<StateRecord>) {
        (
            std::mem::replace(&mut self.written, Written::empty()),
            std::mem::take(&mut self.dead),
            std::mem::take(&mut self.state),
        )
    }
}

impl Drop for Cut {
    /// A cut dropped with its write under way (the member is forgetting
    /// uncommitted state, as a crash would) stops the write.
    fn drop(&mut self) {
        if let Some(w) = &self.write {
            w.abort();
        }
    }
}
