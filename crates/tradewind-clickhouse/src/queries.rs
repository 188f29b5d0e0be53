//! Tradewind's tables and the queries that read them. The queries live as
//! `.sql` files in `queries/` next to `migrations/`, so the Rust code and
//! the current-engine check (`deploy/check/modern_clickhouse.py`) read the
//! same text. A file's `-- binds:` line names its `?` placeholders in
//! order.

/// Every query, for checks that run them all.
pub const ALL: &[(&str, &str)] = &[
    ("dashboard_range", DASHBOARD_RANGE),
    ("dashboard_fx_rates", DASHBOARD_FX_RATES),
    ("dashboard_corridors", DASHBOARD_CORRIDORS),
    ("dashboard_methods", DASHBOARD_METHODS),
    ("dashboard_payments_trend", DASHBOARD_PAYMENTS_TREND),
    ("dashboard_payment_sizes", DASHBOARD_PAYMENT_SIZES),
    ("dashboard_buyers", DASHBOARD_BUYERS),
    ("dashboard_sla", DASHBOARD_SLA),
    ("dashboard_logistics_trend", DASHBOARD_LOGISTICS_TREND),
    ("dashboard_cold_chain", DASHBOARD_COLD_CHAIN),
    ("dashboard_devices", DASHBOARD_DEVICES),
    ("dashboard_iot_trend", DASHBOARD_IOT_TREND),
    ("dashboard_ledger", DASHBOARD_LEDGER),
    ("reconcile_ledger_spans", RECONCILE_LEDGER_SPANS),
    ("reconcile_payments_total", RECONCILE_PAYMENTS_TOTAL),
    ("reconcile_readings_total", RECONCILE_READINGS_TOTAL),
];

/// The placeholder names of a query's `-- binds:` line, in order.
pub fn binds(query: &str) -> Vec<&str> {
    query
        .lines()
        .find_map(|l| l.strip_prefix("-- binds:"))
        .map(|b| b.split_whitespace().collect())
        .unwrap_or_default()
}

/// Table names, as the migrations create them.
pub mod tables {
    pub const TRADE_CORRIDORS: &str = "trade_corridors";
    pub const LOGISTICS_SLA: &str = "logistics_sla";
    pub const IOT_HEALTH: &str = "iot_health";
    pub const FX_RATES: &str = "fx_rates";
    pub const LEDGER: &str = "ledger";
    pub const SCHEMA_MIGRATIONS: &str = "schema_migrations";
}

macro_rules! query {
    ($name:ident, $file:literal) => {
        pub const $name: &str = include_str!(concat!("../queries/", $file));
    };
}

query!(DASHBOARD_RANGE, "dashboard_range.sql");
query!(DASHBOARD_FX_RATES, "dashboard_fx_rates.sql");
query!(DASHBOARD_CORRIDORS, "dashboard_corridors.sql");
query!(DASHBOARD_METHODS, "dashboard_methods.sql");
query!(DASHBOARD_PAYMENTS_TREND, "dashboard_payments_trend.sql");
query!(DASHBOARD_PAYMENT_SIZES, "dashboard_payment_sizes.sql");
query!(DASHBOARD_BUYERS, "dashboard_buyers.sql");
query!(DASHBOARD_LOGISTICS_TREND, "dashboard_logistics_trend.sql");
query!(DASHBOARD_DEVICES, "dashboard_devices.sql");
query!(DASHBOARD_IOT_TREND, "dashboard_iot_trend.sql");
query!(DASHBOARD_SLA, "dashboard_sla.sql");
query!(DASHBOARD_COLD_CHAIN, "dashboard_cold_chain.sql");
query!(DASHBOARD_LEDGER, "dashboard_ledger.sql");
query!(RECONCILE_LEDGER_SPANS, "reconcile_ledger_spans.sql");
query!(RECONCILE_PAYMENTS_TOTAL, "reconcile_payments_total.sql");
query!(RECONCILE_READINGS_TOTAL, "reconcile_readings_total.sql");

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `?` is named on the file's `-- binds:` line, and every file
    /// is in [`ALL`].
    #[test]
    fn each_placeholder_is_named() {
        for (name, q) in ALL {
            assert_eq!(q.matches('?').count(), binds(q).len(), "{name}");
        }
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/queries"))
            .unwrap()
            .count();
        assert_eq!(files, ALL.len(), "a query file is missing from ALL");
    }
}
