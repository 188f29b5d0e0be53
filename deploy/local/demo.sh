#!/usr/bin/env bash
# The whole pipeline on one machine, no Docker: installs what is missing,
# brings up Kafka and ClickHouse, applies the schema, simulates the default
# scenario into Kafka and shows the record counts per topic.
#   COUNT=500000 bash deploy/local/demo.sh      # more records
#   RATE=2000 bash deploy/local/demo.sh         # paced instead of flat out
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TW_ROOT"

bash "$TW_ROOT/deploy/local/up.sh"
log "building tradewind (release)"
cargo build --release --locked --bin tradewind
tw="$TW_ROOT/target/release/tradewind"

"$tw" migrate
rate_args=()
[ -n "${RATE:-}" ] && rate_args=(--rate "$RATE")
log "simulating ${COUNT:-200000} records into Kafka"
"$tw" simulate --count "${COUNT:-200000}" "${rate_args[@]}" --truth "$TW_ROOT/.stack/last-run.truth.json"
"$tw" topics
log "done. Stop the stack with: bash deploy/local/down.sh"
