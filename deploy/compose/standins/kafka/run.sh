#!/bin/sh
# Writes server.properties from the KAFKA_* environment, formats the log
# directory once (KRaft), then runs the broker in the foreground.
set -eu
props=/opt/kafka/config/server.properties
: > "$props"
env | sort | while IFS='=' read -r k v; do
  case "$k" in
    KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_JVM_*|KAFKA_LOG4J_*) continue ;;
    KAFKA_*) echo "$(echo "${k#KAFKA_}" | tr 'A-Z_' 'a-z.')=$v" >> "$props" ;;
  esac
done
logdir=$(sed -n 's/^log\.dirs=//p' "$props")
logdir=${logdir:-/var/lib/kafka/data}
grep -q '^log.dirs=' "$props" || echo "log.dirs=$logdir" >> "$props"
cp="/opt/kafka/libs/*"
java_opts="-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.yaml"
if [ ! -f "$logdir/meta.properties" ]; then
  id=${CLUSTER_ID:-$(java -cp "$cp" $java_opts kafka.tools.StorageTool random-uuid | tail -n1)}
  java -cp "$cp" $java_opts kafka.tools.StorageTool format -t "$id" -c "$props" --ignore-formatted
fi
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC $java_opts ${KAFKA_OPTS:-} \
  -cp "$cp" kafka.Kafka "$props"
