//! Stage forecast on a small demo lake (42 days) and on lakes with too little history.

pub use crate::support::stage_input as input;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::{Date32Type, Float64Type, Int64Type};
use lake::Lake;

pub use crate::support::day;
use crate::support::{QUESTIONS_CSV, temp_lake, write_file};

/// Last day of the demo lake (day 41 from 2026-01-05).
pub const DEMO_LAST_DAY: &str = "2026-02-15";

/// Every object under `prefix` with its bytes.
pub async fn snapshot(lake: &Lake, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for o in lake.list(prefix).await.unwrap() {
        out.push((
            o.key.clone(),
            lake.get_object(&o.key).await.unwrap().to_vec(),
        ));
    }
    out
}

/// A demo lake of 3,000 students, 100 items over 42 days (2026-01-05 .. 2026-02-15),
/// calibrated, with topic θ, daily features and weekly KPIs from day 0 to the last day.
pub async fn demo_lake() -> (tempfile::TempDir, Lake) {
    let t = Instant::now();
    let (dir, lake) =
        crate::support::calibrated_demo_lake([3000, 100, 42, 20], &[], Some(DEMO_LAST_DAY)).await;
    let st = score_topics::run(&lake, &input(DEMO_LAST_DAY, None))
        .await
        .unwrap();
    assert_eq!(st.status, "scored");
    let f = features::run(&lake, &input(DEMO_LAST_DAY, Some("2026-01-05")))
        .await
        .unwrap();
    assert_eq!(f.days_written, 42);
    let k = kpis::run(&lake, &input(DEMO_LAST_DAY, Some("2026-01-05")))
        .await
        .unwrap();
    assert_eq!(k.weeks.len(), 6);
    eprintln!(
        "demo lake (3000 students, 42 days) built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    (dir, lake)
}

/// Rows of one SQL query as `(series, ds, a, b, c)`.
async fn rows(lake: &Lake, sql: &str) -> Vec<(String, i32, f64, f64, f64)> {
    let mut out = Vec::new();
    for b in lake.sql(sql).await.unwrap() {
        let s = b.column(0).as_string::<i32>();
        let ds = b.column(1).as_primitive::<Date32Type>();
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>().clone();
        let (x, y, z) = (f(2), f(3), f(4));
        for r in 0..b.num_rows() {
            out.push((
                s.value(r).to_string(),
                ds.value(r),
                x.value(r),
                y.value(r),
                z.value(r),
            ));
        }
    }
    out
}

fn epoch_day(d: &str) -> i32 {
    (day(d) - day("1970-01-01")).num_days() as i32
}

#[tokio::test]
async fn forecast_on_a_demo_lake() {
    let (_dir, lake) = demo_lake().await;
    let t = Instant::now();
    let out = forecast::run(&lake, &input(DEMO_LAST_DAY, None))
        .await
        .unwrap();
    let elapsed = t.elapsed().as_secs_f64();
    eprintln!(
        "forecast stage: {elapsed:.2} s\n{}",
        serde_json::to_string_pretty(&out).unwrap()
    );
    assert_eq!(out.status, "forecast", "{}", out.message);

    // three series per subject, each either forecast or skipped with a reason
    let subjects: BTreeSet<String> = lake
        .sql("SELECT DISTINCT subject_id FROM questions WHERE subject_id IS NOT NULL")
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            let c = b.column(0).as_string::<i32>();
            (0..b.num_rows())
                .map(|r| c.value(r).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!subjects.is_empty());
    let mut expected = BTreeSet::new();
    for s in &subjects {
        for m in ["active_students", "mean_theta", "mean_i_t"] {
            expected.insert(format!("{s}:{m}"));
        }
    }
    let kept: BTreeSet<String> = out.series.iter().map(|s| s.series.clone()).collect();
    let skipped: BTreeSet<String> = out.skipped.iter().map(|s| s.series.clone()).collect();
    assert!(kept.is_disjoint(&skipped));
    assert_eq!(&kept | &skipped, expected, "skipped: {:?}", out.skipped);
    // on 42 days with features and KPIs from day 0, every series is long enough
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    for s in &out.series {
        let min = if s.series.ends_with(":mean_i_t") {
            28
        } else {
            42
        };
        assert!(s.points >= min, "{}: {} points", s.series, s.points);
    }

    // 28 future days per kept series, ordered intervals
    let fc = rows(
        &lake,
        "SELECT series, ds, yhat, yhat_lower, yhat_upper FROM forecasts ORDER BY series, ds",
    )
    .await;
    assert_eq!(fc.len(), 28 * kept.len());
    assert_eq!(out.forecast_rows, fc.len());
    let mut by_series: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (s, ds, yhat, lo, hi) in &fc {
        assert!(kept.contains(s), "{s}");
        assert!(yhat.is_finite() && lo.is_finite() && hi.is_finite());
        assert!(
            lo <= yhat && yhat <= hi,
            "{s} day {ds}: {lo} <= {yhat} <= {hi}"
        );
        assert!(lo < hi, "{s} day {ds}: empty interval");
        by_series.entry(s).or_default().push(*ds);
    }
    let first = epoch_day(DEMO_LAST_DAY) + 1;
    for (s, days) in &by_series {
        assert_eq!(days, &(first..first + 28).collect::<Vec<_>>(), "{s}");
    }

    // the active-students forecast starts near the recent level (checked on the raw attempts)
    let recent = lake
        .sql(
            "SELECT subject_id, CAST(count(DISTINCT concat(dt, '|', student_id)) AS DOUBLE) / 14.0 \
             FROM attempts WHERE dt >= '2026-02-02' GROUP BY subject_id",
        )
        .await
        .unwrap();
    for b in &recent {
        let (s, v) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_primitive::<Float64Type>(),
        );
        for r in 0..b.num_rows() {
            let name = format!("{}:active_students", s.value(r));
            let week: Vec<f64> = fc
                .iter()
                .filter(|x| x.0 == name)
                .take(7)
                .map(|x| x.2)
                .collect();
            let mean = week.iter().sum::<f64>() / 7.0;
            eprintln!(
                "{name}: last 14 days {:.1}/day, first forecast week {mean:.1}/day",
                v.value(r)
            );
            assert!(
                (mean - v.value(r)).abs() < 0.5 * v.value(r),
                "{name}: {mean} vs {}",
                v.value(r)
            );
        }
    }

    // anomalies: readable, in the window, outside the 99% interval
    let an = rows(
        &lake,
        "SELECT series, ds, value, expected, score FROM anomalies ORDER BY series, ds",
    )
    .await;
    assert_eq!(an.len(), out.anomaly_rows);
    let per_series: usize = out.series.iter().map(|s| s.anomalies).sum();
    assert_eq!(an.len(), per_series);
    for (s, ds, value, expected, score) in &an {
        assert!(kept.contains(s));
        assert!((epoch_day("2026-01-05")..=epoch_day(DEMO_LAST_DAY)).contains(ds));
        assert!(*score > 1.0 && value != expected, "{s} {ds}: score {score}");
    }
    let n: i64 = lake.sql("SELECT count(*) FROM anomalies").await.unwrap()[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0);
    assert_eq!(n as usize, an.len());
    eprintln!("{} forecast rows, {} anomalies", fc.len(), an.len());

    // a re-run with the same input writes the same bytes
    let before = (
        snapshot(&lake, "forecasts").await,
        snapshot(&lake, "anomalies").await,
    );
    assert_eq!(before.0.len(), 1);
    assert_eq!(before.1.len(), 1);
    for i in 0..3 {
        let t = Instant::now();
        forecast::run(&lake, &input(DEMO_LAST_DAY, None))
            .await
            .unwrap();
        eprintln!("forecast re-run: {:.2} s", t.elapsed().as_secs_f64());
        let after = (
            snapshot(&lake, "forecasts").await,
            snapshot(&lake, "anomalies").await,
        );
        assert!(before == after, "forecast partitions changed on re-run {i}");
    }
}

