//! What the benches that drive the `tradewind` binary share: the broker
//! address, a command against one bench's topics, database and group, the
//! record count of its topics, and a log line without terminal colours.

#![allow(dead_code)]

use std::process::Command;

use tradewind_kafka::{admin, KafkaConfig};

pub const EXE: &str = env!("CARGO_BIN_EXE_tradewind");

pub fn brokers() -> String {
    std::env::var("TRADEWIND_KAFKA__BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// `tradewind` against `prefix`'s topics, database `db` and group `group`.
pub fn tw(prefix: &str, db: &str, group: &str) -> Command {
    let mut c = Command::new(EXE);
    c.args(["--topic-prefix", prefix, "--database", db])
        .env("TRADEWIND_AGGREGATOR__GROUP_ID", group)
        .env("TRADEWIND_AGGREGATOR__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info,rdkafka=warn");
    c
}

/// Runs `c`, panicking with its output if it fails; returns the output.
pub fn run_ok(mut c: Command) -> String {
    let out = c.output().expect("tradewind runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// Records in the four stream topics of `prefix`.
pub fn records_in(prefix: &str) -> i64 {
    let k = KafkaConfig {
        brokers: brokers(),
        topic_prefix: prefix.into(),
        ..KafkaConfig::default()
    };
    k.stream_topics()
        .iter()
        .flat_map(|t| admin::topic_offsets(&k, t).expect("offsets"))
        .map(|p| p.high - p.low)
        .sum()
}

/// `line` without its terminal colour codes (tracing colours its fields).
pub fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for ch in line.chars() {
        match (skip, ch) {
            (_, '\u{1b}') => skip = true,
            (true, 'm') => skip = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}
