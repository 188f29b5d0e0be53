-- binds: topic
-- Every ledger row of one topic, in offset order per partition.
SELECT partition, first_offset, last_offset, seen, aggregated,
       too_late + future_timestamp + malformed + unknown_enum + invalid AS rejected
FROM ledger FINAL WHERE topic = ? ORDER BY partition, first_offset
