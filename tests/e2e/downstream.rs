//! Stages score_topics, features and kpis on a small demo lake and on hand-made lakes.

use crate::support::stage_input as input;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, Int64Type};

use crate::support::{ATTEMPTS_CSV, QUESTIONS_CSV, temp_lake, write_file};

async fn snapshot(lake: &lake::Lake, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for o in lake.list(prefix).await.unwrap() {
        out.push((
            o.key.clone(),
            lake.get_object(&o.key).await.unwrap().to_vec(),
        ));
    }
    out
}

fn csv_map(path: &std::path::Path, key: &[usize], val: usize) -> HashMap<String, String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let k: Vec<&str> = key.iter().map(|&i| &rec[i]).collect();
            (k.join("|"), rec[val].to_string())
        })
        .collect()
}

/// 4,000 students over 28 days (2026-01-05 .. 2026-02-01), calibrated, then the three stages.
#[tokio::test]
async fn downstream_stages_on_a_demo_lake() {
    let (dir, lake) =
        crate::support::calibrated_demo_lake([4000, 100, 28, 20], &[], Some("2026-02-01")).await;
    let truth = dir.path().join("truth");

    let st = score_topics::run(&lake, &input("2026-02-01", None))
        .await
        .unwrap();
    assert_eq!(st.status, "scored");
    let f = features::run(&lake, &input("2026-02-01", Some("2026-01-05")))
        .await
        .unwrap();
    assert_eq!(f.days_written, 28);
    assert!(
        f.theta_sources[0] > f.theta_sources[1],
        "{:?}",
        f.theta_sources
    );
    let k = kpis::run(&lake, &input("2026-02-01", Some("2026-01-05")))
        .await
        .unwrap();
    assert_eq!(k.weeks.len(), 4);
    assert!(k.methods[0] > 0, "{:?}", k.methods);

    // topic θ follows the true topic-level ability (θ at the end of the window + offset)
    let students = csv_map(&truth.join("students.csv"), &[0], 4);
    let offsets = csv_map(&truth.join("student_topics.csv"), &[0, 1], 2);
    let b = lake
        .sql("SELECT student_id, topic_id, theta FROM student_topic_theta")
        .await
        .unwrap();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for batch in &b {
        let (s, t, th) = (
            batch.column(0).as_string::<i32>(),
            batch.column(1).as_string::<i32>(),
            batch.column(2).as_primitive::<Float64Type>(),
        );
        for r in 0..batch.num_rows() {
            let truth_theta: f64 = students[s.value(r)].parse::<f64>().unwrap()
                + offsets[&format!("{}|{}", s.value(r), t.value(r))]
                    .parse::<f64>()
                    .unwrap();
            xs.push(th.value(r));
            ys.push(truth_theta);
        }
    }
    let corr = crate::support::pearson(&xs, &ys);
    // measured 0.72 on the full demo; a topic θ rests on ~3–15 responses (SE ≈ 0.5–0.7)
    eprintln!(
        "corr(topic θ, true topic θ) = {corr:.3} over {} student-topics",
        xs.len()
    );
    assert!(
        corr > 0.5,
        "corr(topic θ, true topic θ) = {corr} over {} rows",
        xs.len()
    );

    // improving students' I_t is clearly above declining students'
    let traj = csv_map(&truth.join("students.csv"), &[0], 2);
    let b = lake
        .sql("SELECT student_id, i_t FROM weekly_kpi WHERE i_t IS NOT NULL")
        .await
        .unwrap();
    let mut sums: HashMap<&str, (f64, f64)> = HashMap::new();
    for batch in &b {
        let (s, it) = (
            batch.column(0).as_string::<i32>(),
            batch.column(1).as_primitive::<Float64Type>(),
        );
        for r in 0..batch.num_rows() {
            let e = sums.entry(traj[s.value(r)].as_str()).or_default();
            e.0 += it.value(r);
            e.1 += 1.0;
        }
    }
    let mean = |k: &str| sums[k].0 / sums[k].1;
    let margin = mean("improving") - mean("declining");
    // measured ≈ 0.10 on the full demo (SD of I_t ≈ 0.3, ~1,000+ student-weeks per group
    // here, so the standard error of the margin is ≈ 0.015)
    eprintln!(
        "mean I_t: improving {:.4}, declining {:.4}, margin {margin:.4}",
        mean("improving"),
        mean("declining")
    );
    assert!(
        margin > 0.05,
        "mean I_t improving {} vs declining {} (margin {margin})",
        mean("improving"),
        mean("declining")
    );

    // re-running any stage for the same input changes nothing, byte for byte
    for (prefix, which) in [
        ("student_topic_theta", 0),
        ("features_topic_daily", 1),
        ("weekly_kpi", 2),
    ] {
        let before = snapshot(&lake, prefix).await;
        match which {
            0 => drop(
                score_topics::run(&lake, &input("2026-02-01", None))
                    .await
                    .unwrap(),
            ),
            1 => drop(
                features::run(&lake, &input("2026-02-01", Some("2026-01-05")))
                    .await
                    .unwrap(),
            ),
            _ => drop(
                kpis::run(&lake, &input("2026-02-01", Some("2026-01-05")))
                    .await
                    .unwrap(),
            ),
        }
        assert!(
            before == snapshot(&lake, prefix).await,
            "{prefix} changed on a re-run"
        );
    }

    // the operator checks for θ coverage and I_t methods return rows
    for check in ["05_features_theta_coverage.sql", "06_it_method_counts.sql"] {
        let sql = std::fs::read_to_string(
            crate::support::workspace_root()
                .join("sql/checks")
                .join(check),
        )
        .unwrap();
        let rows: usize = lake
            .sql(&sql)
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert!(rows > 0, "{check} returned no rows");
    }
}

