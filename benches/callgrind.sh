#!/bin/sh
# Instructions per event of the event-time core, per stream, counted by
# callgrind (stable on a shared, noisy host where wall-clock is not).
# Only `measured` in benches/core_instructions.rs is collected: decoding,
# folding, output and engine drop, not the input generation.
#
#   benches/callgrind.sh [events]        # default 200000
#   TRADEWIND_BENCH_DEDUP=0 benches/callgrind.sh   # without deduplication
#
# Leaves callgrind.out.<stream> in target/callgrind/ for callgrind_annotate.
set -eu
cd "$(dirname "$0")/.."
n=${1:-200000}
cargo bench --bench core_instructions --no-run >/dev/null 2>&1 \
  || cargo bench --bench core_instructions --no-run
exe=$(ls -t target/release/deps/core_instructions-* | grep -v '\.d$' | head -n 1)
mkdir -p target/callgrind
for stream in payments iot logistics; do
  out=target/callgrind/callgrind.out.$stream
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect='*core_instructions::measured*' \
    "$exe" "$stream" "$n" >/dev/null 2>&1
  ir=$(awk '/^totals:/ {print $2}' "$out")
  echo "$stream: $n events, $ir Ir, $((ir / n)) Ir/event"
done
