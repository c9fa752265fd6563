//! The lake on a local folder: round trip, overwrite, schema checks, escaping, young lake.

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use lake::catalog::ITEM_PARAMS;

use crate::support::count;
use crate::support::{item_params_batch, temp_lake};

#[tokio::test]
async fn write_read_overwrite_without_duplicates() {
    let (_dir, lake) = temp_lake();
    let part = [("run_date", "2026-03-01"), ("bank", "all")];
    let w = lake
        .write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 5, "r1")])
        .await
        .unwrap();
    assert_eq!(w.rows, 5);
    assert_eq!(
        w.key,
        "item_params/run_date=2026-03-01/bank=all/part-0.parquet"
    );
    assert_eq!(count(&lake, "SELECT count(*) FROM item_params").await, 5);
    // a second partition, then a re-run of the first with other content
    lake.write_partition(
        ITEM_PARAMS,
        &[("run_date", "2026-03-02"), ("bank", "all")],
        &[item_params_batch("q", 3, "r2")],
    )
    .await
    .unwrap();
    lake.write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 4, "r3")])
        .await
        .unwrap();
    assert_eq!(count(&lake, "SELECT count(*) FROM item_params").await, 7);
    assert_eq!(
        count(
            &lake,
            "SELECT count(*) FROM item_params WHERE run_date = '2026-03-01' AND run_id = 'r3'"
        )
        .await,
        4
    );
    let objects = lake.list("item_params").await.unwrap();
    assert_eq!(objects.len(), 2, "one object per partition: {objects:?}");
    let b = lake
        .sql("SELECT avg(a) FROM item_params WHERE run_date = '2026-03-02'")
        .await
        .unwrap();
    let avg = b[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Float64Type>()
        .value(0);
    assert!((avg - 1.1).abs() < 1e-12);
}

#[tokio::test]
async fn schema_mismatch_is_refused_and_lake_unchanged() {
    let (_dir, lake) = temp_lake();
    let part = [("run_date", "2026-03-01"), ("bank", "all")];
    lake.write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 2, "r1")])
        .await
        .unwrap();
    let before = lake.list("").await.unwrap();
    // wrong table for the batch
    let err = lake
        .write_partition("abilities", &part, &[item_params_batch("q", 2, "r2")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, lake::LakeError::SchemaMismatch { .. }),
        "{err}"
    );
    // a column dropped
    let b = item_params_batch("q", 2, "r2");
    let b = b
        .project(&(0..b.num_columns() - 1).collect::<Vec<_>>())
        .unwrap();
    let err = lake
        .write_partition(ITEM_PARAMS, &part, &[b])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expected columns"), "{err}");
    // wrong partition columns
    let err = lake
        .write_partition(
            ITEM_PARAMS,
            &[("run_date", "2026-03-01")],
            &[item_params_batch("q", 2, "r2")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, lake::LakeError::BadPartition { .. }), "{err}");
    assert!(lake.write_partition("nope", &[], &[]).await.is_err());
    assert_eq!(lake.list("").await.unwrap(), before);
}

#[tokio::test]
async fn partition_values_are_data_not_paths() {
    let (dir, lake) = temp_lake();
    let nasty = ["../x", "a/b", "k=v", "..", "수학/통계", "subject:alg%2F1"];
    for (i, bank) in nasty.iter().enumerate() {
        lake.write_partition(
            ITEM_PARAMS,
            &[("run_date", "2026-03-01"), ("bank", bank)],
            &[item_params_batch(&format!("q{i}"), 1, "r")],
        )
        .await
        .unwrap();
    }
    // every object stays inside item_params/run_date=…/ one folder deep
    let objects = lake.list("").await.unwrap();
    assert_eq!(objects.len(), nasty.len());
    for o in &objects {
        let parts: Vec<&str> = o.key.split('/').collect();
        assert_eq!(parts.len(), 4, "{}", o.key);
        assert_eq!(parts[0], "item_params");
        assert!(parts[2].starts_with("bank="), "{}", o.key);
    }
    // nothing was written outside the lake folder
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("lake")]);
    // values round-trip through SQL
    let b = lake
        .sql("SELECT bank, item_id FROM item_params ORDER BY item_id")
        .await
        .unwrap();
    let mut got: Vec<String> = Vec::new();
    for batch in &b {
        let c = batch.column(0).as_string::<i32>();
        got.extend((0..c.len()).map(|i| c.value(i).to_string()));
    }
    assert_eq!(got, nasty.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let b = lake
        .sql("SELECT count(*) FROM item_params WHERE bank = '수학/통계'")
        .await
        .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 1);
}

#[tokio::test]
async fn young_lake_answers_every_table_and_every_check() {
    let (_dir, lake) = temp_lake();
    for def in lake::TABLES.iter() {
        let b = lake
            .sql(&format!("SELECT * FROM {} LIMIT 1", def.name))
            .await
            .unwrap();
        assert_eq!(
            b.iter().map(|b| b.num_rows()).sum::<usize>(),
            0,
            "{}",
            def.name
        );
    }
    let b = lake
        .sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        .await
        .unwrap();
    assert_eq!(
        b.iter().map(|b| b.num_rows()).sum::<usize>(),
        lake::TABLES.len()
    );
}
