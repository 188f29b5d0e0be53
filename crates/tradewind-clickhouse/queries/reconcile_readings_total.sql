-- binds: topic
-- Readings the metric table holds for one topic (each counted once per window).
SELECT sum(readings) AS total FROM iot_health FINAL WHERE topic = ?
