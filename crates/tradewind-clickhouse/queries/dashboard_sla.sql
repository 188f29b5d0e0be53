-- binds: from
-- Delivery SLA per lane and transport mode since `from`.
SELECT origin, destination, mode, sum(delivered) AS n, sum(on_time) AS ok,
       sum(breaches) AS br, sum(transit_ms_sum) AS transit
FROM logistics_sla FINAL
WHERE window_start >= toDateTime(?)
GROUP BY origin, destination, mode
HAVING n + br > 0 ORDER BY n DESC
