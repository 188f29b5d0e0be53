# Shared settings for the no-Docker stack scripts. Sourced, not run.
# Every value can be overridden from the environment.
TW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TRADEWIND_STACK_DIR="${TRADEWIND_STACK_DIR:-$TW_ROOT/.stack}"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
export CH_HTTP_PORT="${CH_HTTP_PORT:-8123}"
export CH_TCP_PORT="${CH_TCP_PORT:-9000}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
# chDB (ClickHouse embedded in Python) for the test suite's current-engine SQL check.
export CHDB_VERSION="${CHDB_VERSION:-4.4.0}"
export TRADEWIND_KAFKA__BROKERS="${TRADEWIND_KAFKA__BROKERS:-127.0.0.1:$KAFKA_PORT}"
export TRADEWIND_CLICKHOUSE__URL="${TRADEWIND_CLICKHOUSE__URL:-http://127.0.0.1:$CH_HTTP_PORT}"

log() { printf '\033[1m[tradewind]\033[0m %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

render() { # render TEMPLATE OUT: fill in @VAR@ placeholders
  sed -e "s#@STACK_DIR@#$TRADEWIND_STACK_DIR#g" \
      -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" \
      -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@CH_HTTP_PORT@#$CH_HTTP_PORT#g" \
      -e "s#@CH_TCP_PORT@#$CH_TCP_PORT#g" "$1" > "$2"
}
