#!/bin/sh
# The stand-in's health probe under the official image's script name. The
# Maven jars carry no BrokerApiVersionsCommand, so it asks the broker for its
# default dynamic configs instead: that succeeds only when the broker answers.
bootstrap=localhost:9092
while [ $# -gt 0 ]; do
  case "$1" in --bootstrap-server) bootstrap="$2"; shift ;; esac
  shift
done
exec java -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.yaml -cp "/opt/kafka/libs/*" \
  kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --describe --entity-type brokers --entity-default
