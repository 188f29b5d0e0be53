-- One ReplacingMergeTree(version) table per metric family, plus the ledger.
-- Rows are per source (topic, partition); `version` is the highest source
-- offset folded into the row, so re-emitted rows replace older ones and
-- replays are idempotent. The *_merged views merge partitions at query
-- time: counts and sums with sum, histograms with sumMap, HLL registers
-- with maxForEach, always over FINAL rows.

CREATE TABLE IF NOT EXISTS trade_corridors
(
    window_start DateTime,
    payer String,
    payee String,
    method String,
    channel String,
    currency String,
    topic String,
    partition Int32,
    version UInt64,
    payments UInt64,
    captured UInt64,
    failed UInt64,
    refunded UInt64,
    amount_minor Int64,
    amount_min Int64,
    amount_max Int64,
    amount_hist_keys Array(Int16),
    amount_hist_counts Array(UInt64),
    buyers_hll Array(UInt8)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, payer, payee, method, channel, currency, topic, partition);

CREATE TABLE IF NOT EXISTS logistics_sla
(
    window_start DateTime,
    origin String,
    destination String,
    mode String,
    topic String,
    partition Int32,
    version UInt64,
    delivered UInt64,
    on_time UInt64,
    transit_ms_sum Int64,
    transit_ms_max Int64,
    transit_hist_keys Array(Int16),
    transit_hist_counts Array(UInt64),
    breaches UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, origin, destination, mode, topic, partition);

CREATE TABLE IF NOT EXISTS iot_health
(
    window_start DateTime,
    kind String,
    country String,
    topic String,
    partition Int32,
    version UInt64,
    readings UInt64,
    excursions UInt64,
    silent UInt64,
    battery_hist_keys Array(Int16),
    battery_hist_counts Array(UInt64),
    devices_hll Array(UInt8)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, kind, country, topic, partition);

CREATE TABLE IF NOT EXISTS ledger
(
    topic String,
    partition Int32,
    window_start DateTime,
    version UInt64,
    seen UInt64,
    aggregated UInt64,
    corrected_late UInt64,
    too_late UInt64,
    future_timestamp UInt64,
    malformed UInt64,
    unknown_enum UInt64,
    first_offset Int64,
    last_offset Int64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (topic, partition, window_start);

CREATE VIEW IF NOT EXISTS trade_corridors_merged AS
SELECT
    window_start, payer, payee, method, channel, currency,
    sum(payments) AS payments,
    sum(captured) AS captured,
    sum(failed) AS failed,
    sum(refunded) AS refunded,
    sum(amount_minor) AS amount_minor,
    min(amount_min) AS amount_min,
    max(amount_max) AS amount_max,
    sumMap(amount_hist_keys, amount_hist_counts) AS amount_hist,
    maxForEach(buyers_hll) AS buyers_hll
FROM trade_corridors FINAL
GROUP BY window_start, payer, payee, method, channel, currency;

CREATE VIEW IF NOT EXISTS logistics_sla_merged AS
SELECT
    window_start, origin, destination, mode,
    sum(delivered) AS delivered,
    sum(on_time) AS on_time,
    sum(transit_ms_sum) AS transit_ms_sum,
    max(transit_ms_max) AS transit_ms_max,
    sumMap(transit_hist_keys, transit_hist_counts) AS transit_hist,
    sum(breaches) AS breaches
FROM logistics_sla FINAL
GROUP BY window_start, origin, destination, mode;

CREATE VIEW IF NOT EXISTS iot_health_merged AS
SELECT
    window_start, kind, country,
    sum(readings) AS readings,
    sum(excursions) AS excursions,
    sum(silent) AS silent,
    sumMap(battery_hist_keys, battery_hist_counts) AS battery_hist,
    maxForEach(devices_hll) AS devices_hll
FROM iot_health FINAL
GROUP BY window_start, kind, country;
