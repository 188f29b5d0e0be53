-- binds: bucket bucket from to payer payer payee payee country country country mode mode
-- Deliveries, on-time deliveries and SLA breaches per `bucket` seconds.
SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS bucket,
       sum(delivered) AS n, sum(on_time) AS ok, sum(breaches) AS br
FROM logistics_sla FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR origin = ?) AND (? = '' OR destination = ?)
  AND (? = '' OR origin = ? OR destination = ?)
  AND (? = '' OR mode = ?)
GROUP BY bucket ORDER BY bucket
