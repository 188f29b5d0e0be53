-- binds: from to payer payer payee payee country country country method method channel channel
-- Payments and money per corridor and currency in the range.
SELECT payer, payee, currency, sum(payments) AS n, sum(failed) AS bad,
       sum(amount_minor) AS minor
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR payer = ?) AND (? = '' OR payee = ?)
  AND (? = '' OR payer = ? OR payee = ?)
  AND (? = '' OR method = ?) AND (? = '' OR channel = ?)
GROUP BY payer, payee, currency
