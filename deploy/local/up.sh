#!/usr/bin/env bash
# Brings up the no-Docker stack: a single-node KRaft Apache Kafka 4.x broker on
# 127.0.0.1:$KAFKA_PORT and Debian's ClickHouse server on 127.0.0.1:$CH_HTTP_PORT,
# each with its data under $TRADEWIND_STACK_DIR, plus secured listeners for
# TLS and SASL tests (certificates from deploy/local/tls.sh):
#   Kafka      SSL on :$KAFKA_SSL_PORT (client certificate required),
#              SASL_SSL on :$KAFKA_SASL_PORT (SCRAM-SHA-256/512, PLAIN)
#   ClickHouse HTTPS on :$CH_HTTPS_PORT
# Idempotent: what already answers with the current config is left alone; a
# server running an older config (say, without the secured ports) is restarted.
# Returns once every port answers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$TW_ROOT/deploy/local/install.sh"

S="$TRADEWIND_STACK_DIR"
T="$TRADEWIND_TLS_DIR"
mkdir -p "$S/clickhouse"/{data,tmp,user_files,format_schemas,log} "$S/kafka"/{data,log}

# --- TLS material -----------------------------------------------------------
# Checksums before and after tell whether a running server holds old material.
sums() { (cd "$T" 2>/dev/null && cat "$@" 2>/dev/null || true) | cksum; }
kafka_tls_before=$(sums broker.p12 broker-truststore.p12)
ch_tls_before=$(sums clickhouse.crt clickhouse.key)
bash "$TW_ROOT/deploy/local/tls.sh"
[ "$kafka_tls_before" = "$(sums broker.p12 broker-truststore.p12)" ] && kafka_tls_changed=0 || kafka_tls_changed=1
[ "$ch_tls_before" = "$(sums clickhouse.crt clickhouse.key)" ] && ch_tls_changed=0 || ch_tls_changed=1

# stale_reason SVC CONFIG TLS_CHANGED PORT...: why a running server must be
# restarted (a port that does not answer, a changed config or new TLS
# material), or nothing. CONFIG.new is the freshly rendered config.
stale_reason() {
  local svc=$1 config=$2 tls_changed=$3 port
  shift 3
  for port in "$@"; do
    port_open "$port" || { echo "does not answer on :$port"; return; }
  done
  cmp -s "$config" "$config.new" || { echo "runs an older $(basename "$config")"; return; }
  [ "$tls_changed" = 0 ] || echo "holds older TLS material"
}

# restart_stale SVC REASON: stop this stack's server so that it starts anew.
restart_stale() {
  if [ -z "$(stack_pid "$1")" ]; then
    log "$1 $2, and it was not started from $S: stop it and run this again"
    exit 1
  fi
  log "$1 $2: restarting it with the current config"
  stop_service "$1"
}

# --- ClickHouse -------------------------------------------------------------
ch_ping() { curl -fsS "http://127.0.0.1:$CH_HTTP_PORT/ping" 2>/dev/null | grep -q Ok; }
ch_ping_tls() { curl -fsS --cacert "$T/ca.pem" "https://127.0.0.1:$CH_HTTPS_PORT/ping" 2>/dev/null | grep -q Ok; }
render "$TW_ROOT/deploy/local/clickhouse/config.xml" "$S/clickhouse/config.xml.new"
# ClickHouse rereads users.xml by itself, so users change without a restart.
render "$TW_ROOT/deploy/local/clickhouse/users.xml" "$S/clickhouse/users.xml.new"
cmp -s "$S/clickhouse/users.xml.new" "$S/clickhouse/users.xml" || mv "$S/clickhouse/users.xml.new" "$S/clickhouse/users.xml"
rm -f "$S/clickhouse/users.xml.new"
if ch_ping; then
  # An HTTPS request rather than a bare connection, which the server would log as an error.
  if ch_ping_tls; then
    reason=$(stale_reason clickhouse "$S/clickhouse/config.xml" "$ch_tls_changed")
  else
    reason="does not answer https://127.0.0.1:$CH_HTTPS_PORT/ with a certificate from $T/ca.pem"
  fi
  [ -z "$reason" ] || restart_stale clickhouse "$reason"
fi
mv "$S/clickhouse/config.xml.new" "$S/clickhouse/config.xml"
if ch_ping; then
  log "ClickHouse already answers on :$CH_HTTP_PORT and :$CH_HTTPS_PORT (https)"
else
  log "starting ClickHouse on :$CH_HTTP_PORT and :$CH_HTTPS_PORT (https)"
  cd "$S/clickhouse"
  setsid nohup clickhouse-server --config-file="$S/clickhouse/config.xml" \
      < /dev/null > "$S/clickhouse/log/stdout.log" 2>&1 &
  echo $! > "$S/clickhouse/pid"
  cd "$TW_ROOT"
