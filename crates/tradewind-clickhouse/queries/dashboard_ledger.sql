-- What happened to every record read, per topic, all time.
SELECT topic, sum(seen) AS n_seen, sum(aggregated) AS n_agg,
       sum(too_late) AS n_late, sum(future_timestamp) AS n_future,
       sum(malformed) AS n_bad, sum(unknown_enum) AS n_enum, sum(invalid) AS n_invalid,
       sum(duplicate) AS n_dup
FROM ledger FINAL GROUP BY topic ORDER BY topic
