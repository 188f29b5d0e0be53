#!/usr/bin/env bash
# Runs the compose stack for real on this machine and checks it, as a user
# would meet it. No container registry is reachable here, so third-party
# images are local stand-ins (deploy/compose/standins/build.sh: Debian base
# from debootstrap, Kafka from the Maven jars, ClickHouse and Prometheus from
# Debian's packages), swapped in through the compose file's image variables.
# Tradewind's image is built from the real deploy/Dockerfile with only its
# base images swapped through build arguments. Grafana has no stand-in; its
# SQL is checked by deploy/check/ and deploy/compose/grafana/check_sql.py.
#
# Installs docker.io and debootstrap if missing, Docker Compose v2 if
# missing (built from the Go module proxy), starts its own dockerd if none
# runs, and stops what it started. Needs ports 9092, 8123, 3000 and 9090
# free: stop the local stack first (deploy/local/down.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../local/env.sh"
cd "$TW_ROOT"
t0=$SECONDS
S="$TRADEWIND_STACK_DIR"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
project=tradewind-test
COMPOSE_VERSION=${COMPOSE_VERSION:-v2.40.3}

fail() { log "FAILED: $*"; exit 1; }

# --- tools ------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! docker compose version >/dev/null 2>&1; then
  plugin="$S/tools/docker-compose"
  if [ ! -x "$plugin" ]; then
    command -v go >/dev/null || fail "Docker Compose v2 is missing and there is no Go toolchain to build it"
    log "building Docker Compose $COMPOSE_VERSION from the Go module proxy"
    dir=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    src="$S/tools/compose-src"
    rm -rf "$src"; cp -r "$dir" "$src"; chmod -R u+w "$src"
    (cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" -o "$plugin" ./cmd)
    rm -rf "$src"
  fi
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
fi
docker compose version

dockerd_started=0
mkdir -p "$S/docker"
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  setsid nohup $SUDO dockerd --pidfile "$S/docker/dockerd.pid" > "$S/docker/dockerd.log" 2>&1 < /dev/null &
  dockerd_started=1
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 20 "$S/docker/dockerd.log"; fail "dockerd did not start"; }
fi

for port in 9092 8123 3000 9090; do
  if port_open "$port"; then fail "port $port is in use; stop the local stack first (bash deploy/local/down.sh)"; fi
done

dc() { docker compose -p "$project" -f deploy/compose/docker-compose.yml "$@"; }
cleanup() {
  local status=$?
  if [ "$status" != 0 ]; then
    log "logs of the failed run:"
    dc logs --no-color --tail 40 2>&1 | tail -n 200 || true
  fi
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  if [ "$dockerd_started" = 1 ] && [ -f "$S/docker/dockerd.pid" ]; then
    $SUDO kill "$(cat "$S/docker/dockerd.pid")" 2>/dev/null || true
  fi
  log "compose test took $((SECONDS - t0)) s"
}
trap cleanup EXIT

# --- images -----------------------------------------------------------------
bash deploy/compose/standins/build.sh
export KAFKA_IMAGE=tradewind-standin/kafka:4.1.1
export CLICKHOUSE_IMAGE=tradewind-standin/clickhouse:18.16
export PROMETHEUS_IMAGE=tradewind-standin/prometheus:debian
export RUST_IMAGE=tradewind-standin/rust:1-bookworm
export RUNTIME_IMAGE=tradewind-standin/debian:bookworm
# ClickHouse's nofile limit cannot exceed what dockerd itself may open.
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=262144
export CLICKHOUSE_NOFILE=$(( hard < 262144 ? hard : 262144 ))
log "building tradewind:local from deploy/Dockerfile (base images swapped)"
tb=$SECONDS
docker build -f deploy/Dockerfile \
  --build-arg RUST_IMAGE="$RUST_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
  -t tradewind:local . > "$S/docker/image-build.log" 2>&1 \
  || { tail -n 40 "$S/docker/image-build.log"; fail "docker build"; }
log "image built in $((SECONDS - tb)) s"
log "building the host's tradewind (for reconcile against the published ports)"
cargo build --locked --bin tradewind
tw="$TW_ROOT/target/debug/tradewind"

# --- up ---------------------------------------------------------------------
services=(kafka clickhouse init simulator aggregator dashboard prometheus)
log "docker compose up (${services[*]}, aggregator x2)"
dc up -d --no-build --scale aggregator=2 "${services[@]}"
up_at=$SECONDS

all_healthy() {
  local out
  out=$(dc ps -a --format '{{.Service}} {{.State}} {{.Health}} {{.ExitCode}}')
  echo "$out" | awk '
    $1 == "init" { if (!($2 == "exited" && $NF == 0)) bad = 1; next }
    { if ($2 != "running" || $3 != "healthy") bad = 1 }
    END { exit bad }'
}
deadline=$((SECONDS + 600))
until all_healthy; do
  [ $SECONDS -lt $deadline ] || { dc ps -a; fail "not every container became healthy within 10 minutes"; }
  sleep 5
