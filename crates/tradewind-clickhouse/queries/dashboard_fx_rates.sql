-- The latest rate of each quote currency (units per USD, x10^9).
SELECT toString(quote) AS currency, argMax(rate_e9, event_time_ms) AS rate
FROM fx_rates FINAL GROUP BY quote
