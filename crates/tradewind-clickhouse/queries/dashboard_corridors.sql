-- binds: from
-- Payments and money per corridor and currency since `from`.
SELECT payer, payee, currency, sum(payments) AS n, sum(failed) AS bad,
       sum(amount_minor) AS minor
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?)
GROUP BY payer, payee, currency
