-- FX quotes from the fx topic, used to normalise money to USD at query time.
-- One row per (base, quote, event time); re-deliveries collapse on merge.
CREATE TABLE IF NOT EXISTS fx_rates
(
    base FixedString(3),
    quote FixedString(3),
    event_time DateTime,
    event_time_ms Int64,
    rate_e9 Int64,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (base, quote, event_time_ms);