/// Attempts of student `s1` on question q1 once a day for `days` days from 2026-03-02.
fn daily_attempts(days: u32) -> String {
    let mut csv = String::from(
        "attempt_id,student_id,question_id,correct,completed_at,time_spent_ms,hints_used,session_id\n",
    );
    for d in 0..days {
        let date = day("2026-03-02") + chrono::Days::new(u64::from(d));
        writeln!(csv, "a{d},s1,q1,1,{date}T09:00:00Z,30000,0,x{d}").unwrap();
    }
    csv
}

#[tokio::test]
async fn forecast_with_too_little_history() {
    // no attempts at all
    let (_d0, empty) = temp_lake();
    let out = forecast::run(&empty, &input("2026-03-03", None))
        .await
        .unwrap();
    assert_eq!(out.status, "no_activity", "{}", out.message);
    assert!(empty.list("forecasts").await.unwrap().is_empty());

    // two days of attempts: every series too short
    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(
        &lake,
        &write_file(dir.path(), "a.csv", crate::support::ATTEMPTS_CSV),
    )
    .await
    .unwrap();
    features::run(&lake, &input("2026-03-03", Some("2026-03-02")))
        .await
        .unwrap();
    kpis::run(&lake, &input("2026-03-03", None)).await.unwrap();
    let out = forecast::run(&lake, &input("2026-03-03", None))
        .await
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&out).unwrap());
    assert_eq!(out.status, "insufficient_history");
    assert!(out.message.contains("nothing written"), "{}", out.message);
    assert!(out.series.is_empty());
    let active = out
        .skipped
        .iter()
        .find(|s| s.series == "math:active_students")
        .unwrap();
    assert_eq!(active.points, 2);
    assert!(
        active.reason.starts_with("too_few_points"),
        "{}",
        active.reason
    );
    assert!(lake.list("forecasts").await.unwrap().is_empty());
    assert!(lake.list("anomalies").await.unwrap().is_empty());

    // three weeks of one student a day: long enough, but constant
    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(&lake, &write_file(dir.path(), "a.csv", &daily_attempts(21)))
        .await
        .unwrap();
    let out = forecast::run(&lake, &input("2026-03-22", None))
        .await
        .unwrap();
    assert_eq!(out.status, "insufficient_history");
    assert_eq!(out.skipped.len(), 1, "{:?}", out.skipped);
    assert_eq!(out.skipped[0].series, "math:active_students");
    assert_eq!(out.skipped[0].points, 21);
    assert!(
        out.skipped[0].reason.starts_with("constant"),
        "{}",
        out.skipped[0].reason
    );
    assert!(lake.list("forecasts").await.unwrap().is_empty());

    // the same student with a lapse: the missing days are zeros, and now it varies
    let mut csv = daily_attempts(21);
    csv = csv
        .lines()
        .filter(|l| !l.starts_with("a10,") && !l.starts_with("a11,"))
        .collect::<Vec<_>>()
        .join("\n");
    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(&lake, &write_file(dir.path(), "a.csv", &csv))
        .await
        .unwrap();
    let out = forecast::run(&lake, &input("2026-03-22", None))
        .await
        .unwrap();
    assert_eq!(out.status, "forecast", "{}", out.message);
    assert_eq!(out.series.len(), 1);
    assert_eq!(out.series[0].points, 21);
    assert_eq!(out.forecast_rows, 28);
}

