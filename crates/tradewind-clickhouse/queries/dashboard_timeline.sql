-- binds: bucket bucket from
-- Payments and failures per `bucket` seconds since `from`.
SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS bucket, sum(payments) AS n,
       sum(failed) AS bad
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?)
GROUP BY bucket ORDER BY bucket
