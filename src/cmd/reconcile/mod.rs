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

mod dlq;
mod tiling;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clickhouse::Row;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use tradewind_clickhouse::queries;
use tradewind_kafka::admin;
use tradewind_proto::Stream;

use self::tiling::{LedgerSpan, Partition, Tally};
use crate::config::AppConfig;

#[derive(Debug, Row, Deserialize)]
struct Total {
    total: u64,
}

pub async fn run(cfg: &AppConfig) -> Result<()> {
    let conn = tradewind_clickhouse::connect(&cfg.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let mut problems = Vec::new();
    let cfg2 = cfg.clone();
    let (dlq, dupes) = tokio::task::spawn_blocking(move || dlq::read(&cfg2)).await??;
    for d in dupes {
        problems.push(format!("DLQ holds source record {d} more than once"));
    }
    for stream in Stream::ALL {
        problems.extend(check_topic(cfg, &conn.client, stream, &dlq).await?);
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

/// One source topic: its partitions' ledger tiling, its metric totals
/// against the ledger, and its DLQ count against the ledger's rejections.
async fn check_topic(
    cfg: &AppConfig,
    ch: &clickhouse::Client,
    stream: Stream,
    dlq: &BTreeMap<String, u64>,
) -> Result<Vec<String>> {
    let topic = cfg.kafka.topic(stream);
    let spans: Vec<LedgerSpan> = ch
        .query(queries::RECONCILE_LEDGER_SPANS)
        .bind(&topic)
        .fetch_all()
        .await?;
    let offsets = admin::topic_offsets(&cfg.kafka, &topic)?;
    let committed = committed(cfg, &topic, offsets.len() as i32)?;
    let mut problems = Vec::new();
    let mut sum = Tally::default();
    for p in &offsets {
        let mine: Vec<&LedgerSpan> = spans
            .iter()
            .filter(|s| s.partition == p.partition)
            .collect();
        let part = Partition {
            topic: &topic,
            partition: p.partition,
            low: p.low,
            high: p.high,
            committed: committed.get(&p.partition).copied(),
        };
        let (tally, found) = tiling::check(part, &mine);
        sum.aggregated += tally.aggregated;
        sum.rejected += tally.rejected;
        problems.extend(found);
    }
    let (aggregated, rejected) = (sum.aggregated, sum.rejected);
    let windows_per_event =
        (cfg.core.window_size.as_millis() / cfg.core.window_slide.as_millis().max(1)) as u64;
    let metric = match stream {
        Stream::Payments => Some(queries::RECONCILE_PAYMENTS_TOTAL),
        Stream::Iot => Some(queries::RECONCILE_READINGS_TOTAL),
        Stream::Logistics | Stream::Fx => None,
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
    Ok(problems)
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
