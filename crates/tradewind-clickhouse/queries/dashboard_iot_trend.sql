-- binds: bucket bucket from to country country kind kind
-- Readings, cold-chain excursions and silences per `bucket` seconds, with
-- the union of that bucket's silent-device sketch entries.
SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS bucket,
       sum(readings) AS n, sum(excursions) AS exc, sum(silent) AS quiet,
       groupUniqArrayArray(silent_devices_sketch) AS quiet_sketch
FROM iot_health FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR country = ?) AND (? = '' OR kind = ?)
GROUP BY bucket ORDER BY bucket
