-- binds: from to payer payer payee payee country country country method method channel channel
-- The merged amount histogram (log buckets, minor units) per corridor and
-- currency: keys and counts of sumMap.
SELECT payer, payee, currency, sum(payments) AS n,
       tupleElement(sumMap(amount_hist_keys, amount_hist_counts), 1) AS hist_keys,
       tupleElement(sumMap(amount_hist_keys, amount_hist_counts), 2) AS hist_counts
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR payer = ?) AND (? = '' OR payee = ?)
  AND (? = '' OR payer = ? OR payee = ?)
  AND (? = '' OR method = ?) AND (? = '' OR channel = ?)
GROUP BY payer, payee, currency
