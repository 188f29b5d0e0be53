-- binds: from to country country kind kind
-- Readings, excursions and silences per country and device kind in the
-- range, with the union of the silent-device sketches' entries.
SELECT country, kind, sum(readings) AS n, sum(excursions) AS exc,
       sum(silent) AS quiet, groupUniqArrayArray(silent_devices_sketch) AS quiet_sketch
FROM iot_health FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR country = ?) AND (? = '' OR kind = ?)
GROUP BY country, kind
ORDER BY exc DESC, n DESC
