//! Helpers shared by the integration tests: the harness of
//! `tradewind-testkit` (servers, per-test names, processes killed on
//! drop) and the one place the `tradewind` binary is spawned from.
#![allow(dead_code, unused_imports)]

use std::process::{Command, Output};

pub use tradewind_testkit::{brokers, clickhouse_url, Proc};

/// A name for this run of test `tag`; earlier runs' topics and databases
/// are dropped first.
pub fn unique(tag: &str) -> String {
    tradewind_testkit::scratch_name(tag)
}

/// `tradewind <args>` against the servers under test. Every test spawns
/// the binary through this.
pub fn tradewind_command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradewind"));
    c.args(args)
        .env("TRADEWIND_KAFKA__BROKERS", brokers())
        .env("TRADEWIND_CLICKHOUSE__URL", clickhouse_url());
    c
}

/// Runs `tradewind <args>` to completion.
pub fn tradewind(args: &[&str]) -> Output {
    tradewind_command(args)
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
