-- HLL sketches move from 4,096 dense registers per row (Array(UInt8)) to
-- the set registers only, packed as `index << 8 | rank` (Array(UInt32)).
-- Most rows hold a few distinct ids, so this cuts insert and merge work
-- in ClickHouse by orders of magnitude. Rows written before this
-- migration lose their distinct counts (their other columns stay).
--
-- ClickHouse 18.16 has neither `maxMap` nor `ALTER ... IF [NOT] EXISTS`.
-- The merge is: union every row's entries (groupUniqArrayArray), sort
-- descending, keep the first entry per register index (its highest
-- rank). The views also give the estimate, with linear counting for small
-- cardinalities, as `buyers` and `devices`.

DROP TABLE IF EXISTS trade_corridors_merged;
DROP TABLE IF EXISTS iot_health_merged;

ALTER TABLE trade_corridors DROP COLUMN buyers_hll;
ALTER TABLE trade_corridors ADD COLUMN buyers_sketch Array(UInt32);
ALTER TABLE iot_health DROP COLUMN devices_hll;
ALTER TABLE iot_health ADD COLUMN devices_sketch Array(UInt32);

CREATE VIEW IF NOT EXISTS trade_corridors_merged AS
SELECT
    window_start, payer, payee, method, channel, currency,
    payments, captured, failed, refunded, amount_minor, amount_min, amount_max,
    amount_hist,
    arrayFilter((x, u) -> u = 1, merged_sketch,
        arrayEnumerateUniq(arrayMap(x -> intDiv(x, 256), merged_sketch))) AS buyers_hll,
    toUInt64(round(if(
        (0.7213 / (1 + 1.079 / 4096)) * 4096 * 4096
            / (arraySum(arrayMap(x -> pow(2, -toInt32(x % 256)), buyers_hll)) + 4096 - length(buyers_hll))
            <= 2.5 * 4096 AND length(buyers_hll) < 4096,
        4096 * log(4096 / (4096 - length(buyers_hll))),
        (0.7213 / (1 + 1.079 / 4096)) * 4096 * 4096
            / (arraySum(arrayMap(x -> pow(2, -toInt32(x % 256)), buyers_hll)) + 4096 - length(buyers_hll))
    ))) AS buyers
FROM
(
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
        arrayReverseSort(groupUniqArrayArray(buyers_sketch)) AS merged_sketch
    FROM trade_corridors FINAL
    GROUP BY window_start, payer, payee, method, channel, currency
);

CREATE VIEW IF NOT EXISTS iot_health_merged AS
SELECT
    window_start, kind, country,
    readings, excursions, silent, battery_hist,
    arrayFilter((x, u) -> u = 1, merged_sketch,
        arrayEnumerateUniq(arrayMap(x -> intDiv(x, 256), merged_sketch))) AS devices_hll,
    toUInt64(round(if(
        (0.7213 / (1 + 1.079 / 4096)) * 4096 * 4096
            / (arraySum(arrayMap(x -> pow(2, -toInt32(x % 256)), devices_hll)) + 4096 - length(devices_hll))
            <= 2.5 * 4096 AND length(devices_hll) < 4096,
        4096 * log(4096 / (4096 - length(devices_hll))),
        (0.7213 / (1 + 1.079 / 4096)) * 4096 * 4096
            / (arraySum(arrayMap(x -> pow(2, -toInt32(x % 256)), devices_hll)) + 4096 - length(devices_hll))
    ))) AS devices
FROM
(
    SELECT
        window_start, kind, country,
        sum(readings) AS readings,
        sum(excursions) AS excursions,
        sum(silent) AS silent,
        sumMap(battery_hist_keys, battery_hist_counts) AS battery_hist,
        arrayReverseSort(groupUniqArrayArray(devices_sketch)) AS merged_sketch
    FROM iot_health FINAL
    GROUP BY window_start, kind, country
);
