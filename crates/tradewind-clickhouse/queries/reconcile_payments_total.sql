-- binds: topic
-- Payments the metric table holds for one topic (each counted once per window).
SELECT sum(payments) AS total FROM trade_corridors FINAL WHERE topic = ?
