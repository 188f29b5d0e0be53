//! Helpers shared by the integration tests: server addresses from the
//! environment, unique names, and running the `tradewind` binary.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn brokers() -> String {
    std::env::var("TRADEWIND_KAFKA__BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn clickhouse_url() -> String {
    std::env::var("TRADEWIND_CLICKHOUSE__URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A name unique to this test run, for topics and databases.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tw_{tag}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

pub fn tradewind(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tradewind"))
        .args(args)
        .env("TRADEWIND_KAFKA__BROKERS", brokers())
        .env("TRADEWIND_CLICKHOUSE__URL", clickhouse_url())
        .output()
        .expect("tradewind binary runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
