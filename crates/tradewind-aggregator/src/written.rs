//! What a commit's cut takes out of the [`crate::pipeline::Pipeline`]: the
//! rows for ClickHouse, and the consumed counts and record times that are
//! published only once ClickHouse has acknowledged those rows (so the
//! counters and latency histograms never run ahead of what is visible).

use std::sync::Arc;

use tradewind_sink::Batch;

use crate::telemetry as tm;

pub struct Written {
    /// Shared with the ClickHouse write while it runs.
    pub batch: Arc<Batch>,
    /// Records consumed per topic.
    pub(crate) consumed: Vec<(String, u64)>,
    /// Event times of what was folded, for the end-to-end latency.
    pub(crate) event_times: Vec<i64>,
    /// Kafka record times of what was consumed, for the pipeline latency.
    pub(crate) record_times: Vec<i64>,
}

impl Written {
    pub fn empty() -> Self {
        Self {
            batch: Arc::default(),
            consumed: Vec::new(),
            event_times: Vec::new(),
            record_times: Vec::new(),
        }
    }

    /// ClickHouse acknowledged the rows at `acked_ms`: publish the counts
    /// and latencies ([`crate::latency`]), and add the record times'
    /// latencies (ms) to the caller's own histogram `own`. The sample
    /// buffers keep their capacity for [`Written::into_buffers`].
    pub fn acknowledged(&mut self, acked_ms: i64, own: &mut hdrhistogram::Histogram<u64>) {
        let rows = self.batch.len();
        if rows > 0 {
            metrics::histogram!(tm::SINK_BATCH_ROWS).record(rows as f64);
        }
        for (topic, n) in self.consumed.drain(..) {
            metrics::counter!(tm::CONSUMED_TOTAL, "topic" => topic).increment(n);
        }
        let since = |t: &i64| (acked_ms - t).max(0) as u64;
        crate::latency::END_TO_END.record_ms(self.event_times.iter().map(since));
        crate::latency::PIPELINE.record_ms(self.record_times.iter().map(since));
        for ms in self.record_times.iter().map(since) {
            let _ = own.record(ms);
        }
        self.event_times.clear();
        self.record_times.clear();
    }

    /// The batch and sample buffers, cleared, once no write holds the
    /// batch any more: the pipeline reuses them instead of growing new
    /// ones from nothing at every cut.
    pub fn into_buffers(self) -> Option<Buffers> {
        let mut batch = Arc::try_unwrap(self.batch).ok()?;
        batch.clear();
        let (mut event_times, mut record_times) = (self.event_times, self.record_times);
        event_times.clear();
        record_times.clear();
        Some(Buffers {
            batch,
            event_times,
            record_times,
        })
    }
}

/// Emptied buffers of an acknowledged cut.
#[derive(Default)]
pub struct Buffers {
    pub batch: Batch,
    pub event_times: Vec<i64>,
    pub record_times: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_latency_sample_is_counted_once() {
        let before = (
            crate::latency::PIPELINE.count(),
            crate::latency::END_TO_END.count(),
        );
        let mut w = Written {
            batch: Arc::default(),
            consumed: vec![("t.payments".into(), 4)],
            event_times: vec![900, 900, 950],
            record_times: vec![1_990, 1_000, 1_990, 1_500],
        };
        let mut own = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        w.acknowledged(2_000, &mut own);
        assert_eq!(own.len(), 4);
        assert_eq!((own.min(), own.max()), (10, 1_000));
        assert_eq!(crate::latency::PIPELINE.count() - before.0, 4);
        assert_eq!(crate::latency::END_TO_END.count() - before.1, 3);
        assert!(w.event_times.is_empty() && w.record_times.is_empty());
    }
}
