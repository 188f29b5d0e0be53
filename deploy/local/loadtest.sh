#!/usr/bin/env bash
# A capacity test of the local stack in one command: installs what is
# missing and brings up Kafka and ClickHouse (deploy/local/up.sh), builds
# the release binary, starts MEMBERS aggregator members (default 1; metrics
# on 127.0.0.1:9470, 9471, …) on topics and a group of this run's own
# (`loadtest-<time>.*`, `loadtest-<time>`) and the `loadtest` database,
# runs `tradewind loadtest` against
# them, and stops the members it started (they run in their own session,
# so a Ctrl-C stops the load test, which reports, before them). The report (report.md, report.json, three
# SVG plots) lands in ./loadtest-report/. Extra arguments go to
# `tradewind loadtest`:
#   bash deploy/local/loadtest.sh
#   MEMBERS=2 bash deploy/local/loadtest.sh --steps 25,50,75,100,125,150 --step-duration 30s
#   bash deploy/local/loadtest.sh --estimate 150000 --p99-target 3s
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TW_ROOT"

bash "$TW_ROOT/deploy/local/up.sh"
log "building tradewind (release)"
cargo build --release --locked --bin tradewind
tw="$TW_ROOT/target/release/tradewind"
members="${MEMBERS:-1}"
# Each run starts from empty topics and a new group, so no backlog of an
# earlier run counts against this one.
run_id="$(date -u +%Y%m%d%H%M%S)"
export TRADEWIND_KAFKA__TOPIC_PREFIX="${LOADTEST_TOPIC_PREFIX:-loadtest-$run_id.}"
export TRADEWIND_CLICKHOUSE__DATABASE="${LOADTEST_DATABASE:-loadtest}"
export TRADEWIND_AGGREGATOR__GROUP_ID="${LOADTEST_GROUP_ID:-loadtest-$run_id}"

"$tw" migrate
"$tw" topics >/dev/null
logs="$TW_ROOT/.stack/loadtest"
mkdir -p "$logs"
pids=()
metrics=()
stop_members() {
  [ "${#pids[@]}" -gt 0 ] || return 0
  log "stopping the ${#pids[@]} member(s) this run started"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop_members EXIT
for i in $(seq 0 $((members - 1))); do
  port=$((9470 + i))
  TRADEWIND_AGGREGATOR__LISTEN="127.0.0.1:$port" \
  TRADEWIND_AGGREGATOR__INSTANCE_ID="loadtest-$i" \
  TRADEWIND_AGGREGATOR__STATS_INTERVAL="${STATS_INTERVAL:-1s}" \
    setsid "$tw" aggregate >"$logs/member-$i.log" 2>&1 &
  pids+=("$!")
  metrics+=(--metrics "127.0.0.1:$port")
done
log "waiting for $members member(s) to be ready (logs in $logs)"
for i in $(seq 0 $((members - 1))); do
  ready=0
  for _ in $(seq 1 120); do
    if "$tw" health --url "http://127.0.0.1:$((9470 + i))/ready" >/dev/null 2>&1; then
      ready=1
      break
    fi
    kill -0 "${pids[$i]}" 2>/dev/null || break
    sleep 1
  done
  if [ "$ready" != 1 ]; then
    log "member $i did not become ready; its log:"
    tail -n 20 "$logs/member-$i.log" >&2
    exit 1
  fi
done
log "load test: rising steps until the stack no longer keeps up"
"$tw" loadtest "${metrics[@]}" "$@"
