-- Two more ledger columns: records rejected because a field holds a value
-- outside its documented range (README, "Validation rules"), and repeats of
-- an event already counted (README, "Each event counts once"), which are
-- booked but not aggregated.
ALTER TABLE ledger ADD COLUMN invalid UInt64 DEFAULT 0 AFTER unknown_enum;
ALTER TABLE ledger ADD COLUMN duplicate UInt64 DEFAULT 0 AFTER invalid;
