#!/usr/bin/env bash
# Stops what deploy/local/up.sh started. Data stays in $TRADEWIND_STACK_DIR;
# pass --wipe to delete it too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
S="$TRADEWIND_STACK_DIR"
for svc in kafka clickhouse; do
  pidfile="$S/$svc/pid"
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
  else
    # No pid file: find the server by the config file only this stack uses.
    case $svc in
      kafka) pid=$(pgrep -f "kafka.Kafka $S/kafka/server.properties" | head -n1 || true) ;;
      clickhouse) pid=$(pgrep -f "config-file=$S/clickhouse/config.xml" | head -n1 || true) ;;
    esac
    [ -n "$pid" ] || continue
  fi
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $svc (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
if [ "${1:-}" = "--wipe" ]; then
  log "wiping $S (the Kafka jars are kept)"
  rm -rf "$S/clickhouse" "$S/kafka/data" "$S/kafka/log"
fi