fi

# --- Kafka ------------------------------------------------------------------
render "$TW_ROOT/deploy/local/kafka/server.properties" "$S/kafka/server.properties.new"
if port_open "$KAFKA_PORT"; then
  reason=$(stale_reason kafka "$S/kafka/server.properties" "$kafka_tls_changed" "$KAFKA_SSL_PORT" "$KAFKA_SASL_PORT")
  [ -z "$reason" ] || restart_stale kafka "$reason"
fi
mv "$S/kafka/server.properties.new" "$S/kafka/server.properties"
if port_open "$KAFKA_PORT"; then
  log "Kafka already answers on :$KAFKA_PORT, :$KAFKA_SSL_PORT (ssl) and :$KAFKA_SASL_PORT (sasl_ssl)"
else
  cp "$TW_ROOT/deploy/local/kafka/log4j2.yaml" "$S/kafka/log4j2.yaml"
  java_opts=(-Dkafka.logs.dir="$S/kafka/log" -Dlog4j2.configurationFile="$S/kafka/log4j2.yaml")
  if [ ! -f "$S/kafka/data/meta.properties" ]; then
    cluster_id=$(java -cp "$S/kafka/jars/*" "${java_opts[@]}" kafka.tools.StorageTool random-uuid | tail -n1)
    log "formatting Kafka storage (cluster $cluster_id)"
    java -cp "$S/kafka/jars/*" "${java_opts[@]}" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$S/kafka/server.properties" --ignore-formatted >/dev/null
  fi
  log "starting Kafka on :$KAFKA_PORT, :$KAFKA_SSL_PORT (ssl) and :$KAFKA_SASL_PORT (sasl_ssl)"
  : > "$S/kafka/log/server.log"
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true "${java_opts[@]}" \
      -cp "$S/kafka/jars/*" kafka.Kafka "$S/kafka/server.properties" \
      < /dev/null > "$S/kafka/log/stdout.log" 2>&1 &
  echo $! > "$S/kafka/pid"
fi

# --- wait for both ----------------------------------------------------------
deadline=$((SECONDS + ${TRADEWIND_STACK_TIMEOUT:-120}))
until ch_ping && ch_ping_tls; do
  [ $SECONDS -lt $deadline ] || { log "ClickHouse did not answer; see $S/clickhouse/log"; tail -n 20 "$S/clickhouse/log/"*.log >&2 || true; exit 1; }
  sleep 0.5
done
until port_open "$KAFKA_PORT" && port_open "$KAFKA_SSL_PORT" && port_open "$KAFKA_SASL_PORT" &&
      { [ ! -f "$S/kafka/log/server.log" ] || grep -q "Kafka Server started\|started (kafka.server" "$S/kafka/log/server.log" || [ ! -f "$S/kafka/pid" ]; }; do
  [ $SECONDS -lt $deadline ] || { log "Kafka did not answer; see $S/kafka/log"; tail -n 30 "$S/kafka/log/"*.log >&2 || true; exit 1; }
  sleep 0.5
done

# --- SCRAM credentials --------------------------------------------------------
# Stored in the cluster metadata, so added once per formatted storage (and
# again when the user or password changes), through Kafka's own admin tool.
# One mechanism per call: a KRaft controller refuses two changes to one user
# in the same request.
cluster=$(sed -n 's/^cluster\.id=//p' "$S/kafka/data/meta.properties" 2>/dev/null || true)
scram_mark="$cluster $KAFKA_SASL_USER $(printf '%s' "$KAFKA_SASL_PASSWORD" | sha256sum | cut -c1-16)"
if [ "$(cat "$S/kafka/scram.done" 2>/dev/null || true)" != "$scram_mark" ]; then
  log "adding SCRAM-SHA-256 and SCRAM-SHA-512 credentials for Kafka user $KAFKA_SASL_USER"
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    if ! java -cp "$S/kafka/jars/*" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
        --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
        --add-config "$mechanism=[password=$KAFKA_SASL_PASSWORD]" > "$S/kafka/log/scram.log" 2>&1; then
      log "adding the $mechanism credential failed:"; cat "$S/kafka/log/scram.log" >&2; exit 1
    fi
  done
  echo "$scram_mark" > "$S/kafka/scram.done"
fi
log "stack is up: Kafka 127.0.0.1:$KAFKA_PORT (ssl :$KAFKA_SSL_PORT, sasl_ssl :$KAFKA_SASL_PORT), ClickHouse http://127.0.0.1:$CH_HTTP_PORT (https :$CH_HTTPS_PORT); TLS material in $T"
