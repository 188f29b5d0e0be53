-- binds: from to payer payer payee payee country country country method method channel channel
-- Payment health by method in the range.
SELECT method, sum(payments) AS n, sum(captured) AS ok, sum(failed) AS bad,
       sum(refunded) AS back
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR payer = ?) AND (? = '' OR payee = ?)
  AND (? = '' OR payer = ? OR payee = ?)
  AND (? = '' OR method = ?) AND (? = '' OR channel = ?)
GROUP BY method ORDER BY n DESC
