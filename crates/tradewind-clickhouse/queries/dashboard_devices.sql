-- binds: from to country country kind kind
-- Per device kind: readings, every distinct-device sketch entry, and the
-- merged battery histogram (log buckets, per mille).
SELECT kind, sum(readings) AS n, groupUniqArrayArray(devices_sketch) AS sketch,
       tupleElement(sumMap(battery_hist_keys, battery_hist_counts), 1) AS hist_keys,
       tupleElement(sumMap(battery_hist_keys, battery_hist_counts), 2) AS hist_counts
FROM iot_health FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR country = ?) AND (? = '' OR kind = ?)
GROUP BY kind ORDER BY n DESC
