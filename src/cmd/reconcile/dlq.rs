//! This pipeline's dead letters, read back from the DLQ topic (committed
//! records only): how many per source topic, and any source record found
//! twice.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use tradewind_kafka::admin;

use crate::config::AppConfig;

/// Reads the whole DLQ (committed records only): rejections per source
/// topic, plus any source offset found twice.
pub fn read(cfg: &AppConfig) -> Result<(BTreeMap<String, u64>, Vec<String>)> {
    let topic = cfg.kafka.dlq_topic();
    let (group, database) = (
        cfg.aggregator.group_id.as_str(),
        cfg.clickhouse.database.as_str(),
    );
    let consumer: BaseConsumer = cfg
        .kafka
        .client_config()
        .set("group.id", format!("{}-reconcile", cfg.aggregator.group_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    let parts = admin::topic_offsets(&cfg.kafka, &topic)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    for p in &parts {
        tpl.add_partition_offset(&topic, p.partition, Offset::Beginning)?;
        remaining += p.high - p.low;
    }
    consumer.assign(&tpl)?;
    let (mut per_topic, mut seen, mut dupes) = (BTreeMap::new(), HashSet::new(), Vec::new());
    // Offsets include transaction markers, so read until the end is quiet.
    let mut idle = 0;
    while remaining > 0 && idle < 8 {
        match consumer.poll(Duration::from_millis(250)) {
            Some(Ok(m)) => {
                idle = 0;
                remaining -= 1;
                let mut src = (String::new(), String::new(), String::new());
                let mut pipeline = (String::new(), String::new());
                if let Some(h) = m.headers() {
                    for i in 0..h.count() {
                        let hd = h.get(i);
                        let v = String::from_utf8_lossy(hd.value.unwrap_or_default()).to_string();
                        match hd.key {
                            "source.topic" => src.0 = v,
                            "source.partition" => src.1 = v,
                            "source.offset" => src.2 = v,
                            "pipeline.group" => pipeline.0 = v,
                            "pipeline.database" => pipeline.1 = v,
                            _ => {}
                        }
                    }
                }
                if (pipeline.0.as_str(), pipeline.1.as_str()) != (group, database) {
                    continue; // another pipeline's rejection
                }
                *per_topic.entry(src.0.clone()).or_insert(0) += 1;
                let id = format!("{}/{}/{}", src.0, src.1, src.2);
                if !seen.insert(id.clone()) {
                    dupes.push(id);
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => idle += 1,
        }
    }
    Ok((per_topic, dupes))
}
