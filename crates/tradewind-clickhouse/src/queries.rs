//! Tradewind's tables and the queries that read them. The queries live as
//! `.sql` files in `queries/` next to `migrations/`, so the Rust code and
//! the current-engine check (`deploy/check/modern_clickhouse.py`) read the
//! same text. A file's `-- binds:` line names its `?` placeholders in
//! order.

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
query!(DASHBOARD_TIMELINE, "dashboard_timeline.sql");
query!(DASHBOARD_SLA, "dashboard_sla.sql");
query!(DASHBOARD_COLD_CHAIN, "dashboard_cold_chain.sql");
query!(DASHBOARD_LEDGER, "dashboard_ledger.sql");
query!(RECONCILE_LEDGER_SPANS, "reconcile_ledger_spans.sql");
query!(RECONCILE_PAYMENTS_TOTAL, "reconcile_payments_total.sql");
query!(RECONCILE_READINGS_TOTAL, "reconcile_readings_total.sql");

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `?` is named on the file's `-- binds:` line.
    #[test]
    fn each_placeholder_is_named() {
        for q in [
            DASHBOARD_RANGE,
            DASHBOARD_FX_RATES,
            DASHBOARD_CORRIDORS,
            DASHBOARD_METHODS,
            DASHBOARD_TIMELINE,
            DASHBOARD_SLA,
            DASHBOARD_COLD_CHAIN,
            DASHBOARD_LEDGER,
            RECONCILE_LEDGER_SPANS,
            RECONCILE_PAYMENTS_TOTAL,
            RECONCILE_READINGS_TOTAL,
        ] {
            let named = q
                .lines()
                .find_map(|l| l.strip_prefix("-- binds:"))
                .map_or(0, |b| b.split_whitespace().count());
            assert_eq!(q.matches('?').count(), named, "{q}");
        }
    }
}
