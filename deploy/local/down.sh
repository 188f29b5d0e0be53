#!/usr/bin/env bash
# Stops what deploy/local/up.sh started. Data stays in $TRADEWIND_STACK_DIR;
# pass --wipe to delete it too (with the TLS material; the Kafka jars stay).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
S="$TRADEWIND_STACK_DIR"
for svc in kafka clickhouse; do
  stop_service "$svc"
done
if [ "${1:-}" = "--wipe" ]; then
  log "wiping $S (the Kafka jars are kept)"
  rm -rf "$S/clickhouse" "$S/kafka/data" "$S/kafka/log" "$S/kafka/scram.done"
  # The TLS material goes too, but only from inside the stack directory.
  case "$TRADEWIND_TLS_DIR" in "$S"/*) rm -rf "$TRADEWIND_TLS_DIR" ;; esac
fi