/// θ source order: topic θ, else global θ, else null.
#[tokio::test]
async fn features_take_topic_then_global_then_null() {
    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(&lake, &write_file(dir.path(), "a.csv", ATTEMPTS_CSV))
        .await
        .unwrap();
    // s1 answered topic alg on 03-02: give s1 a topic θ for alg
    // s2 answered topic geo on 03-03: give s2 only a global θ; nobody else has θ
    let tt = lake::catalog::table(lake::catalog::STUDENT_TOPIC_THETA).unwrap();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["r"])),
        Arc::new(StringArray::from(vec!["s1"])),
        Arc::new(StringArray::from(vec!["alg"])),
        Arc::new(Float64Array::from(vec![0.7])),
        Arc::new(Float64Array::from(vec![0.3])),
        Arc::new(Int64Array::from(vec![5])),
    ];
    lake.write_partition(
        lake::catalog::STUDENT_TOPIC_THETA,
        &[("run_date", "2026-03-03")],
        &[RecordBatch::try_new(tt.file_schema.clone(), cols).unwrap()],
    )
    .await
    .unwrap();
    let ab = lake::catalog::table(lake::catalog::ABILITIES).unwrap();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["r", "r"])),
        Arc::new(StringArray::from(vec!["s1", "s2"])),
        Arc::new(Float64Array::from(vec![-0.2, 1.1])),
        Arc::new(Float64Array::from(vec![0.4, 0.5])),
        Arc::new(Int64Array::from(vec![2, 2])),
        Arc::new(StringArray::from(vec!["eap", "eap"])),
        Arc::new(arrow::array::TimestampMicrosecondArray::from(vec![0, 0]).with_timezone("UTC")),
    ];
    lake.write_partition(
        lake::catalog::ABILITIES,
        &[("run_date", "2026-03-03"), ("bank", "all")],
        &[RecordBatch::try_new(ab.file_schema.clone(), cols).unwrap()],
    )
    .await
    .unwrap();
    features::run(&lake, &input("2026-03-03", Some("2026-03-02")))
        .await
        .unwrap();
    let b = lake
        .sql("SELECT student_id, topic_id, theta_mean, theta_sd, theta_source, attempts, correct, hints FROM features_topic_daily ORDER BY student_id, topic_id")
        .await
        .unwrap();
    let b = &b[0];
    let src = b.column(4).as_string::<i32>();
    let th = b.column(2).as_primitive::<Float64Type>();
    assert_eq!((src.value(0), th.value(0)), ("topic", 0.7)); // s1, alg
    assert_eq!((src.value(1), th.value(1)), ("global", 1.1)); // s2, geo
    assert_eq!(b.column(5).as_primitive::<Int64Type>().value(1), 2);
    assert_eq!(b.column(7).as_primitive::<Int64Type>().value(1), 2);
    // with no θ runs at all, the source is null
    let (d2, bare) = temp_lake();
    lake::ingest::ingest_questions(&bare, &write_file(d2.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(&bare, &write_file(d2.path(), "a.csv", ATTEMPTS_CSV))
        .await
        .unwrap();
    let f = features::run(&bare, &input("2026-03-03", Some("2026-03-02")))
        .await
        .unwrap();
    assert_eq!(f.theta_sources, [0, 0, 2]);
    // kpis without any calibration: accuracy only, and the week has no previous week
    let k = kpis::run(&bare, &input("2026-03-03", None)).await.unwrap();
    assert_eq!((k.rows, k.methods), (2, [0, 0, 2]));
}

/// A kpis re-run keeps the churn/growth columns of weekly_kpi.
#[tokio::test]
async fn kpis_rerun_keeps_s_p_sigma() {
    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(&lake, &write_file(dir.path(), "a.csv", ATTEMPTS_CSV))
        .await
        .unwrap();
    kpis::run(&lake, &input("2026-03-03", None)).await.unwrap();
    // another stage (churn) fills s for s1
    lake.update_partition(
        lake::catalog::WEEKLY_KPI,
        &[("week_start", "2026-03-02")],
        |mut batches| {
            let b = batches.remove(0);
            let mut cols = b.columns().to_vec();
            cols[6] = Arc::new(Float64Array::from(vec![Some(0.42), None]));
            cols[7] = Arc::new(Float64Array::from(vec![Some(0.8), None]));
            Ok(vec![RecordBatch::try_new(b.schema(), cols)?])
        },
    )
    .await
    .unwrap();
    kpis::run(&lake, &input("2026-03-03", None)).await.unwrap();
    let b = lake
        .sql("SELECT student_id, s, p, a_t FROM weekly_kpi ORDER BY student_id")
        .await
        .unwrap();
    let s = b[0].column(1).as_primitive::<Float64Type>();
    let p = b[0].column(2).as_primitive::<Float64Type>();
    assert_eq!((s.value(0), p.value(0)), (0.42, 0.8));
    assert_eq!(b[0].column(3).as_primitive::<Float64Type>().value(0), 0.2);
}
