-- Distinct devices that went silent, per window, key and partition: the
-- same packed sparse HLL as `devices_sketch` (migration 0003), so a
-- dashboard can say how many devices went quiet in a range rather than
-- how many silences there were.
ALTER TABLE iot_health ADD COLUMN silent_devices_sketch Array(UInt32);
