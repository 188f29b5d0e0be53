-- Records rejected because a field holds a value outside its documented
-- range (README, "Validation rules") are booked in their own ledger column.
ALTER TABLE ledger ADD COLUMN invalid UInt64 DEFAULT 0 AFTER unknown_enum;
