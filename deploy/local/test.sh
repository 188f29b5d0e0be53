#!/usr/bin/env bash
# Runs every Tradewind test against a real Kafka broker and a real ClickHouse
# server: installs what is missing, starts the local stack if it is not
# already up, runs `cargo test --workspace`, and stops what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TW_ROOT"

started_here=0
if ! port_open "$KAFKA_PORT" || ! port_open "$CH_HTTP_PORT"; then
  started_here=1
fi
cleanup() { [ "$started_here" = 1 ] && bash "$TW_ROOT/deploy/local/down.sh" || true; }
trap cleanup EXIT

bash "$TW_ROOT/deploy/local/up.sh"
log "running the test suite"
out="$(mktemp)"
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$out" || status=$?
# One closing line over every test binary, so the total is plain to read.
summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tradewind: %d passed, %d failed\n", p, f }' "$out")
rm -f "$out"
cleanup
trap - EXIT
echo "$summary"
exit "$status"
