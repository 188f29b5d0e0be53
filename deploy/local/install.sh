#!/usr/bin/env bash
# Installs what the no-Docker stack and the Rust build need on Debian/Ubuntu:
# Java 17 (a JDK: the peers bench compiles its Kafka Streams peer) + Maven (to
# fetch the Kafka broker jars), Debian's clickhouse-server,
# openssl (for the stack's test certificates, deploy/local/tls.sh), and the C
# toolchain and OpenSSL headers that librdkafka's build uses. Idempotent:
# installs only what is missing. Rust itself comes from rustup and is only
# checked here.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
for pkg in clickhouse-server clickhouse-client openjdk-17-jdk-headless maven \
           build-essential pkg-config zlib1g-dev libssl-dev openssl curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# A machine may already carry a JDK 17 that is not Debian's package.
if command -v javac >/dev/null 2>&1 && javac -version 2>&1 | grep -qE 'javac (1[7-9]|2[0-9])'; then
  need=("${need[@]/openjdk-17-jdk-headless}")
fi
command -v mvn >/dev/null 2>&1 && need=("${need[@]/maven}")
need=($(printf '%s\n' "${need[@]}" | grep -v '^$' || true))
if [ "${#need[@]}" -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

jars="$TRADEWIND_STACK_DIR/kafka/jars"
if ! ls "$jars"/kafka_2.13-*.jar >/dev/null 2>&1; then
  log "fetching Apache Kafka jars from Maven Central"
  mkdir -p "$jars"
  mvn -q -B -f "$TW_ROOT/deploy/local/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$jars" -DincludeScope=runtime
fi

if ! command -v cargo >/dev/null 2>&1; then
  log "Rust is not installed: install it with rustup (https://rustup.rs), then run this again"
  exit 1
fi
