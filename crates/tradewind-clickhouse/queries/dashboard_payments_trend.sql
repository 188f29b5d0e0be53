-- binds: bucket bucket from to payer payer payee payee country country country method method channel channel
-- Payments, failures and money per `bucket` seconds and currency.
SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS bucket, currency,
       sum(payments) AS n, sum(failed) AS bad, sum(amount_minor) AS minor
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR payer = ?) AND (? = '' OR payee = ?)
  AND (? = '' OR payer = ? OR payee = ?)
  AND (? = '' OR method = ?) AND (? = '' OR channel = ?)
GROUP BY bucket, currency ORDER BY bucket
