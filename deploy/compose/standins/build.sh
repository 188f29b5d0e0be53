#!/usr/bin/env bash
# Builds local stand-ins for the third-party images the compose file names,
# for a machine that can reach Debian's and the language registries but no
# container registry. Each is made from Debian packages or Maven jars:
#   tradewind-standin/debian:bookworm      debootstrap --variant=minbase
#   tradewind-standin/rust:1-bookworm      that + build tools + this host's Rust toolchain
#   tradewind-standin/kafka:4.1.1          that + Debian's JRE + the Kafka jars (KRaft)
#   tradewind-standin/clickhouse:18.16     that + Debian's clickhouse-server
#   tradewind-standin/prometheus:debian    that + Debian's prometheus
# An image that exists is kept. The host's CA bundle goes into the base, so
# builds inside trust what the host trusts (some networks intercept TLS).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../local/env.sh"
here="$TW_ROOT/deploy/compose/standins"
work="$TRADEWIND_STACK_DIR/standins"
mkdir -p "$work"

have() { docker image inspect "$1" >/dev/null 2>&1; }

mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

if ! have tradewind-standin/debian:bookworm; then
  log "stand-in debian:bookworm: debootstrap from $mirror (a few minutes)"
  root="$work/rootfs"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || {
    mkdir -p "$root/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; }
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" > "$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - tradewind-standin/debian:bookworm >/dev/null
  rm -rf "$root"
fi

if ! have tradewind-standin/rust:1-bookworm; then
  toolchain="$(rustc --print sysroot)"
  log "stand-in rust:1-bookworm: build tools + $(rustc --version)"
  ctx="$work/rust"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$here/rust/Dockerfile" "$ctx/"
  cp -a "$toolchain" "$ctx/toolchain"
  rm -rf "$ctx/toolchain/share/doc" "$ctx/toolchain/lib/rustlib/src"
  docker build -q -t tradewind-standin/rust:1-bookworm "$ctx" >/dev/null
  rm -rf "$ctx"
fi

if ! have tradewind-standin/kafka:4.1.1; then
  log "stand-in kafka:4.1.1: Debian's JRE + the Kafka jars"
  bash "$TW_ROOT/deploy/local/install.sh"
  ctx="$work/kafka"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$here/kafka/"* "$ctx/"
  cp -a "$TRADEWIND_STACK_DIR/kafka/jars" "$ctx/libs"
  docker build -q -t tradewind-standin/kafka:4.1.1 "$ctx" >/dev/null
  rm -rf "$ctx"
fi

for name in clickhouse:18.16 prometheus:debian; do
  if ! have "tradewind-standin/$name"; then
    log "stand-in $name: from Debian's package"
    docker build -q -t "tradewind-standin/$name" "$here/${name%%:*}" >/dev/null
  fi
done
log "stand-ins ready: $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^tradewind-standin/' | tr '\n' ' ')"
