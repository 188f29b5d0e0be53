#!/usr/bin/env bash
# Makes throwaway TLS material for the local stack's secured listeners (and
# for deploy/compose/docker-compose.secure.yml) in $TRADEWIND_TLS_DIR:
#   ca.pem, ca.key               a local CA that signs everything below
#   broker.pem, broker.key       Kafka's certificate (127.0.0.1, localhost, kafka)
#   broker.p12                   the same as a PKCS12 keystore ($TLS_STORE_PASSWORD)
#   broker-truststore.p12        PKCS12 truststore holding ca.pem, so the SSL
#                                listener can require client certificates
#   clickhouse.crt, .key         ClickHouse's HTTPS certificate (127.0.0.1, localhost, clickhouse)
#   client.pem, client.key       a client certificate for mutual TLS (key unencrypted)
#   other-ca.pem                 an unrelated CA, for "wrong CA" tests
#   *-password.txt, kafka-server-jaas.conf
#                                the passwords as files, for Docker Compose secrets
# Idempotent: what exists and still verifies is kept. Nothing here is secret
# beyond this machine: the files are for tests only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

T="$TRADEWIND_TLS_DIR"
DAYS_CA=3650
DAYS_LEAF=825
mkdir -p "$T"
# Certificates and leaf keys are world-readable on purpose: the containers of
# the Compose setup read them as their own users. Only the CA keys are private.
umask 022
chmod 755 "$T"
made=()

# is_fresh CERT [self]: exists, is not about to expire, and is signed by our
# CA (or, with `self`, by itself).
is_fresh() {
  [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl verify -CAfile "$([ "${2:-}" = self ] && echo "$1" || echo "$T/ca.pem")" "$1" >/dev/null 2>&1
}

new_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

# new_ca NAME CN: a self-signed CA certificate NAME.pem with key NAME.key.
new_ca() {
  new_key "$T/$1.key"
  chmod 600 "$T/$1.key"
  openssl req -x509 -new -key "$T/$1.key" -sha256 -days "$DAYS_CA" \
      -subj "/O=Tradewind local/CN=$2" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$T/$1.pem"
  made+=("$1.pem")
}

# new_leaf KEY CERT CN EXTENDED_KEY_USAGE [SAN]: a key and a certificate signed by ca.pem.
new_leaf() {
  local key=$1 crt=$2 cn=$3 eku=$4 san=${5:-} ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$ext"
  new_key "$T/$key"
  openssl req -new -key "$T/$key" -subj "/O=Tradewind local/CN=$cn" -out "$T/$crt.csr"
  openssl x509 -req -in "$T/$crt.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
      -CAserial "$T/ca.srl" -CAcreateserial -days "$DAYS_LEAF" -sha256 \
      -extfile "$ext" -out "$T/$crt" 2>/dev/null
  rm -f "$ext" "$T/$crt.csr"
  made+=("$crt")
}

# p12_opens FILE: the PKCS12 file exists and opens with $TLS_STORE_PASSWORD.
p12_opens() {
  [ -s "$1" ] && openssl pkcs12 -in "$1" -passin env:TLS_STORE_PASSWORD -nokeys -noout >/dev/null 2>&1
}

# put FILE CONTENT: write a small file only when its content changes.
put() {
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then printf '%s' "$2" > "$1"; fi
}

# --- the CA: a new one invalidates every certificate it signed ---------------
if ! is_fresh "$T/ca.pem" self || [ ! -s "$T/ca.key" ]; then
  new_ca ca "Tradewind local CA"
  rm -f "$T"/{broker.pem,broker.p12,broker-truststore.p12,clickhouse.crt,client.pem}
fi

# --- server and client certificates -------------------------------------------
is_fresh "$T/broker.pem" && [ -s "$T/broker.key" ] ||
  new_leaf broker.key broker.pem localhost serverAuth "IP:127.0.0.1,DNS:localhost,DNS:kafka"
is_fresh "$T/clickhouse.crt" && [ -s "$T/clickhouse.key" ] ||
  new_leaf clickhouse.key clickhouse.crt localhost serverAuth "IP:127.0.0.1,DNS:localhost,DNS:clickhouse"
is_fresh "$T/client.pem" && [ -s "$T/client.key" ] ||
  new_leaf client.key client.pem tradewind-client clientAuth

# --- Kafka's keystore and truststore -----------------------------------------
# Rebuilt when the broker certificate is new or the store password changed.
if [[ " ${made[*]} " == *" broker.pem "* ]] || ! p12_opens "$T/broker.p12"; then
  openssl pkcs12 -export -name broker -in "$T/broker.pem" -inkey "$T/broker.key" \
      -certfile "$T/ca.pem" -passout env:TLS_STORE_PASSWORD -out "$T/broker.p12"
  made+=(broker.p12)
fi
if ! command -v keytool >/dev/null 2>&1; then
  # Only the local broker's SSL listener reads the truststore; Docker users
  # making material for deploy/compose/docker-compose.secure.yml need no Java.
  log "keytool not found: not making broker-truststore.p12 (deploy/local/install.sh brings Java)"
elif [[ " ${made[*]} " == *" ca.pem "* ]] || ! p12_opens "$T/broker-truststore.p12"; then
  # Java trusts a PKCS12 certificate only with its trusted-key-usage attribute,
  # which this OpenSSL cannot write (-jdktrust is 3.2+): keytool, shipped with
  # the JDK that runs Kafka, makes this one file.
  rm -f "$T/broker-truststore.p12"
  keytool -importcert -noprompt -alias tradewind-local-ca -file "$T/ca.pem" \
      -storetype PKCS12 -keystore "$T/broker-truststore.p12" \
      -storepass:env TLS_STORE_PASSWORD >/dev/null 2>&1
  made+=(broker-truststore.p12)
fi

# --- an unrelated CA, for negative tests -------------------------------------
is_fresh "$T/other-ca.pem" self && [ -s "$T/other-ca.key" ] || new_ca other-ca "Unrelated test CA"

# --- the passwords as files (Docker Compose secrets) -------------------------
put "$T/store-password.txt" "$TLS_STORE_PASSWORD"
put "$T/kafka-sasl-password.txt" "$KAFKA_SASL_PASSWORD"
put "$T/clickhouse-password.txt" "$CH_TLS_PASSWORD"
# The broker's JAAS file for the Kafka container: PLAIN checks the user given
# here; SCRAM checks the credentials stored in the cluster metadata.
put "$T/kafka-server-jaas.conf" "KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
    user_$KAFKA_SASL_USER=\"$KAFKA_SASL_PASSWORD\";
  org.apache.kafka.common.security.scram.ScramLoginModule required;
};
"
chmod 644 "$T"/*.pem "$T"/*.crt "$T"/broker.key "$T"/clickhouse.key "$T"/client.key \
          "$T"/*.p12 "$T"/*.txt "$T"/*.conf 2>/dev/null || true
chmod 600 "$T"/ca.key "$T"/other-ca.key

if [ "${#made[@]}" -gt 0 ]; then
  log "TLS material in $T: made ${made[*]}"
fi
