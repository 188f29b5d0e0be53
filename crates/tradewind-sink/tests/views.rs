//! The sink's rows in a real ClickHouse server: HLL sketches written by
//! different partitions merge in the `*_merged` views as they do in Rust.

use tradewind_clickhouse::{connect_and_migrate, ClickHouseConfig};
use tradewind_testkit::{clickhouse_url, scratch_name};

#[tokio::test]
async fn sketches_merge_in_the_views_as_in_rust() {
    let db = scratch_name("views_hll");
    let cfg = ClickHouseConfig {
        url: clickhouse_url(),
        database: db.clone(),
        ..Default::default()
    };
    let (conn, _) = connect_and_migrate(&cfg).await.unwrap();
    hll_merges_in_views_as_in_rust(&conn.client).await;
    conn.client
        .query(&format!("DROP DATABASE {db}"))
        .execute()
        .await
        .unwrap();
}

/// Three partitions' buyer sketches (sparse, sparse, dense; overlapping
/// ids) merged by `trade_corridors_merged` give the same registers and the
/// same estimate as merging them in Rust.
async fn hll_merges_in_views_as_in_rust(ch: &clickhouse::Client) {
    use tradewind_core::sketch::Hll;
    use tradewind_sink::rows::CorridorRecord;
    let ranges = [0u64..40, 20..300, 100..30_000];
    let mut all = Hll::default();
    let mut insert = ch
        .insert::<CorridorRecord>(tradewind_clickhouse::tables::TRADE_CORRIDORS)
        .await
        .unwrap();
    for (p, ids) in ranges.into_iter().enumerate() {
        let mut h = Hll::default();
        for id in ids {
            h.add(id);
        }
        all.merge(&h);
        let row = CorridorRecord {
            window_start: 1_794_355_200,
            payer: "CN".into(),
            payee: "DE".into(),
            method: "card".into(),
            channel: "web".into(),
            currency: "EUR".into(),
            topic: "payments".into(),
            partition: p as i32,
            version: 1,
            payments: 1,
            captured: 1,
            failed: 0,
            refunded: 0,
            amount_minor: 1,
            amount_min: 1,
            amount_max: 1,
            amount_hist_keys: vec![0],
            amount_hist_counts: vec![1],
            buyers_sketch: h.to_packed(),
        };
        insert.write(&row).await.unwrap();
    }
    insert.end().await.unwrap();
    let (regs, buyers): (Vec<u32>, u64) = ch
        .query("SELECT buyers_hll, buyers FROM trade_corridors_merged")
        .fetch_one()
        .await
        .unwrap();
    let mut want = all.to_packed();
    want.reverse();
    assert_eq!(regs, want, "merged registers");
    let est = all.estimate();
    assert_eq!(buyers, est.round() as u64, "SQL estimate vs Rust {est}");
    assert!((est - 30_000.0).abs() < 30_000.0 * 0.05, "estimate {est}");
}
