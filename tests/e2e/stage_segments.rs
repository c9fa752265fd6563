//! Stage segments on a small demo lake, on a hand-made lake with known features, and
//! with too few students.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int32Type, Int64Type};
use lake::Lake;
use models::segment::{SegmentFeatures, rule_label};
use serde_json::Value;

use crate::stage_forecast::{DEMO_LAST_DAY, demo_lake, input, snapshot};
use crate::support::{ATTEMPTS_CSV, QUESTIONS_CSV, temp_lake, write_file};

const LABELS: [&str; 7] = [
    "short_frequent",
    "long_rare",
    "hint_heavy",
    "improving",
    "struggling",
    "efficient",
    "steady",
];

/// One `user_segment` row.
struct Row {
    cluster: i32,
    label: String,
    snap: Value,
}

async fn segment_rows(lake: &Lake) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    let batches = lake
        .sql("SELECT student_id, \"cluster\", segment_label, features_snapshot FROM user_segment ORDER BY student_id")
        .await
        .unwrap();
    for b in &batches {
        let (s, c, l, f) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_primitive::<Int32Type>(),
            b.column(2).as_string::<i32>(),
            b.column(3).as_string::<i32>(),
        );
        for r in 0..b.num_rows() {
            let row = Row {
                cluster: c.value(r),
                label: l.value(r).to_string(),
                snap: serde_json::from_str(f.value(r)).unwrap(),
            };
            assert!(
                out.insert(s.value(r).to_string(), row).is_none(),
                "{} twice",
                s.value(r)
            );
        }
    }
    out
}

