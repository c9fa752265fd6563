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

/// The date partitions are `DATE` in SQL (as DuckDB, polars and Athena read them):
/// date arithmetic works on them, they compare with date and text literals and with a
/// text parameter (the stages pass `YYYY-MM-DD` text), and a filter on them still
/// prunes by folder.
#[tokio::test]
async fn date_partitions_are_dates() {
    let (_dir, lake) = temp_lake();
    for day in ["2026-02-27", "2026-03-01", "2026-03-08"] {
        lake.write_partition(
            ITEM_PARAMS,
            &[("run_date", day), ("bank", "all")],
            &[item_params_batch("q", 2, "r")],
        )
        .await
        .unwrap();
    }
    let b = lake
        .sql("SELECT max(run_date) - INTERVAL '7 days' AS a, max(run_date) - INTERVAL '7' DAY AS b FROM item_params")
        .await
        .unwrap();
    for c in 0..2 {
        let d = b[0]
            .column(c)
            .as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!(
            d.value_as_date(0),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
        );
    }
    for sql in [
        "SELECT count(*) FROM item_params WHERE run_date >= DATE '2026-03-01'",
        "SELECT count(*) FROM item_params WHERE run_date >= '2026-03-01'",
        "SELECT count(*) FROM item_params WHERE run_date > (SELECT max(run_date) FROM item_params) - INTERVAL '8' DAY",
    ] {
        assert_eq!(count(&lake, sql).await, 4, "{sql}");
    }
    let ctx = lake.session().unwrap();
    let b = lake::runs::query(
        &ctx,
        "SELECT count(*) FROM item_params WHERE run_date <= $1",
        vec![lake::runs::day_param(
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        )],
    )
    .await
    .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 4);
    let plan = lake
        .sql("EXPLAIN SELECT item_id FROM item_params WHERE run_date = DATE '2026-03-08'")
        .await
        .unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(plan.contains("run_date=2026-03-08/"), "{plan}");
    assert!(!plan.contains("run_date=2026-03-01/"), "not pruned: {plan}");
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

/// A `weekly_kpi` object written before `p_model` was appended to the table (the 12
/// columns it had then): queries read the new column as null, and a stage that owns
/// columns of it (growth's `p`, `sigma`, `p_model`) updates it into the current schema,
/// every other value kept. A value of the wrong kind for its column is refused and the
/// object is left as it was.
#[tokio::test]
async fn objects_written_before_a_column_was_appended_are_read_and_updated() {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::Schema;
    use lake::CellValue;
    use lake::catalog::{WEEKLY_KPI, table};
    use lake::shard::Shard;

    let (dir, lake) = temp_lake();
    let current = table(WEEKLY_KPI).unwrap().file_schema.clone();
    let old_fields: Vec<_> = current
        .fields()
        .iter()
        .filter(|f| f.name() != "p_model")
        .cloned()
        .collect();
    assert_eq!(old_fields.len(), current.fields().len() - 1);
    let old = Arc::new(Schema::new(old_fields));
    let f = |v: Vec<Option<f64>>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["kpis-1"; 2])),
        Arc::new(StringArray::from(vec!["s1", "s2"])),
        f(vec![Some(0.1), None]),
        f(vec![Some(0.4), Some(0.2)]),
        f(vec![Some(0.5), Some(0.6)]),
        f(vec![None, Some(0.7)]),
        f(vec![Some(0.3), Some(0.9)]),
        f(vec![None, None]),
        f(vec![None, None]),
        Arc::new(StringArray::from(vec![Some("theta_delta"), None])),
        Arc::new(Int64Array::from(vec![12, 3])),
        Arc::new(TimestampMicrosecondArray::from(vec![0_i64; 2]).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(old.clone(), cols).unwrap();
    let folder = dir.path().join("lake/weekly_kpi/week_start=2026-02-09");
    std::fs::create_dir_all(&folder).unwrap();
    let file = std::fs::File::create(folder.join("part-0.parquet")).unwrap();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(file, old, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let read = "SELECT student_id, i_t, a_t, s, p, sigma, method, n_responses, p_model FROM weekly_kpi ORDER BY student_id";
    let before = crate::support::render(&lake, read).await;
    assert!(before.contains("theta_delta"), "{before}");
    let nulls = crate::support::count(
        &lake,
        "SELECT count(*) FROM weekly_kpi WHERE p_model IS NULL",
    )
    .await;
    assert_eq!(nulls, 2);

    let partition = [("week_start", "2026-02-09")];
    let columns = ["p", "sigma", "p_model"];
    // the wrong kind for a column: refused, nothing changed
    let wrong: HashMap<String, Vec<CellValue>> = [(
        "s1".to_string(),
        vec![
            CellValue::Text(Some("x".into())),
            CellValue::Float(None),
            CellValue::Float(None),
        ],
    )]
    .into();
    let err = lake
        .set_columns(
            WEEKLY_KPI,
            &partition,
            Shard::WHOLE,
            "student_id",
            &columns,
            &wrong,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("column 'p' is Float64"), "{err}");
    assert_eq!(before, crate::support::render(&lake, read).await);

    let values: HashMap<String, Vec<CellValue>> = [(
        "s2".to_string(),
        vec![
            CellValue::Float(Some(0.25)),
            CellValue::Float(None),
            CellValue::Text(Some("glmm_accuracy".into())),
        ],
    )]
    .into();
    let set = lake
        .set_columns(
            WEEKLY_KPI,
            &partition,
            Shard::WHOLE,
            "student_id",
            &columns,
            &values,
        )
        .await
        .unwrap();
    assert_eq!(set, 1);
    let p = crate::support::values(
        &lake,
        "SELECT p_model, p FROM weekly_kpi WHERE p IS NOT NULL",
    )
    .await;
    assert_eq!(p, [("glmm_accuracy".to_string(), 0.25)].into());
    // every other column is as it was
    let others = "SELECT student_id, i_t, a_t, e_t, r_t, s, method, n_responses, run_id FROM weekly_kpi ORDER BY student_id";
    let kept = crate::support::render(&lake, others).await;
    assert!(
        kept.contains("theta_delta") && kept.contains("0.9"),
        "{kept}"
    );
    // the object now has the current schema
    let objects = lake
        .list("weekly_kpi/week_start=2026-02-09/")
        .await
        .unwrap();
    assert_eq!(objects.len(), 1);
    let file = std::fs::File::open(folder.join("part-0.parquet")).unwrap();
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap();
    assert_eq!(reader.schema().fields().len(), current.fields().len());
}
