-- binds: from
-- Payment health by method since `from`.
SELECT method, sum(payments) AS n, sum(captured) AS ok, sum(failed) AS bad,
       sum(refunded) AS back
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?)
GROUP BY method ORDER BY n DESC
