-- The oldest and newest window start of any metric table (Unix seconds);
-- 0, 0 when they are all empty. An empty table's min and max read 0 and
-- are left out.
SELECT toUInt32(min(lo)) AS oldest, toUInt32(max(hi)) AS newest
FROM
(
    SELECT min(window_start) AS lo, max(window_start) AS hi FROM trade_corridors
    UNION ALL
    SELECT min(window_start) AS lo, max(window_start) AS hi FROM logistics_sla
    UNION ALL
    SELECT min(window_start) AS lo, max(window_start) AS hi FROM iot_health
)
WHERE toUInt32(hi) > 0
