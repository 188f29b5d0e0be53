#!/usr/bin/env bash
# Runs every Tradewind test against a real Kafka broker and a real ClickHouse
# server: installs what is missing, starts the local stack if it is not
# already up, installs Chromium for the dashboard's browser test, runs
# `cargo test --workspace`, checks the SQL on a current
# ClickHouse engine (chDB, deploy/check/modern_clickhouse.py), and stops
# what it started. TRADEWIND_SKIP_MODERN_SQL=1 skips the chDB check.
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
# The dashboard's browser test drives Debian's headless Chromium.
if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium and its WebDriver for the dashboard's browser test"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
log "running the test suite"
out="$(mktemp)"
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$out" || status=$?

# The local server is Debian's ClickHouse 18.16; Docker users get 25.x. The
# same migrations, views and queries run here on a current engine, embedded.
if [ "${TRADEWIND_SKIP_MODERN_SQL:-0}" != 1 ]; then
  venv="$TRADEWIND_STACK_DIR/chdb-venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import chdb" 2>/dev/null; then
    log "installing chDB $CHDB_VERSION (ClickHouse embedded in Python) into $venv"
    if ! python3 -c "import ensurepip" 2>/dev/null; then
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "chdb==$CHDB_VERSION"
  fi
  log "checking migrations, views and queries on a current ClickHouse engine"
  if "$venv/bin/python" "$TW_ROOT/deploy/check/modern_clickhouse.py"; then
    echo "test result: ok. 1 passed; 0 failed (modern ClickHouse SQL check)" >> "$out"
  else
    echo "test result: FAILED. 0 passed; 1 failed (modern ClickHouse SQL check)" >> "$out"
    status=1
  fi
fi
# One closing line over every test binary, so the total is plain to read.
summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tradewind: %d passed, %d failed\n", p, f }' "$out")
rm -f "$out"
cleanup
trap - EXIT
echo "$summary"
exit "$status"
