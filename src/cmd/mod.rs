//! One module per `tradewind` subcommand.

pub mod migrate;
pub mod simulate;
pub mod topics;
