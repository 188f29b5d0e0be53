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
    /// and latencies ([`crate::latency`]). Returns the record times'
    /// latencies (ms) for the caller's own histogram.
    pub fn acknowledged(&mut self, acked_ms: i64) -> Vec<u64> {
        let rows = self.batch.len();
        if rows > 0 {
            metrics::histogram!(tm::SINK_BATCH_ROWS).record(rows as f64);
        }
        for (topic, n) in self.consumed.drain(..) {
            metrics::counter!(tm::CONSUMED_TOTAL, "topic" => topic).increment(n);
        }
        crate::latency::END_TO_END.record_ms(
            self.event_times
                .drain(..)
                .map(|t| (acked_ms - t).max(0) as u64),
        );
        let pipeline: Vec<u64> = self
            .record_times
            .drain(..)
            .map(|t| (acked_ms - t).max(0) as u64)
            .collect();
        crate::latency::PIPELINE.record_ms(pipeline.iter().copied());
        pipeline
    }
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
        assert_eq!(w.acknowledged(2_000), vec![10, 1_000, 10, 500]);
        assert_eq!(crate::latency::PIPELINE.count() - before.0, 4);
        assert_eq!(crate::latency::END_TO_END.count() - before.1, 3);
        assert!(w.event_times.is_empty() && w.record_times.is_empty());
    }
}