/// mean_theta is the mean over active students of each student's mean θ over their
/// topics of the subject: built to be exactly 0.1 · day, the forecast continues the line.
#[tokio::test]
async fn forecast_follows_the_cohort_mean_theta() {
    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    let mut csv = String::from(
        "attempt_id,student_id,question_id,correct,completed_at,time_spent_ms,hints_used,session_id\n",
    );
    // per day: s1 on alg (q1) and geo (q3), s2 on alg (q2)
    let rows: [(&str, &str, &str, f64); 3] = [
        ("s1", "q1", "alg", 0.0),
        ("s1", "q3", "geo", 0.2),
        ("s2", "q2", "alg", -0.1),
    ];
    let def = lake::catalog::table(lake::catalog::FEATURES_TOPIC_DAILY).unwrap();
    for d in 0..21u32 {
        let date = day("2026-03-02") + chrono::Days::new(u64::from(d));
        for (i, (s, q, _, _)) in rows.iter().enumerate() {
            writeln!(csv, "a{d}-{i},{s},{q},1,{date}T09:0{i}:00Z,30000,0,{s}-{d}").unwrap();
        }
        let theta: Vec<f64> = rows.iter().map(|r| 0.1 * f64::from(d) + r.3).collect();
        let str_col = |v: Vec<&str>| -> arrow::array::ArrayRef {
            std::sync::Arc::new(arrow::array::StringArray::from(v))
        };
        let i64_col = |v: i64| -> arrow::array::ArrayRef {
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![v; 3]))
        };
        let f64_col = |v: Vec<f64>| -> arrow::array::ArrayRef {
            std::sync::Arc::new(arrow::array::Float64Array::from(v))
        };
        let batch = arrow::array::RecordBatch::try_new(
            def.file_schema.clone(),
            vec![
                str_col(vec!["hand"; 3]),
                str_col(rows.iter().map(|r| r.0).collect()),
                str_col(rows.iter().map(|r| r.2).collect()),
                i64_col(1),
                i64_col(1),
                f64_col(vec![1.0; 3]),
                f64_col(vec![30000.0; 3]),
                i64_col(0),
                f64_col(theta),
                f64_col(vec![0.3; 3]),
                str_col(vec!["topic"; 3]),
                std::sync::Arc::new(
                    arrow::array::TimestampMicrosecondArray::from(vec![0; 3]).with_timezone("UTC"),
                ),
            ],
        )
        .unwrap();
        lake.write_partition(
            lake::catalog::FEATURES_TOPIC_DAILY,
            &[("dt", &lake::runs::day_str(date))],
            &[batch],
        )
        .await
        .unwrap();
    }
    lake::ingest::ingest_attempts(&lake, &write_file(dir.path(), "a.csv", &csv))
        .await
        .unwrap();
    let out = forecast::run(&lake, &input("2026-03-22", None))
        .await
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&out).unwrap());
    assert_eq!(out.status, "forecast", "{}", out.message);
    // two active students every day: constant, skipped; no KPIs: no I_t series
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].series, "math:active_students");
    assert!(out.skipped[0].reason.starts_with("constant"));
    assert_eq!(out.series.len(), 1);
    assert_eq!(
        (out.series[0].series.as_str(), out.series[0].points),
        ("math:mean_theta", 21)
    );
    let fc = rows_of(&lake).await;
    assert_eq!(fc.len(), 28);
    let day0 = epoch_day("2026-03-02");
    for (_, ds, yhat, lo, hi) in &fc {
        let truth = 0.1 * f64::from(ds - day0);
        assert!((yhat - truth).abs() < 1e-3, "day {ds}: {yhat} vs {truth}");
        assert!(*lo <= *yhat && *yhat <= *hi);
    }
}

async fn rows_of(lake: &Lake) -> Vec<(String, i32, f64, f64, f64)> {
    rows(
        lake,
        "SELECT series, ds, yhat, yhat_lower, yhat_upper FROM forecasts ORDER BY series, ds",
    )
    .await
}