done
log "every container is healthy after $((SECONDS - up_at)) s"
dc ps -a

# --- Prometheus scrapes both replicas ---------------------------------------
deadline=$((SECONDS + 120))
until curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22tradewind-aggregator%22%7D' \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if len(r)==2 and all(x["value"][1]=="1" for x in r) else 1)'; do
  [ $SECONDS -lt $deadline ] || fail "Prometheus does not see two aggregator replicas with up == 1"
  sleep 5
done
log "Prometheus scrapes both aggregator replicas (up == 1)"

# --- at least two minutes of real-time simulation, with a member killed -------
sleep $(( 90 - (SECONDS - up_at) > 0 ? 90 - (SECONDS - up_at) : 0 ))
# awk reads every line: `head` would close the pipe early and fail `dc ps`
# (set -o pipefail) whenever it writes its second line late.
victim=$(dc ps -q aggregator | awk 'NR == 1')
log "docker kill (SIGKILL) of one aggregator replica, then start it again"
docker kill "$victim" >/dev/null
sleep 5
docker start "$victim" >/dev/null
sleep $(( 150 - (SECONDS - up_at) > 0 ? 150 - (SECONDS - up_at) : 0 ))

page=$(curl -fsS http://127.0.0.1:3000/)
echo "$page" | grep -q "Corridor volumes" || fail "the dashboard page has no corridor panel"
paid=$(curl -fsS http://127.0.0.1:3000/api/dashboard.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["payments"])')
[ "$paid" -gt 0 ] || fail "the dashboard shows no payments after $((SECONDS - up_at)) s"
log "the dashboard shows $paid payments after $((SECONDS - up_at)) s of real time"

log "stopping the simulator (SIGTERM)"
ts=$SECONDS
dc stop simulator
[ "$(docker inspect -f '{{.State.ExitCode}}' "$(dc ps -a -q simulator)")" = 0 ] \
  || fail "the simulator did not exit 0 on SIGTERM"
log "simulator stopped cleanly in $((SECONDS - ts)) s"

export TRADEWIND_KAFKA__BROKERS=127.0.0.1:9092 TRADEWIND_CLICKHOUSE__URL=http://127.0.0.1:8123
deadline=$((SECONDS + 300))
until "$tw" reconcile > "$S/docker/reconcile.txt" 2>&1; do
  [ $SECONDS -lt $deadline ] || { cat "$S/docker/reconcile.txt"; fail "reconcile from the host never said OK"; }
  sleep 5
done
tail -n 6 "$S/docker/reconcile.txt"
log "reconcile from the host against the published ports: OK"

ch() { curl -fsS "http://127.0.0.1:8123/?database=tradewind" --data-binary "$1"; }
json=$(curl -fsS http://127.0.0.1:3000/api/dashboard.json)
for pair in "payments:SELECT sum(payments) FROM trade_corridors_merged" \
            "readings:SELECT sum(readings) FROM iot_health_merged" \
            "delivered:SELECT sum(delivered) FROM logistics_sla_merged"; do
  key=${pair%%:*}
  want=$(ch "${pair#*:}" | tr -d '[:space:]')
  got=$(echo "$json" | python3 -c "import json,sys; print(json.load(sys.stdin)['totals']['$key'])")
  [ "$got" = "$want" ] || fail "dashboard $key = $got but ClickHouse holds $want"
  log "dashboard $key = ClickHouse's $want"
done
future=$(ch "SELECT sum(future_timestamp) FROM ledger FINAL" | tr -d '[:space:]')
[ "$future" = 0 ] || fail "$future records were rejected as future_timestamp"
log "no record rejected as future_timestamp"

# --- stop within the grace periods, then nothing left behind -----------------
log "docker compose stop"
ts=$SECONDS
dc stop
took=$((SECONDS - ts))
killed=$(for c in $(dc ps -a -q); do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
  [ "$code" = 137 ] && docker inspect -f '{{.Name}}' "$c"
done || true)
[ -z "$killed" ] || fail "killed after the grace period instead of stopping: $killed"
log "every service stopped on SIGTERM within its grace period ($took s in all)"

dc down -v
left=$(docker ps -aq --filter "label=com.docker.compose.project=$project"; \
       docker network ls -q --filter "label=com.docker.compose.project=$project"; \
       docker volume ls -q --filter "label=com.docker.compose.project=$project")
[ -z "$left" ] || fail "down -v left something behind: $left"
log "down -v left no container, network or volume"
log "compose test passed"
