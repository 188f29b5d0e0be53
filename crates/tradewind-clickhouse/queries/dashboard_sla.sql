-- binds: from to payer payer payee payee country country country mode mode
-- Delivery SLA per lane and transport mode in the range, with the merged
-- transit-time histogram (log buckets, ms).
SELECT origin, destination, mode, sum(delivered) AS n, sum(on_time) AS ok,
       sum(breaches) AS br, sum(transit_ms_sum) AS transit,
       tupleElement(sumMap(transit_hist_keys, transit_hist_counts), 1) AS hist_keys,
       tupleElement(sumMap(transit_hist_keys, transit_hist_counts), 2) AS hist_counts
FROM logistics_sla FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR origin = ?) AND (? = '' OR destination = ?)
  AND (? = '' OR origin = ? OR destination = ?)
  AND (? = '' OR mode = ?)
GROUP BY origin, destination, mode
HAVING n + br > 0 ORDER BY n DESC
