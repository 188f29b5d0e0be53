//! The aggregator against a real Kafka broker and a real ClickHouse server:
//! simulate a fixed scenario, aggregate it (with `kill -9` crashes, a
//! rebalance, a SIGTERM), and check ClickHouse's merged metrics against the
//! simulator's truth exactly, then `tradewind reconcile`.
//!
//! One test binary; each module owns one kind of trouble.

mod bad_input;
mod broker;
mod browser;
#[path = "../common/mod.rs"]
mod common;
mod crashes;
mod healing;
mod loadtest;
mod ops;
mod outage;
mod retention;
mod sketches;
mod world;
