//! One deterministic decode + aggregate run of the event-time core, for
//! counting instructions with callgrind instead of timing on a noisy host.
//! Everything that counts happens inside `measured`: engine creation,
//! decoding, folding, taking and dropping the output, flushing and
//! dropping the engine. The input is generated outside it, so callgrind's
//! `--toggle-collect` on that function counts the core alone.
//!
//!   benches/callgrind.sh                                # every stream
//!   core_instructions <payments|iot|logistics> [events]  # one run
//!
//! Without valgrind it just runs once and prints what it folded.

mod core_input;

use core_input::{bench_config, decode_and_fold, milestones, payments, readings, EVENTS};
use prost::Message;
use tradewind_core::{CoreConfig, Engine, Family, PaymentCorridors};

/// The measured part; callgrind collects only inside it. Returns the
/// number of rows emitted.
#[inline(never)]
fn measured<F: Family>(make: impl Fn() -> F, encoded: &[Vec<u8>]) -> usize
where
    F::Event: Message + Default,
{
    let family = make();
    let mut engine = Engine::new(&bench_config(), make()).expect("config");
    let mut rows = 0;
    decode_and_fold(&mut engine, &family, encoded, |out| rows += out.rows.len());
    drop(engine);
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; run every stream then.
    let streams: Vec<&str> = match args.first().map(String::as_str) {
        Some(s) if !s.starts_with('-') => vec![s],
        _ => vec!["payments", "iot", "logistics"],
    };
    let n = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(EVENTS);
    let cfg = CoreConfig::default();
    for stream in streams {
        let rows = match stream {
            "payments" => measured(|| PaymentCorridors, &payments(n)),
            "iot" => measured(|| cfg.iot(), &readings(n)),
            "logistics" => measured(|| cfg.logistics(), &milestones(n)),
            other => panic!("unknown stream {other:?}: payments, iot or logistics"),
        };
        println!("core_instructions/{stream}: {n} events, {rows} rows");
    }
}
