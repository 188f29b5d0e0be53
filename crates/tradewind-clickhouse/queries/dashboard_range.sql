-- The oldest and newest payment window (Unix seconds); 0, 0 when empty.
SELECT toUInt32(min(window_start)) AS oldest, toUInt32(max(window_start)) AS newest
FROM trade_corridors
