#!/usr/bin/env bash
# Brings up the no-Docker stack: a single-node KRaft Apache Kafka 4.x broker on
# 127.0.0.1:$KAFKA_PORT and Debian's ClickHouse server on 127.0.0.1:$CH_HTTP_PORT,
# each with its data under $TRADEWIND_STACK_DIR. Idempotent: what already
# answers is left alone. Returns once both answer.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$TW_ROOT/deploy/local/install.sh"

S="$TRADEWIND_STACK_DIR"
mkdir -p "$S/clickhouse"/{data,tmp,user_files,format_schemas,log} "$S/kafka"/{data,log}

# --- ClickHouse -------------------------------------------------------------
ch_ping() { curl -fsS "http://127.0.0.1:$CH_HTTP_PORT/ping" 2>/dev/null | grep -q Ok; }
if ch_ping; then
  log "ClickHouse already answers on :$CH_HTTP_PORT"
else
  render "$TW_ROOT/deploy/local/clickhouse/config.xml" "$S/clickhouse/config.xml"
  render "$TW_ROOT/deploy/local/clickhouse/users.xml" "$S/clickhouse/users.xml"
  log "starting ClickHouse on :$CH_HTTP_PORT"
  cd "$S/clickhouse"
  setsid nohup clickhouse-server --config-file="$S/clickhouse/config.xml" \
      < /dev/null > "$S/clickhouse/log/stdout.log" 2>&1 &
  echo $! > "$S/clickhouse/pid"
  cd "$TW_ROOT"
fi

# --- Kafka ------------------------------------------------------------------
if port_open "$KAFKA_PORT"; then
  log "Kafka already answers on :$KAFKA_PORT"
else
  render "$TW_ROOT/deploy/local/kafka/server.properties" "$S/kafka/server.properties"
  cp "$TW_ROOT/deploy/local/kafka/log4j2.yaml" "$S/kafka/log4j2.yaml"
  java_opts=(-Dkafka.logs.dir="$S/kafka/log" -Dlog4j2.configurationFile="$S/kafka/log4j2.yaml")
  if [ ! -f "$S/kafka/data/meta.properties" ]; then
    cluster_id=$(java -cp "$S/kafka/jars/*" "${java_opts[@]}" kafka.tools.StorageTool random-uuid | tail -n1)
    log "formatting Kafka storage (cluster $cluster_id)"
    java -cp "$S/kafka/jars/*" "${java_opts[@]}" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$S/kafka/server.properties" --ignore-formatted >/dev/null
  fi
  log "starting Kafka on :$KAFKA_PORT"
  : > "$S/kafka/log/server.log"
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true "${java_opts[@]}" \
      -cp "$S/kafka/jars/*" kafka.Kafka "$S/kafka/server.properties" \
      < /dev/null > "$S/kafka/log/stdout.log" 2>&1 &
  echo $! > "$S/kafka/pid"
fi

# --- wait for both ----------------------------------------------------------
deadline=$((SECONDS + ${TRADEWIND_STACK_TIMEOUT:-120}))
until ch_ping; do
  [ $SECONDS -lt $deadline ] || { log "ClickHouse did not answer; see $S/clickhouse/log"; tail -n 20 "$S/clickhouse/log/"*.log >&2 || true; exit 1; }
  sleep 0.5
done
until port_open "$KAFKA_PORT" && { [ ! -f "$S/kafka/log/server.log" ] || grep -q "Kafka Server started\|started (kafka.server" "$S/kafka/log/server.log" || [ ! -f "$S/kafka/pid" ]; }; do
  [ $SECONDS -lt $deadline ] || { log "Kafka did not answer; see $S/kafka/log"; tail -n 30 "$S/kafka/log/"*.log >&2 || true; exit 1; }
  sleep 0.5
done
log "stack is up: Kafka 127.0.0.1:$KAFKA_PORT, ClickHouse http://127.0.0.1:$CH_HTTP_PORT"
