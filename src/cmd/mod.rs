//! One module per `tradewind` subcommand.

pub mod aggregate;
pub mod dashboard;
pub mod health;
pub mod loadtest;
pub mod migrate;
pub mod reconcile;
pub mod simulate;
pub mod topics;
