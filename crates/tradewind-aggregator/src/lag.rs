//! How far behind this member is, per assigned partition, from librdkafka's
//! statistics (every `aggregator.stats_interval`):
//! - consumer lag: records on the broker this member has not read yet
//!   (last stable offset − next offset handed to the application);
//! - restart backlog: records a restart would read again (last stable
//!   offset − committed offset). The committed offset is the engine's
//!   restart point, which open windows and timers hold back, so this stays
//!   above zero even when the member is caught up. Offsets are committed
//!   through the DLQ producer's transaction, which the consumer's own
//!   statistics never see, so the pipeline reports them in [`Committed`].
//!
//! Every partition assigned to this member is published. While its
//! partitions are paused (ClickHouse down) librdkafka fetches nothing for
//! them and its statistics stop seeing the head, so the loop asks the
//! broker instead ([`publish_from_broker`]) and the lag keeps rising on
//! `/metrics` while the partitions wait. Gauges of partitions that moved to another
//! member stop being updated and the recorder drops them after the gauge
//! idle timeout ([`crate::telemetry::install_recorder`]).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::telemetry as tm;

/// The offsets this member last committed, per (topic, partition).
#[derive(Debug, Default)]
pub struct Committed(Mutex<HashMap<(String, i32), i64>>);

impl Committed {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), i64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a list whose commit Kafka has acknowledged.
    pub fn record(&self, tpl: &TopicPartitionList) {
        let mut map = self.map();
        for e in tpl.elements() {
            if let Offset::Offset(o) = e.offset() {
                map.insert((e.topic().to_string(), e.partition()), o);
            }
        }
    }

    /// Forgets partitions that moved to another member.
    pub fn forget(&self, tpl: &TopicPartitionList) {
        let mut map = self.map();
        for e in tpl.elements() {
            map.remove(&(e.topic().to_string(), e.partition()));
        }
    }

    fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.map().get(&(topic.to_string(), partition)).copied()
    }
}

/// The partitions assigned to this member now.
#[derive(Debug, Default)]
pub struct Assigned(Mutex<HashSet<(String, i32)>>);

impl Assigned {
    pub fn set(&self, tpl: &TopicPartitionList) {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.clear();
        set.extend(
            tpl.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition())),
        );
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn contains(&self, topic: &str, partition: i32) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(topic.to_string(), partition))
    }
}

/// Publishes the lag gauges from one statistics report.
pub fn publish(stats: &Statistics, committed: &Committed, assigned: &Assigned) {
    for (topic, t) in &stats.topics {
        for (partition, p) in &t.partitions {
            if *partition < 0 || !assigned.contains(topic, *partition) {
                continue;
            }
            let head = if p.ls_offset >= 0 {
                p.ls_offset
            } else {
                p.hi_offset
            };
            if head < 0 {
                continue;
            }
            let labels = [
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            let read = [p.app_offset, p.committed_offset, p.lo_offset]
                .into_iter()
                .find(|o| *o >= 0);
            if let Some(read) = read {
                metrics::gauge!(tm::CONSUMER_LAG_RECORDS, &labels).set((head - read).max(0) as f64);
            }
            if let Some(c) = committed.get(topic, *partition) {
                metrics::gauge!(tm::RESTART_BACKLOG_RECORDS, &labels).set((head - c).max(0) as f64);
            }
        }
    }
}

/// Publishes the lag gauges from the broker's offsets and this member's
/// positions: for paused partitions, whose statistics go stale.
pub fn publish_from_broker<C: ConsumerContext>(consumer: &BaseConsumer<C>, committed: &Committed) {
    let Ok(position) = consumer.position() else {
        return;
    };
    for e in position.elements() {
        let (topic, partition) = (e.topic(), e.partition());
        let Ok((_, head)) =
            consumer.fetch_watermarks(topic, partition, std::time::Duration::from_secs(2))
        else {
            continue;
        };
        let read = match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => committed.get(topic, partition),
        };
        let labels = [
            ("topic", topic.to_string()),
            ("partition", partition.to_string()),
        ];
        if let Some(read) = read {
            metrics::gauge!(tm::CONSUMER_LAG_RECORDS, &labels).set((head - read).max(0) as f64);
        }
        if let Some(c) = committed.get(topic, partition) {
            metrics::gauge!(tm::RESTART_BACKLOG_RECORDS, &labels).set((head - c).max(0) as f64);
        }
    }
}
