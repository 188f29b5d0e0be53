#!/usr/bin/env bash
# The whole pipeline on one machine, no Docker: installs what is missing,
# brings up Kafka and ClickHouse, simulates the default scenario into Kafka,
# aggregates it into ClickHouse, reconciles, shows example queries, then
# serves the dashboard on http://127.0.0.1:3000/ until Ctrl-C.
#   COUNT=500000 bash deploy/local/demo.sh      # more records
#   RATE=2000 bash deploy/local/demo.sh         # paced instead of flat out
#   DASHBOARD=0 bash deploy/local/demo.sh       # stop after the queries
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
# Spread the records over about four and a half simulated days, whatever
# COUNT is, so one-day and three-day deliveries land (and some miss their
# promise) inside the run: the default scenario makes about 2.2 million
# records in that time, so commerce and IoT fleets are both scaled by
# COUNT / 2.2 million (at most 1), keeping the mix and each device's
# reporting interval.
scale=$(awk -v n="${COUNT:-200000}" 'BEGIN { f = n / 2200000; if (f > 1) f = 1; printf "%.4f", f }')
eps=$(awk -v f="$scale" 'BEGIN { printf "%.4f", 3.35 * f }')
log "simulating ${COUNT:-200000} records into Kafka ($eps commerce events per simulated second, fleets at ${scale}x)"
"$tw" simulate --set "clock.events_per_second=$eps" --set "iot.fleet_scale=$scale" \
  --count "${COUNT:-200000}" "${rate_args[@]}" --truth "$TW_ROOT/.stack/last-run.truth.json"
"$tw" topics --no-create
log "aggregating into ClickHouse (exits once idle for 5 s)"
"$tw" aggregate --exit-when-idle 5s
log "reconciling the ledger against Kafka, the metric tables and the DLQ"
"$tw" reconcile

q() {
  echo
  echo "-- $1"
  curl -fsS "http://127.0.0.1:$CH_HTTP_PORT/?database=tradewind" --data-binary "$1 FORMAT PrettyCompactMonoBlock"
}
log "example queries (paste them into: clickhouse-client --database tradewind)"
q "SELECT payer, payee, sum(payments) AS orders, round(sum(failed) / orders, 4) AS failure_rate, round(sum(refunded) / orders, 4) AS refund_rate FROM trade_corridors_merged GROUP BY payer, payee ORDER BY orders DESC LIMIT 10"
q "SELECT payer, method, sum(payments) AS orders FROM trade_corridors_merged GROUP BY payer, method ORDER BY payer, orders DESC LIMIT 12"
q "SELECT origin, destination, mode, sum(delivered) AS shipments, round(sum(on_time) / shipments, 3) AS on_time_share, sum(breaches) AS sla_breaches FROM logistics_sla_merged GROUP BY origin, destination, mode HAVING shipments > 0 ORDER BY shipments DESC LIMIT 10"
q "SELECT kind, country, sum(readings) AS n_readings, sum(excursions) AS n_excursions, sum(silent) AS silences FROM iot_health_merged GROUP BY kind, country ORDER BY n_readings DESC"
q "SELECT topic, sum(seen) AS n_seen, sum(aggregated) AS n_aggregated, sum(too_late) AS n_too_late, sum(future_timestamp) AS n_future, sum(malformed) AS n_malformed FROM ledger FINAL GROUP BY topic ORDER BY topic"
echo
if [ "${DASHBOARD:-1}" = "0" ]; then
  log "done. Stop the stack with: bash deploy/local/down.sh (add --wipe to delete its data)"
  exit 0
fi
log "dashboard on http://${DASHBOARD_LISTEN:-127.0.0.1:3000}/ (all data; Ctrl-C stops it, the stack keeps running)"
log "stop the stack later with: bash deploy/local/down.sh (add --wipe to delete its data)"
exec "$tw" dashboard --hours 0 --listen "${DASHBOARD_LISTEN:-127.0.0.1:3000}"