fn features_of(snap: &Value) -> SegmentFeatures {
    let f = |k: &str| {
        snap[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {snap}"))
    };
    SegmentFeatures {
        gap: f("gap"),
        sessions: f("sessions"),
        hints: f("hints"),
        improvement: f("improvement"),
        efficiency: f("efficiency"),
    }
}

/// Checks every row's label against the rules on its snapshot's raw features, falling
/// back to its cluster's centre label; returns rows per cluster.
fn check_labels(rows: &BTreeMap<String, Row>, out: &segments::SegmentsOutput) -> Vec<usize> {
    let k = out.k.unwrap();
    let mut sizes = vec![0; k];
    for (id, row) in rows {
        assert!(LABELS.contains(&row.label.as_str()), "{id}: {}", row.label);
        let c = usize::try_from(row.cluster).unwrap();
        assert!(c < k, "{id}: cluster {c}");
        sizes[c] += 1;
        let f = features_of(&row.snap);
        match rule_label(&f) {
            Some(l) => {
                assert_eq!(row.label, l.as_str(), "{id}: {}", row.snap);
                assert_eq!(row.snap["label_source"], "rule");
            }
            None => {
                assert_eq!(row.label, out.clusters[c].label, "{id}: {}", row.snap);
                assert_eq!(row.snap["label_source"], "centroid");
            }
        }
    }
    sizes
}

#[tokio::test]
async fn segments_on_a_demo_lake() {
    let (_dir, lake) = demo_lake().await;
    let t = Instant::now();
    let out = segments::run(&lake, &input(DEMO_LAST_DAY, None))
        .await
        .unwrap();
    let elapsed = t.elapsed().as_secs_f64();
    eprintln!(
        "segments stage: {elapsed:.2} s\n{}",
        serde_json::to_string_pretty(&out).unwrap()
    );
    assert_eq!(out.status, "segmented", "{}", out.message);

    // one row per student active in the window (KPIs cover every week, so none excluded)
    let active: i64 = lake
        .sql("SELECT count(DISTINCT student_id) FROM attempts WHERE dt <= '2026-02-15'")
        .await
        .unwrap()[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0);
    let rows = segment_rows(&lake).await;
    assert_eq!(out.excluded_no_kpis, 0);
    assert_eq!(out.active_students as i64, active);
    assert_eq!(rows.len() as i64, active);
    assert_eq!(out.students, rows.len());

    // labels from the allowed set and consistent with the rules; sizes add up
    let k = out.k.unwrap();
    assert!((4..=8).contains(&k), "k = {k}");
    let sizes = check_labels(&rows, &out);
    assert_eq!(sizes.iter().sum::<usize>(), rows.len());
    assert_eq!(
        sizes,
        out.clusters.iter().map(|c| c.size).collect::<Vec<_>>()
    );
    assert_eq!(out.labels.values().sum::<usize>(), rows.len());
    assert!(out.labels.len() >= 3, "{:?}", out.labels);
    let single = rows.values().filter(|r| r.snap["gap_open"] == true).count();
    assert_eq!(single, out.single_session);
    assert!(
        rows.values()
            .all(|r| r.snap["gap_open"] == (r.snap["sessions"] == 1.0))
    );

    // raw features recomputed from attempts and weekly_kpi for a few students
    let ids: Vec<&String> = rows.keys().step_by(rows.len() / 5).collect();
    for id in ids {
        let snap = &rows[id].snap;
        let sql = format!(
            "WITH s AS (SELECT session_id, min(completed_at) AS t FROM attempts WHERE student_id = '{id}' GROUP BY session_id) \
             SELECT CAST(count(*) AS BIGINT), \
                    CAST(date_part('epoch', max(t)) - date_part('epoch', min(t)) AS DOUBLE) / 86400.0 FROM s"
        );
        let b = &lake.sql(&sql).await.unwrap()[0];
        let sessions = b.column(0).as_primitive::<Int64Type>().value(0);
        let span = b.column(1).as_primitive::<Float64Type>().value(0);
        assert_eq!(snap["sessions"].as_f64().unwrap(), sessions as f64, "{id}");
        if sessions > 1 {
            let gap = snap["gap"].as_f64().unwrap();
            assert!(
                (gap - span / (sessions - 1) as f64).abs() < 1e-6,
                "{id}: gap {gap} vs span {span}"
            );
        }
        let sql = format!(
            "SELECT CAST(sum(coalesce(hints_used, 0)) AS DOUBLE) / CAST(count(*) AS DOUBLE) FROM attempts WHERE student_id = '{id}'"
        );
        let hints = lake.sql(&sql).await.unwrap()[0]
            .column(0)
            .as_primitive::<Float64Type>()
            .value(0);
        assert!(
            (snap["hints"].as_f64().unwrap() - hints).abs() < 1e-12,
            "{id}"
        );
        let sql = format!(
            "SELECT coalesce(avg(i_t), 0.0), avg(e_t) FROM weekly_kpi WHERE student_id = '{id}'"
        );
        let b = &lake.sql(&sql).await.unwrap()[0];
        let (it, et) = (
            b.column(0).as_primitive::<Float64Type>(),
            b.column(1).as_primitive::<Float64Type>(),
        );
        assert!(
            (snap["improvement"].as_f64().unwrap() - it.value(0)).abs() < 1e-12,
            "{id}"
        );
        assert!(
            (snap["efficiency"].as_f64().unwrap() - et.value(0)).abs() < 1e-12,
            "{id}"
        );
    }

    // a re-run with the same input writes the same bytes
    let before = snapshot(&lake, "user_segment").await;
    assert_eq!(before.len(), 1);
    for i in 0..3 {
        let t = Instant::now();
        segments::run(&lake, &input(DEMO_LAST_DAY, None))
            .await
            .unwrap();
        eprintln!("segments re-run: {:.2} s", t.elapsed().as_secs_f64());
        assert!(
            before == snapshot(&lake, "user_segment").await,
            "user_segment changed on re-run {i}"
        );
    }
}

/// 20 students `u00`..`u19` from 2026-03-02: student i has 1 + i % 5 sessions, one every
/// 1 + i % 3 days at 08:00 + i minutes, each of two attempts 5 minutes apart with
/// i % 4 hints on the first; `u19` has no session ids (a session per day).
fn twenty_students() -> String {
    let mut csv = String::from(
        "attempt_id,student_id,question_id,correct,completed_at,time_spent_ms,hints_used,session_id\n",
    );
    let start = "2026-03-02T08:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let mut n = 0;
    for i in 0..20i64 {
        for j in 0..(1 + i % 5) {
            let t0 = start + chrono::Duration::days(j * (1 + i % 3)) + chrono::Duration::minutes(i);
            let session = if i == 19 {
                String::new()
            } else {
                format!("u{i:02}-{j}")
            };
            for (a, (q, hints, correct)) in [("q1", i % 4, i % 2 == 0), ("q3", 0, true)]
                .into_iter()
                .enumerate()
            {
                let t = t0 + chrono::Duration::minutes(5 * a as i64);
                n += 1;
                writeln!(
                    csv,
                    "a{n},u{i:02},{q},{},{},{},{hints},{session}",
                    u8::from(correct),
                    t.format("%Y-%m-%dT%H:%M:%SZ"),
                    20_000 + 1000 * i
                )
                .unwrap();
            }
        }
    }
    csv
}

#[tokio::test]
async fn segments_features_on_a_hand_made_lake() {
    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(&lake, &write_file(dir.path(), "a.csv", &twenty_students()))
        .await
        .unwrap();

    // without weekly KPIs nobody has an efficiency: all excluded, nothing written
    let out = segments::run(&lake, &input("2026-03-20", None))
        .await
        .unwrap();
    assert_eq!(out.status, "too_few_students", "{}", out.message);
    assert_eq!(
        (out.active_students, out.excluded_no_kpis, out.students),
        (20, 20, 0)
    );
    assert!(out.message.contains("nothing written"), "{}", out.message);
    assert!(lake.list("user_segment").await.unwrap().is_empty());

    kpis::run(&lake, &input("2026-03-20", Some("2026-03-02")))
        .await
        .unwrap();
    let out = segments::run(&lake, &input("2026-03-20", None))
        .await
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&out).unwrap());
    assert_eq!(out.status, "segmented", "{}", out.message);
    assert_eq!(out.students, 20);
    let rows = segment_rows(&lake).await;
    assert_eq!(rows.len(), 20);
    let sizes = check_labels(&rows, &out);
    assert_eq!(sizes.iter().sum::<usize>(), 20);

    let kpi: HashMap<String, (f64, f64)> = {
        let b = lake
            .sql("SELECT student_id, coalesce(avg(i_t), 0.0), avg(e_t) FROM weekly_kpi GROUP BY student_id")
            .await
            .unwrap();
        let mut m = HashMap::new();
        for b in &b {
            let (s, it, et) = (
                b.column(0).as_string::<i32>(),
                b.column(1).as_primitive::<Float64Type>(),
                b.column(2).as_primitive::<Float64Type>(),
            );
            for r in 0..b.num_rows() {
                m.insert(s.value(r).to_string(), (it.value(r), et.value(r)));
            }
        }
        m
    };
    let end_of_run_date = "2026-03-21T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    for i in 0..20i64 {
        let id = format!("u{i:02}");
        let f = &rows[&id].snap;
        let sessions = 1 + i % 5;
        let every = (1 + i % 3) as f64;
        assert_eq!(f["sessions"].as_f64().unwrap(), sessions as f64, "{id}");
        assert_eq!(f["attempts"].as_i64().unwrap(), 2 * sessions, "{id}");
        assert_eq!(f["hints"].as_f64().unwrap(), (i % 4) as f64 / 2.0, "{id}");
        let gap = f["gap"].as_f64().unwrap();
        if sessions == 1 {
            let start = "2026-03-02T08:00:00Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                + chrono::Duration::minutes(i);
            let open = (end_of_run_date - start).num_seconds() as f64 / 86_400.0;
            assert!((gap - open).abs() < 1e-9, "{id}: gap {gap} vs {open}");
            assert_eq!(f["gap_open"], true);
        } else {
            assert!((gap - every).abs() < 1e-9, "{id}: gap {gap} vs {every}");
            assert_eq!(f["gap_open"], false);
        }
        let (it, et) = kpi[&id];
        assert!(
            (f["improvement"].as_f64().unwrap() - it).abs() < 1e-12,
            "{id}"
        );
        assert!(
            (f["efficiency"].as_f64().unwrap() - et).abs() < 1e-12,
            "{id}"
        );
    }
    // u00: all right, fastest, no hints, no I_t (one week only) → efficient by its own rule
    assert_eq!(rows["u00"].label, "efficient", "{}", rows["u00"].snap);
    assert_eq!(rows["u00"].snap["label_source"], "rule");
    let labels: BTreeSet<&str> = rows.values().map(|r| r.label.as_str()).collect();
    eprintln!("labels on the hand-made lake: {labels:?}");
}

#[tokio::test]
async fn segments_with_too_few_students() {
    let (_d0, empty) = temp_lake();
    let out = segments::run(&empty, &input("2026-03-03", None))
        .await
        .unwrap();
    assert_eq!(out.status, "no_activity", "{}", out.message);

    let (dir, lake) = temp_lake();
    lake::ingest::ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    lake::ingest::ingest_attempts(&lake, &write_file(dir.path(), "a.csv", ATTEMPTS_CSV))
        .await
        .unwrap();
    kpis::run(&lake, &input("2026-03-03", None)).await.unwrap();
    let out = segments::run(&lake, &input("2026-03-03", None))
        .await
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&out).unwrap());
    assert_eq!(out.status, "too_few_students");
    assert_eq!((out.active_students, out.students), (2, 2));
    assert!(
        out.message.contains("at least 16") && out.message.contains("nothing written"),
        "{}",
        out.message
    );
    assert!(lake.list("user_segment").await.unwrap().is_empty());
}
