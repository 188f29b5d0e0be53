#!/bin/sh
exec java -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.yaml -cp "/opt/kafka/libs/*" \
  kafka.admin.ConfigCommand "$@"
