//! The schema migrations against a real ClickHouse server: every version
//! applies once, a second run is a no-op, concurrent runs (members scaled
//! out and starting together) apply each version exactly once.

use tradewind_clickhouse::{connect_and_migrate, ClickHouseConfig, Connection, MIGRATIONS};
use tradewind_testkit::{clickhouse_url, scratch_name};

fn config(db: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        url: clickhouse_url(),
        database: db.to_string(),
        ..Default::default()
    }
}

async fn drop_db(conn: &Connection, db: &str) {
    conn.client
        .query(&format!("DROP DATABASE {db}"))
        .execute()
        .await
        .unwrap();
}

fn all_versions() -> Vec<u32> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

#[tokio::test]
async fn concurrent_migrations_apply_each_version_exactly_once() {
    let db = scratch_name("migrate_race");
    let cfg = config(&db);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let cfg = cfg.clone();
            tokio::spawn(async move { connect_and_migrate(&cfg).await })
        })
        .collect();
    let mut applied = Vec::new();
    for r in runs {
        let (_, report) = r.await.unwrap().unwrap();
        applied.extend(report.applied);
    }
    applied.sort_unstable();
    assert_eq!(applied, all_versions(), "each version applied by one run");
    let (conn, _) = connect_and_migrate(&cfg).await.unwrap();
    let versions: Vec<u32> = conn
        .client
        .query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(versions, all_versions(), "each migration recorded once");
    let locks: u64 = conn
        .client
        .query("SELECT count() FROM system.tables WHERE database = ? AND name LIKE 'schema_migration_lock%'")
        .bind(&db)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(locks, 0, "no lock left behind");
    drop_db(&conn, &db).await;
}

#[tokio::test]
async fn migrations_apply_to_real_clickhouse_and_twice_is_a_no_op() {
    let db = scratch_name("migrate");
    let (_, first) = connect_and_migrate(&config(&db)).await.unwrap();
    assert_eq!(first.applied, all_versions());
    assert!(first.already_applied.is_empty());
    let (conn, second) = connect_and_migrate(&config(&db)).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.already_applied, all_versions());

    let tables: Vec<String> = conn
        .client
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&db)
        .fetch_all()
        .await
        .unwrap();
    let want = [
        "fx_rates",
        "iot_health",
        "iot_health_merged",
        "ledger",
        "logistics_sla",
        "logistics_sla_merged",
        "schema_migrations",
        "trade_corridors",
        "trade_corridors_merged",
    ];
    assert_eq!(tables, want.map(String::from).to_vec());
    let applied: u64 = conn
        .client
        .query("SELECT count() FROM schema_migrations")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(applied, MIGRATIONS.len() as u64);
    drop_db(&conn, &db).await;
}
