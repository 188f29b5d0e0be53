# Shared settings for the no-Docker stack scripts. Sourced, not run.
# Every value can be overridden from the environment.
TW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TRADEWIND_STACK_DIR="${TRADEWIND_STACK_DIR:-$TW_ROOT/.stack}"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
export CH_HTTP_PORT="${CH_HTTP_PORT:-8123}"
export CH_TCP_PORT="${CH_TCP_PORT:-9000}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
# Secured listeners beside the plaintext ones, for end-to-end TLS and SASL
# tests. Certificates and keys are made by deploy/local/tls.sh.
export TRADEWIND_TLS_DIR="${TRADEWIND_TLS_DIR:-$TRADEWIND_STACK_DIR/tls}"
export TLS_STORE_PASSWORD="${TLS_STORE_PASSWORD:-tradewind-local}"
export KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-9094}"     # SSL, client certificate required
export KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-9095}"   # SASL_SSL: SCRAM-SHA-256/512, PLAIN
export KAFKA_SASL_USER="${KAFKA_SASL_USER:-tradewind}"
export KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-tradewind-secret}"
export CH_HTTPS_PORT="${CH_HTTPS_PORT:-8443}"
export CH_TLS_USER="${CH_TLS_USER:-tradewind_tls}"
export CH_TLS_PASSWORD="${CH_TLS_PASSWORD:-tradewind-secret}"
# chDB (ClickHouse embedded in Python) for the test suite's current-engine SQL check.
export CHDB_VERSION="${CHDB_VERSION:-4.4.0}"
export TRADEWIND_KAFKA__BROKERS="${TRADEWIND_KAFKA__BROKERS:-127.0.0.1:$KAFKA_PORT}"
export TRADEWIND_CLICKHOUSE__URL="${TRADEWIND_CLICKHOUSE__URL:-http://127.0.0.1:$CH_HTTP_PORT}"

log() { printf '\033[1m[tradewind]\033[0m %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Escapes a value for the right-hand side of the sed substitutions below.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&#]/\\&/g'; }

render() { # render TEMPLATE OUT: fill in @VAR@ placeholders
  local ch_pw_sha
  # users.xml gets a hash, so the password needs no XML escaping.
  ch_pw_sha=$(printf '%s' "$CH_TLS_PASSWORD" | sha256sum | cut -d' ' -f1)
  sed -e "s#@STACK_DIR@#$(sed_escape "$TRADEWIND_STACK_DIR")#g" \
      -e "s#@TLS_DIR@#$(sed_escape "$TRADEWIND_TLS_DIR")#g" \
      -e "s#@TLS_STORE_PASSWORD@#$(sed_escape "$TLS_STORE_PASSWORD")#g" \
      -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" \
      -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@KAFKA_SSL_PORT@#$KAFKA_SSL_PORT#g" \
      -e "s#@KAFKA_SASL_PORT@#$KAFKA_SASL_PORT#g" \
      -e "s#@KAFKA_SASL_USER@#$(sed_escape "$KAFKA_SASL_USER")#g" \
      -e "s#@KAFKA_SASL_PASSWORD@#$(sed_escape "$KAFKA_SASL_PASSWORD")#g" \
      -e "s#@CH_HTTP_PORT@#$CH_HTTP_PORT#g" \
      -e "s#@CH_HTTPS_PORT@#$CH_HTTPS_PORT#g" \
      -e "s#@CH_TCP_PORT@#$CH_TCP_PORT#g" \
      -e "s#@CH_TLS_USER@#$(sed_escape "$CH_TLS_USER")#g" \
      -e "s#@CH_TLS_PASSWORD_SHA256@#$ch_pw_sha#g" "$1" > "$2"
}

stack_pid() { # stack_pid kafka|clickhouse: pid of this stack's server, or nothing
  local S="$TRADEWIND_STACK_DIR" pid=""
  [ -f "$S/$1/pid" ] && pid=$(cat "$S/$1/pid")
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    # No live pid file: find the server by the config file only this stack uses.
    case $1 in
      kafka) pid=$(pgrep -f "kafka.Kafka $S/kafka/server.properties" | head -n1 || true) ;;
      clickhouse) pid=$(pgrep -f "config-file=$S/clickhouse/config.xml" | head -n1 || true) ;;
    esac
  fi
  echo "$pid"
}

stop_service() { # stop_service kafka|clickhouse: stop this stack's server, if running
  local pid
  pid=$(stack_pid "$1")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$TRADEWIND_STACK_DIR/$1/pid"
}
