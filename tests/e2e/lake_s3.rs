//! The lake on a real S3-protocol server (moto) on 127.0.0.1.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use lake::catalog::ITEM_PARAMS;

use crate::support::{S3Server, item_params_batch};

#[tokio::test]
async fn s3_round_trip_overwrite_escaping_and_sql() {
    let server = S3Server::start("irtlake-test");
    let lake = server.lake("s3://irtlake-test/lakes/one");
    let part = [("run_date", "2026-03-01"), ("bank", "subject:alg/1")];
    lake.write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 5, "r1")])
        .await
        .unwrap();
    lake.write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 3, "r2")])
        .await
        .unwrap();
    lake.write_partition(
        ITEM_PARAMS,
        &[("run_date", "2026-03-01"), ("bank", "all")],
        &[item_params_batch("q", 2, "r3")],
    )
    .await
    .unwrap();
    let objects = lake.list("").await.unwrap();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(
        objects
            .iter()
            .all(|o| o.key.starts_with("item_params/run_date=2026-03-01/bank="))
    );
    let b = lake
        .sql("SELECT bank, count(*) AS n FROM item_params GROUP BY bank ORDER BY bank")
        .await
        .unwrap();
    let banks = b[0].column(0).as_string::<i32>();
    let n = b[0].column(1).as_primitive::<Int64Type>();
    assert_eq!((banks.value(0), n.value(0)), ("all", 2));
    assert_eq!((banks.value(1), n.value(1)), ("subject:alg/1", 3));
    // schema mismatch refused on S3 too, nothing changes
    let bad = item_params_batch("q", 1, "r4");
    let bad = bad.project(&[0, 1]).unwrap();
    assert!(
        lake.write_partition(ITEM_PARAMS, &part, &[bad])
            .await
            .is_err()
    );
    assert_eq!(lake.list("").await.unwrap(), objects);
    // a young table on S3 is empty, not an error
    let b = lake.sql("SELECT count(*) FROM weekly_kpi").await.unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 0);
}
