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
    /// and latencies. Returns the record times' latencies (ms) for the
    /// caller's own histogram.
    ///
    /// Latencies go to the metrics histograms as one `record_many` per
    /// distinct millisecond, not one call per record: a cut holds hundreds
    /// of thousands of records but only as many distinct latencies as its
    /// records span milliseconds.
    pub fn acknowledged(&mut self, acked_ms: i64) -> Vec<u64> {
        let rows = self.batch.len();
        if rows > 0 {
            metrics::histogram!(tm::SINK_BATCH_ROWS).record(rows as f64);
        }
        for (topic, n) in self.consumed.drain(..) {
            metrics::counter!(tm::CONSUMED_TOTAL, "topic" => topic).increment(n);
        }
        let mut end_to_end: Vec<u64> = self
            .event_times
            .drain(..)
            .map(|t| (acked_ms - t).max(0) as u64)
            .collect();
        record_runs(
            &metrics::histogram!(tm::END_TO_END_SECONDS),
            &mut end_to_end,
        );
        let mut pipeline: Vec<u64> = self
            .record_times
            .drain(..)
            .map(|t| (acked_ms - t).max(0) as u64)
            .collect();
        record_runs(&metrics::histogram!(tm::PIPELINE_SECONDS), &mut pipeline);
        pipeline
    }
}

/// Records millisecond latencies in seconds, one call per run of equal
/// values after sorting.
fn record_runs(h: &metrics::Histogram, ms: &mut [u64]) {
    ms.sort_unstable();
    for run in ms.chunk_by(|a, b| a == b) {
        h.record_many(run[0] as f64 / 1000.0, run.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn every_latency_sample_is_recorded_once() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let mut w = Written {
            batch: Arc::default(),
            consumed: vec![("t.payments".into(), 4)],
            event_times: vec![900, 900, 950, 1_000],
            record_times: vec![1_990, 1_000, 1_990, 1_500],
        };
        let ms = metrics::with_local_recorder(&recorder, || w.acknowledged(2_000));
        assert_eq!(ms, vec![10, 10, 500, 1_000]);
        let snap = snapshotter.snapshot().into_vec();
        let samples = |name: &str| -> Vec<f64> {
            snap.iter()
                .filter(|(k, ..)| k.key().name() == name)
                .flat_map(|(.., v)| match v {
                    DebugValue::Histogram(h) => h.iter().map(|x| x.into_inner()).collect(),
                    _ => vec![],
                })
                .collect()
        };
        assert_eq!(samples(tm::PIPELINE_SECONDS), vec![0.01, 0.01, 0.5, 1.0]);
        assert_eq!(samples(tm::END_TO_END_SECONDS), vec![1.0, 1.05, 1.1, 1.1]);
        assert!(w.event_times.is_empty() && w.record_times.is_empty());
    }
}
