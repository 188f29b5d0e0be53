-- binds: from to payer payer payee payee country country country method method channel channel
-- Every HLL entry of the distinct-buyer sketches per corridor and method;
-- the highest rank per register wins when they are read back.
SELECT payer, payee, method, sum(payments) AS n,
       groupUniqArrayArray(buyers_sketch) AS sketch
FROM trade_corridors FINAL
WHERE window_start >= toDateTime(?) AND window_start < toDateTime(?)
  AND (? = '' OR payer = ?) AND (? = '' OR payee = ?)
  AND (? = '' OR payer = ? OR payee = ?)
  AND (? = '' OR method = ?) AND (? = '' OR channel = ?)
GROUP BY payer, payee, method
