//! `tradewind reconcile`: checks the ledger against Kafka and the metric
//! tables, and prints OK or every difference (exit code 1).
//!
//! Per source partition of payments, IoT, logistics and FX:
//! - the ledger rows tile the partition's offsets from its low watermark
//!   with no gap or overlap, each row's `seen` equals its offset range, and
//!   they reach the high watermark (everything produced was consumed);
//! - the aggregator group's committed offset is at most the high watermark;
//! - the events the ledger says were aggregated are in the metric tables:
//!   `sum(payments)` and `sum(readings)` equal `aggregated` times the
//!   windows each event lands in (1 for tumbling windows);
//! - the DLQ holds exactly one record per rejection the ledger counts, and
//!   no source offset twice. Only this pipeline's DLQ records count (headers
//!   `pipeline.group` and `pipeline.database` equal to `aggregator.group_id`
//!   and `clickhouse.database`): pipelines sharing a topic prefix share the
//!   DLQ topic.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result};
use clickhouse::Row;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use tradewind_kafka::admin;

use crate::config::AppConfig;

#[derive(Debug, Row, Deserialize)]
struct LedgerSpan {
    partition: i32,
    first_offset: i64,
    last_offset: i64,
    seen: u64,
    aggregated: u64,
    rejected: u64,
}

#[derive(Debug, Row, Deserialize)]
struct Total {
    total: u64,
}

/// Reads the whole DLQ (committed records only): rejections per source
/// topic, plus any source offset found twice.
fn read_dlq(cfg: &AppConfig) -> Result<(BTreeMap<String, u64>, Vec<String>)> {
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

pub async fn run(cfg: &AppConfig) -> Result<()> {
    let conn = tradewind_clickhouse::connect(&cfg.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let ch = &conn.client;
    let windows_per_event =
        (cfg.core.window_size.as_millis() / cfg.core.window_slide.as_millis().max(1)) as u64;
    let mut problems = Vec::new();

    let cfg2 = cfg.clone();
    let (dlq, dupes) = tokio::task::spawn_blocking(move || read_dlq(&cfg2)).await??;
    for d in dupes {
        problems.push(format!("DLQ holds source record {d} more than once"));
    }

    for stream in tradewind_proto::Stream::ALL {
        let topic = cfg.kafka.topic(stream);
        let spans: Vec<LedgerSpan> = ch
            .query(
                "SELECT partition, first_offset, last_offset, seen, aggregated, \
                 too_late + future_timestamp + malformed + unknown_enum + invalid AS rejected \
                 FROM ledger FINAL WHERE topic = ? ORDER BY partition, first_offset",
            )
            .bind(&topic)
            .fetch_all()
            .await?;
        let offsets = admin::topic_offsets(&cfg.kafka, &topic)?;
        let committed = committed(cfg, &topic, offsets.len() as i32)?;
        let (mut aggregated, mut rejected) = (0u64, 0u64);
        for p in &offsets {
            let mine: Vec<&LedgerSpan> = spans
                .iter()
                .filter(|s| s.partition == p.partition)
                .collect();
            let mut next = p.low;
            for s in &mine {
                if s.first_offset != next {
                    problems.push(format!(
                        "{topic}[{}]: ledger jumps from offset {next} to {}",
                        p.partition, s.first_offset
                    ));
                }
                if s.seen as i64 != s.last_offset - s.first_offset + 1 {
                    problems.push(format!(
                        "{topic}[{}]: ledger row {}..={} says seen {}",
                        p.partition, s.first_offset, s.last_offset, s.seen
                    ));
                }
                next = s.last_offset + 1;
                aggregated += s.aggregated;
                rejected += s.rejected;
            }
            if next != p.high {
                problems.push(format!(
                    "{topic}[{}]: ledger covers offsets up to {} but the partition ends at {} ({} records not yet accounted)",
                    p.partition,
                    next - 1,
                    p.high - 1,
                    p.high - next
                ));
            }
            if let Some(c) = committed.get(&p.partition) {
                if *c > p.high {
                    problems.push(format!(
                        "{topic}[{}]: committed offset {c} is past the end {}",
                        p.partition, p.high
                    ));
                }
            }
        }
        let metric = match stream {
            tradewind_proto::Stream::Payments => {
                Some("SELECT sum(payments) AS total FROM trade_corridors FINAL WHERE topic = ?")
            }
            tradewind_proto::Stream::Iot => {
                Some("SELECT sum(readings) AS total FROM iot_health FINAL WHERE topic = ?")
            }
            _ => None,
        };
        if let Some(sql) = metric {
            let t: Total = ch.query(sql).bind(&topic).fetch_one().await?;
            if t.total != aggregated * windows_per_event {
                problems.push(format!(
                    "{topic}: metric tables hold {} events, the ledger aggregated {} (x{windows_per_event} windows each)",
                    t.total, aggregated
                ));
            }
        }
        let in_dlq = dlq.get(&topic).copied().unwrap_or(0);
        if in_dlq != rejected {
            problems.push(format!(
                "{topic}: the ledger rejected {rejected} records, the DLQ holds {in_dlq}"
            ));
        }
        println!(
            "{topic}: {} partitions, aggregated {aggregated}, rejected {rejected}, in DLQ {in_dlq}",
            offsets.len()
        );
    }

    if problems.is_empty() {
        println!("OK");
        Ok(())
    } else {
        for p in &problems {
            println!("DIFF {p}");
        }
        anyhow::bail!("{} difference(s)", problems.len())
    }
}

/// The aggregator group's committed offsets for `topic`.
fn committed(cfg: &AppConfig, topic: &str, partitions: i32) -> Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = cfg
        .kafka
        .client_config()
        .set("group.id", &cfg.aggregator.group_id)
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(tpl, cfg.kafka.connect_timeout)?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}
