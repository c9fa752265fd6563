//! Stage reports on a small demo lake: content read back from the HTML against the lake,
//! shards and re-runs, hostile ids, presigned URLs on the S3-protocol server, and the
//! reports rendered by headless Chromium (console errors, overflow at 390 px, chart
//! sizes; screenshots kept under `<target>/test-artifacts/reports/`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, Int64Type};
use chrono::{DateTime, NaiveDateTime, Utc};
use lake::Lake;
use lake::catalog::{STUDENT_TOPIC_THETA, WEEKLY_KPI};
use reports::{ReportsInput, ReportsOutput};

use crate::stage_forecast::{day, input};
use crate::support::{S3Server, demo_data, temp_lake};

/// Last day of the small demo platform (21 days from 2026-01-05): a Sunday.
const LAST: &str = "2026-01-25";
/// Its week.
const WEEK: &str = "2026-01-19";
/// A student id and a topic id that try to inject markup.
const HOSTILE_STUDENT: &str = "<script>alert(\"x\")</script>&'../s";
const HOSTILE_TOPIC: &str = "<script>alert('t')</script><b>topic</b>";

/// A demo lake of 400 students, 80 items over 21 days with every stage the reports
/// read: calibrate, score_topics, features, kpis, churn, growth, forecast, segments.
async fn reports_lake() -> (tempfile::TempDir, Lake) {
    let t = Instant::now();
    let (dir, lake) = temp_lake();
    demo_data(
        &lake,
        &dir.path().join("truth"),
        &["--students", "400", "--items", "80", "--days", "21"],
    );
    calibrate::run(&lake, &calibrate::CalibrateInput::new(day(LAST)))
        .await
        .unwrap();
    score_topics::run(&lake, &input(LAST, None)).await.unwrap();
    features::run(&lake, &input(LAST, Some("2026-01-05")))
        .await
        .unwrap();
    kpis::run(&lake, &input(LAST, Some("2026-01-05")))
        .await
        .unwrap();
    churn::run(&lake, &input(LAST, None)).await.unwrap();
    growth::run(&lake, &input(LAST, None)).await.unwrap();
    forecast::run(&lake, &input(LAST, None)).await.unwrap();
    segments::run(&lake, &input(LAST, None)).await.unwrap();
    eprintln!(
        "reports lake (400 students, 21 days) built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    (dir, lake)
}

/// The reports event as the state machine sends it (plus a fixed time).
fn event(shard: u32, shards: u32) -> ReportsInput {
    ReportsInput {
        run_date: Some(day(LAST)),
        run_ts: Some("2026-01-26T03:00:00Z".parse::<DateTime<Utc>>().unwrap()),
        shard: Some(shard),
        shards: Some(shards),
        ..Default::default()
    }
}

async fn run_reports(lake: &Lake, input: &ReportsInput) -> ReportsOutput {
    reports::run(lake, input, reports::DEFAULT_URL_EXPIRY)
        .await
        .unwrap()
}

/// Undoes minijinja's HTML escaping.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The attributes of the tag starting at `start` (the `<`), unescaped.
fn tag_attrs(html: &str, start: usize) -> BTreeMap<String, String> {
    let end = start + html[start..].find('>').unwrap();
    let tag = &html[start + 1..end];
    let mut out = BTreeMap::new();
    let mut rest = tag.split_once(char::is_whitespace).map_or("", |x| x.1);
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_string();
        let after = &rest[eq + 2..];
        let close = after.find('"').unwrap();
        out.insert(name, unescape(&after[..close]));
        rest = &after[close + 1..];
    }
    out
}

/// Every element with a `data-field`: field → (data-value, text up to the next tag).
fn fields(html: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut from = 0;
    while let Some(i) = html[from..].find("data-field=\"") {
        let at = from + i;
        let start = html[..at].rfind('<').unwrap();
        let attrs = tag_attrs(html, start);
        let end = at + html[at..].find('>').unwrap();
        let text_end = end + 1 + html[end + 1..].find('<').unwrap();
        let text = unescape(&html[end + 1..text_end]);
        out.insert(
            attrs["data-field"].clone(),
            (attrs.get("data-value").cloned().unwrap_or_default(), text),
        );
        from = end;
    }
    out
}

fn f64_of(fields: &BTreeMap<String, (String, String)>, key: &str) -> Option<f64> {
    let v = &fields
        .get(key)
        .unwrap_or_else(|| panic!("no field {key}"))
        .0;
    (!v.is_empty()).then(|| v.parse().unwrap())
}

/// One row of a query as strings/floats, by column name.
async fn one_row(lake: &Lake, sql: &str) -> BTreeMap<String, Option<String>> {
    let b = lake.sql(sql).await.unwrap();
    let b = b.iter().find(|b| b.num_rows() > 0).expect(sql);
    let mut out = BTreeMap::new();
    for (i, f) in b.schema().fields().iter().enumerate() {
        let c = arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
        let c = c.as_string::<i32>();
        out.insert(
            f.name().clone(),
            (!c.is_null(0)).then(|| c.value(0).to_string()),
        );
    }
    out
}

fn num(row: &BTreeMap<String, Option<String>>, k: &str) -> Option<f64> {
    row[k].as_ref().map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn reports_show_the_lake_numbers_and_record_artifacts() {
    let (_dir, lake) = reports_lake().await;
    let out = run_reports(&lake, &event(0, 1)).await;
    assert_eq!(out.week_start, WEEK);
    assert_eq!(out.as_of, LAST);
    assert!(out.student_reports > 100, "{out:?}");
    assert_eq!(out.student_reports, out.students_in_week);
    let cohort = out.cohort_report.clone().unwrap();
    assert_eq!(cohort.key, format!("reports/week_start={WEEK}/cohort.html"));

    // The known student: the first (by id) active this week with θ, I_t by θ and P.
    let k = one_row(
        &lake,
        &format!(
            "SELECT k.student_id, k.i_t, k.a_t, k.e_t, k.r_t, k.s, k.p, k.method \
             FROM weekly_kpi k JOIN abilities a ON a.student_id = k.student_id AND a.bank = 'all' \
             WHERE k.week_start = '{WEEK}' AND k.method = 'theta_delta' AND k.p IS NOT NULL \
               AND k.s IS NOT NULL AND k.r_t IS NOT NULL ORDER BY k.student_id LIMIT 1"
        ),
    )
    .await;
    let student = k["student_id"].clone().unwrap();
    eprintln!("known student: {student}");
    let key = format!("reports/week_start={WEEK}/student_id={student}/report.html");
    let html = String::from_utf8(lake.get_object(&key).await.unwrap().to_vec()).unwrap();
    let f = fields(&html);
    assert_eq!(f["student_id"].1, student);

    // θ, SE and percentile against `abilities`.
    let a = one_row(
        &lake,
        &format!("SELECT theta, se FROM abilities WHERE bank = 'all' AND student_id = '{student}'"),
    )
    .await;
    let theta = num(&a, "theta").unwrap();
    assert_eq!(f64_of(&f, "theta"), Some(theta));
    assert_eq!(f64_of(&f, "se"), num(&a, "se"));
    assert_eq!(f["theta"].1, format!("{theta:.2}").replace('-', "\u{2212}"));
    let all: Vec<f64> = lake
        .sql("SELECT theta FROM abilities WHERE bank = 'all'")
        .await
        .unwrap()
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec())
        .collect();
    let below = all.iter().filter(|t| **t < theta).count() as f64;
    let ties = all.iter().filter(|t| **t == theta).count() as f64;
    let pct = 100.0 * (below + ties / 2.0) / all.len() as f64;
    assert!((f64_of(&f, "percentile").unwrap() - pct).abs() < 1e-9);
    let level = f["level"].0.parse::<usize>().unwrap();
    assert_eq!(
        level,
        [-1.5, -0.5, 0.5, 1.5]
            .iter()
            .filter(|c| theta >= **c)
            .count()
    );

    // KPIs against `weekly_kpi`.
    for key in ["i_t", "a_t", "e_t", "r_t", "s", "p"] {
        assert_eq!(f64_of(&f, key), num(&k, key), "{key}");
    }
    assert!(
        f["i_t"].1.starts_with(['+', '\u{2212}', '0']),
        "{:?}",
        f["i_t"]
    );
    assert_eq!(f["i_t_method"].1, "from θ");

    // Linking constants against `fit_meta`.
    let m = one_row(
        &lake,
        "SELECT run_id, run_date, model, linking_method, linking_a, linking_b, n_anchors_used \
         FROM fit_meta WHERE bank = 'all' ORDER BY run_date DESC LIMIT 1",
    )
    .await;
    assert_eq!(f["calibration_run"].0, m["run_id"].clone().unwrap());
    assert_eq!(f["calibration_date"].0, m["run_date"].clone().unwrap());
    assert_eq!(f["model"].0, m["model"].clone().unwrap());
    assert_eq!(f["linking_method"].0, m["linking_method"].clone().unwrap());
    assert_eq!(f64_of(&f, "linking_a"), num(&m, "linking_a"));
    assert_eq!(f64_of(&f, "linking_b"), num(&m, "linking_b"));
    assert_eq!(f64_of(&f, "anchors_used"), num(&m, "n_anchors_used"));

    // Goal from the growth model.
    let g = one_row(
        &lake,
        "SELECT estimate FROM growth_fit WHERE model = 'bayes' AND term = 'goal'",
    )
    .await;
    let goal = num(&g, "estimate").unwrap();
    assert!(
        f["goal"]
            .1
            .contains(&format!("{goal:.2}").replace('-', "\u{2212}")),
        "{:?}",
        f["goal"]
    );

    // Topics, weakest first, as in `student_topic_theta`.
    let mut topics: Vec<(f64, String)> = Vec::new();
    for b in lake
        .sql(&format!(
            "SELECT theta, topic_id FROM student_topic_theta WHERE student_id = '{student}'"
        ))
        .await
        .unwrap()
    {
        let (t, id) = (
            b.column(0).as_primitive::<Float64Type>(),
            b.column(1).as_string::<i32>(),
        );
        for r in 0..b.num_rows() {
            topics.push((t.value(r), id.value(r).to_string()));
        }
    }
    topics.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let shown: Vec<String> = html
        .match_indices("data-topic=\"")
        .map(|(i, _)| tag_attrs(&html, html[..i].rfind('<').unwrap())["data-topic"].clone())
        .collect();
    assert_eq!(
        shown,
        topics.iter().map(|t| t.1.clone()).collect::<Vec<_>>()
    );
    // Segment.
    let seg = one_row(
        &lake,
        &format!("SELECT segment_label FROM user_segment WHERE student_id = '{student}'"),
    )
    .await;
    assert_eq!(f["segment"].0, seg["segment_label"].clone().unwrap());

    // Self-contained: nothing to fetch, no script, a CSP.
    let cohort_html =
        String::from_utf8(lake.get_object(&cohort.key).await.unwrap().to_vec()).unwrap();
    for h in [&html, &cohort_html] {
        for bad in [
            "src=", "href=", "@import", "url(", "<link", "<img", "<iframe",
        ] {
            assert!(!h.contains(bad), "report contains {bad}");
        }
        assert_eq!(h.matches("<script").count(), 0);
        assert!(h.contains("Content-Security-Policy\" content=\"default-src 'none'"));
        assert!(h.matches("<svg").count() >= 5);
    }

    // Cohort report numbers.
    let c = fields(&cohort_html);
    assert_eq!(
        f64_of(&c, "students_active"),
        Some(out.students_in_week as f64)
    );
    assert_eq!(f64_of(&c, "students_with_theta"), Some(all.len() as f64));
    assert_eq!(f64_of(&c, "linking_a"), num(&m, "linking_a"));
    // Calibration health lists what the lake says: the anchors the drift screen ever
    // flagged (one table row per bank and anchor) and the latest runs' misfitting items.
    let flagged = one_row(
        &lake,
        &format!(
            "SELECT count(*) AS n FROM (SELECT DISTINCT bank, item_id FROM anchor_drift \
             WHERE flagged AND run_date <= '{LAST}')"
        ),
    )
    .await;
    let flagged = num(&flagged, "n").unwrap() as usize;
    assert_eq!(cohort_html.matches("data-anchor=").count(), flagged);
    if flagged == 0 {
        assert!(cohort_html.contains("No anchor flagged."));
    }
    let misfit = one_row(
        &lake,
        "SELECT count(*) AS n FROM item_params p \
         WHERE p.run_date = (SELECT max(run_date) FROM fit_meta) AND excluded_reason IS NULL \
           AND (p_s_x2 < 0.01 OR infit NOT BETWEEN 0.7 AND 1.3 OR outfit NOT BETWEEN 0.7 AND 1.3)",
    )
    .await;
    let misfit = num(&misfit, "n").unwrap() as usize;
    let listed = cohort_html
        .split("<ul id=\"misfit\">")
        .nth(1)
        .map_or(0, |rest| {
            rest.split("</ul>")
                .next()
                .unwrap_or("")
                .matches("<li>")
                .count()
        });
    assert_eq!(listed, misfit, "misfitting items listed");
    assert!(cohort_html.contains("Item fit by run (bank all)"));

    // report_artifacts: one row per object, sha256 and size of the bytes, file:// URL.
    let rows = artifact_rows(&lake).await;
    assert_eq!(rows.len() as u64, out.student_reports + 1);
    assert_eq!(out.artifact_rows, out.student_reports + 1);
    let objects = lake.list("reports/").await.unwrap();
    assert_eq!(objects.len(), rows.len());
    for o in &objects {
        let r = &rows[&o.key];
        let bytes = lake.get_object(&o.key).await.unwrap();
        assert_eq!(r.bytes, bytes.len() as i64);
        assert_eq!(r.sha256, reports::sha256_hex(&bytes));
        let path = lake.local_path(&o.key).unwrap().unwrap();
        assert_eq!(r.url, format!("file://{}", path.display()));
        assert_eq!(std::fs::read(&path).unwrap(), bytes.to_vec());
        assert_eq!(r.run_id, format!("reports-{LAST}"));
    }
    assert_eq!(rows[&cohort.key].student_id, None);
    assert_eq!(rows[&key].student_id.as_deref(), Some(student.as_str()));

    // The cohort's mean θ: the sum of the sorted θs over their number, bit for bit
    // (the stage streams the sorted θs instead of holding them).
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    assert_eq!(f64_of(&c, "mean_theta"), Some(mean));

    // Shards: two shards (one after the other) and four shards (at once, sharing the
    // week's report_artifacts partition) write the same reports (same bytes) and the
    // same report_artifacts rows as one shard, each student once, in the lake's shard
    // of their bucket; a re-run replaces rows instead of adding them.
    let before: Vec<_> = crate::stage_forecast::snapshot(&lake, "reports/").await;
    let s0 = run_reports(&lake, &event(0, 2)).await;
    let s1 = run_reports(&lake, &event(1, 2)).await;
    assert_eq!(s0.student_reports + s1.student_reports, out.student_reports);
    assert!(s0.student_reports > 0 && s1.student_reports > 0);
    assert!(s0.cohort_report.is_some() && s1.cohort_report.is_none());
    assert_eq!(
        crate::stage_forecast::snapshot(&lake, "reports/").await,
        before
    );
    let again = artifact_rows(&lake).await;
    assert_eq!(again.len(), rows.len());
    assert_eq!(again, rows);
    let ids: BTreeSet<_> = again
        .values()
        .filter_map(|r| r.student_id.clone())
        .collect();
    assert_eq!(ids.len() as u64, out.student_reports);
    for (id, shard) in [
        (s0.first_student_report.unwrap(), 0),
        (s1.first_student_report.unwrap(), 1),
    ] {
        assert_eq!(
            lake::shard::Shard::holding(id.student_id.as_deref().unwrap(), 2).index,
            shard
        );
    }
    let shared = &lake;
    let quarters = futures::future::join_all(
        (0..4).map(|k| async move { run_reports(shared, &event(k, 4)).await }),
    )
    .await;
    assert_eq!(
        quarters.iter().map(|q| q.student_reports).sum::<u64>(),
        out.student_reports
    );
    for (k, q) in quarters.iter().enumerate() {
        assert!(q.student_reports > 0, "shard {k} of 4: {q:?}");
        assert_eq!(q.cohort_report.is_some(), k == 0);
        assert_eq!(q.students_in_week, out.students_in_week);
        let first = q.first_student_report.as_ref().unwrap();
        let shard = lake::shard::Shard::new(k as u32, 4).unwrap();
        assert!(shard.contains(first.student_id.as_deref().unwrap()));
    }
    assert_eq!(
        crate::stage_forecast::snapshot(&lake, "reports/").await,
        before
    );
    assert_eq!(artifact_rows(&lake).await, rows);
    // One student's report after the four-shard run replaces that student's row in the
    // object of the partition's layout that holds them; every other row stays.
    let one = ids.iter().next().unwrap().clone();
    let single = run_reports(
        &lake,
        &ReportsInput {
            student: Some(one),
            ..event(0, 1)
        },
    )
    .await;
    assert_eq!(single.student_reports, 1);
    assert_eq!(artifact_rows(&lake).await, rows);
    // Each shard reads the rows of its own students only, and the shards cover them.
    let mut covered = BTreeSet::new();
    for k in 0..4 {
        let shard = lake::shard::Shard::new(k, 4).unwrap();
        let d = reports::data::load(&lake, day(WEEK), day(LAST), shard, false)
            .await
            .unwrap();
        let keys = d
            .week_kpis
            .keys()
            .chain(d.abilities.keys())
            .chain(d.theta_ranks.keys())
            .chain(d.kpi_history.keys())
            .chain(d.weekly_theta.keys())
            .chain(d.topic_theta.keys())
            .chain(d.segments.keys())
            .chain(d.attempts.keys());
        let mut n = 0;
        for id in keys {
            assert!(shard.contains(id), "{id} read by {}", shard.label());
            n += 1;
        }
        assert!(n > 0);
        assert_eq!(d.cohort.students_active as u64, out.students_in_week);
        assert_eq!(d.cohort.theta.n, all.len());
        covered.extend(d.week_kpis.into_keys());
    }
    assert_eq!(covered, ids);

    // Every student with a θ, also those not active this week.
    let every = run_reports(
        &lake,
        &ReportsInput {
            all_students: Some(true),
            ..event(0, 1)
        },
    )
    .await;
    assert_eq!(every.student_reports as usize, all.len());
    let rows = artifact_rows(&lake).await;
    let inactive = rows
        .iter()
        .find(|(_, r)| r.student_id.as_ref().is_some_and(|s| !ids.contains(s)))
        .map(|(k, _)| k.clone())
        .unwrap();
    let html = String::from_utf8(lake.get_object(&inactive).await.unwrap().to_vec()).unwrap();
    assert!(html.contains("No activity this week"), "{inactive}");
    assert!(!html.contains("data-field=\"i_t\""));

    // Bad events are refused with a clear message.
    for (bad, what) in [
        (
            ReportsInput {
                shard: Some(2),
                ..event(0, 2)
            },
            "shard",
        ),
        (
            ReportsInput {
                lang: Some("fr".into()),
                ..event(0, 1)
            },
            "lang",
        ),
        (
            ReportsInput {
                student: Some("nobody".into()),
                ..event(0, 1)
            },
            "nobody",
        ),
    ] {
        let e = reports::run(&lake, &bad, reports::DEFAULT_URL_EXPIRY)
            .await
            .unwrap_err();
        assert_eq!(e.error_name(), "Fatal.InvalidInput");
        assert!(e.to_string().contains(what), "{e}");
    }
}

/// A `report_artifacts` row.
#[derive(Debug, PartialEq)]
struct ArtifactRow {
    run_id: String,
    student_id: Option<String>,
    url: String,
    bytes: i64,
    sha256: String,
    /// `generated_at`, µs since the epoch.
    generated_at: i64,
}

async fn artifact_rows(lake: &Lake) -> BTreeMap<String, ArtifactRow> {
    let mut out = BTreeMap::new();
    for b in lake
        .sql(&format!(
            "SELECT key, run_id, student_id, url, bytes, sha256, format, \
             CAST(generated_at AS BIGINT) AS generated_at FROM report_artifacts \
             WHERE week_start = '{WEEK}'"
        ))
        .await
        .unwrap()
    {
        let s = |i: usize| b.column(i).as_string::<i32>().clone();
        let (key, run, st, url, sha, fmt) = (s(0), s(1), s(2), s(3), s(5), s(6));
        let bytes = b.column(4).as_primitive::<Int64Type>();
        let generated_at = b.column(7).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            assert_eq!(fmt.value(r), "html");
            let prev = out.insert(
                key.value(r).to_string(),
                ArtifactRow {
                    run_id: run.value(r).to_string(),
                    student_id: (!st.is_null(r)).then(|| st.value(r).to_string()),
                    url: url.value(r).to_string(),
                    bytes: bytes.value(r),
                    sha256: sha.value(r).to_string(),
                    generated_at: generated_at.value(r),
                },
            );
            assert!(prev.is_none(), "{} twice", key.value(r));
        }
    }
    out
}

/// Adds a `weekly_kpi` row and a topic θ row for `student` (with `topic`) to the lake.
async fn add_student(lake: &Lake, student: &str, topic: &str) {
    lake.update_partition(WEEKLY_KPI, &[("week_start", WEEK)], |mut batches| {
        let schema = batches[0].schema();
        let f = |v: Option<f64>| -> Arc<dyn Array> { Arc::new(Float64Array::from(vec![v])) };
        let row = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["fixture"])),
                Arc::new(StringArray::from(vec![student])),
                f(Some(0.25)),
                f(Some(0.4)),
                f(Some(0.6)),
                f(Some(0.5)),
                f(Some(0.1)),
                f(Some(0.7)),
                f(Some(0.4)),
                Arc::new(StringArray::from(vec![Some("theta_delta")])),
                Arc::new(Int64Array::from(vec![12])),
                Arc::new(
                    arrow::array::TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec![Some("bayes_theta")])),
            ],
        )?;
        batches.push(row);
        Ok(batches)
    })
    .await
    .unwrap();
    lake.update_partition(STUDENT_TOPIC_THETA, &[("run_date", LAST)], |mut batches| {
        let schema = batches[0].schema();
        let row = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["fixture"])),
                Arc::new(StringArray::from(vec![student])),
                Arc::new(StringArray::from(vec![topic])),
                Arc::new(Float64Array::from(vec![-0.3])),
                Arc::new(Float64Array::from(vec![0.5])),
                Arc::new(Int64Array::from(vec![4])),
            ],
        )?;
        batches.push(row);
        Ok(batches)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn hostile_ids_are_shown_as_text_and_stay_one_path_segment() {
    let (_dir, lake) = reports_lake().await;
    add_student(&lake, HOSTILE_STUDENT, HOSTILE_TOPIC).await;
    let out = run_reports(
        &lake,
        &ReportsInput {
            student: Some(HOSTILE_STUDENT.into()),
            ..event(0, 1)
        },
    )
    .await;
    assert_eq!(out.student_reports, 1);
    let a = out.first_student_report.unwrap();
    assert_eq!(a.key.matches('/').count(), 3, "{}", a.key);
    assert!(a.key.starts_with(&format!(
        "reports/week_start={WEEK}/student_id=%3Cscript%3E"
    )));
    let html = String::from_utf8(lake.get_object(&a.key).await.unwrap().to_vec()).unwrap();
    // No script element: the ids are escaped text.
    assert_eq!(html.matches("<script").count(), 0);
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<b>topic"));
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt;&amp;&#x27;..&#x2f;s")
    );
    assert!(html.contains("&lt;script&gt;alert(&#x27;t&#x27;)&lt;&#x2f;script&gt;&lt;b&gt;topic"));
    let f = fields(&html);
    assert_eq!(f["student_id"].1, HOSTILE_STUDENT);
    // P says which growth model produced it.
    assert_eq!(f["p_model"].1, "from your weekly θ");
    // The row keeps the raw id.
    let rows = artifact_rows(&lake).await;
    assert_eq!(rows[&a.key].student_id.as_deref(), Some(HOSTILE_STUDENT));

    // In a browser (with the test's check hook added): the text reads as written.
    let shots = artifacts_dir();
    assert!(a.url.contains("student_id=%253Cscript%253E"), "{}", a.url);
    let check = browser_check(&a.url, &shots.join("student-hostile-390.png"), 390);
    check.assert_clean("hostile student report");
    assert!(
        check
            .dom
            .contains("&lt;script&gt;alert(\"x\")&lt;/script&gt;&amp;'../s")
    );
    assert!(!check.dom.contains("<b>topic"));
}

/// A report write that fails in the first batch while the second batch renders (the
/// writes run behind the rendering): the stage fails naming the failure, records no
/// artifact, leaves no staging file, and a re-run writes every report.
#[tokio::test]
async fn a_failed_report_write_fails_the_stage_and_a_rerun_converges() {
    let (dir, lake) = reports_lake().await;
    let report = |fault: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_irtlake"));
        // every student with a θ (400), not only the week's 170: two batches of 256
        cmd.args(["--lake", &lake.uri().to_uri_string(), "report"])
            .args(["--run-date", LAST, "--all-students"]);
        match fault {
            Some(f) => cmd.env(lake::local::FAULT_ENV, f),
            None => cmd.env_remove(lake::local::FAULT_ENV),
        };
        crate::support::outcome(cmd.output().expect("run irtlake report"))
    };
    // the 10th report's rename fails: 9 reports are in place, the batch's others not
    let (success, _, stderr) = report(Some("fail-commit:10"));
    assert!(!success, "the stage must fail: {stderr}");
    assert!(stderr.contains("commit failed"), "{stderr}");
    assert!(
        artifact_rows(&lake).await.is_empty(),
        "no artifact may be recorded"
    );
    let staging = dir.path().join("lake").join(lake::local::STAGING_DIR);
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging files left: {left:?}");
    let (success, stdout, stderr) = report(None);
    assert!(success, "{stderr}");
    let rows = artifact_rows(&lake).await;
    // more than one batch of 256: the first batch was written while the second rendered
    assert!(rows.len() > 257, "{} artifacts: {stdout}", rows.len());
    for key in rows.keys() {
        assert!(lake.get_object(key).await.is_ok(), "{key}");
    }
}

/// Where the screenshots go: `<target>/test-artifacts/reports/`.
fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts")
        .join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!("chromium not found: run `make system-deps` (tools/install-system-deps.sh installs it)");
}

/// Runs headless Chromium with `args` (a private profile), killing it after 90 s.
fn run_chromium(args: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (t_out.join().unwrap(), t_err.join().unwrap())
}

/// What the browser saw.
struct BrowserCheck {
    /// `<html>` attributes set by the page's check hook.
    attrs: BTreeMap<String, String>,
    /// Console messages (Chromium logs each as `CONSOLE`).
    console: Vec<String>,
    /// The DOM after load.
    dom: String,
    /// The screenshot.
    png: PathBuf,
}

impl BrowserCheck {
    fn assert_clean(&self, what: &str) {
        assert!(
            self.console.is_empty(),
            "{what}: console messages {:?}",
            self.console
        );
        let a = &self.attrs;
        assert!(
            !a.contains_key("data-js-error"),
            "{what}: script error {a:?}"
        );
        assert_eq!(
            a.get("data-overflow").map(String::as_str),
            Some("false"),
            "{what}: horizontal overflow ({:?})",
            a.get("data-overflow-el")
        );
        assert_eq!(
            a.get("data-clipped").map(String::as_str),
            Some("0"),
            "{what}: content hidden behind a horizontal scroll ({:?})",
            a.get("data-clipped-el")
        );
        let charts: usize = a["data-charts"].parse().unwrap();
        assert!(charts >= 5, "{what}: {charts} charts");
        assert_eq!(a["data-zero-charts"], "0", "{what}: charts of zero size");
        let png = std::fs::read(&self.png).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{what}: screenshot"
        );
    }
}

/// `file://` URL of a test file (plain names only; lake objects use their artifact URL).
fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The layout check run in the browser once a page has loaded (the reports themselves
/// carry no script): it writes on `<html>` whether the page is wider than the window
/// (`data-overflow`), how many SVGs it has (`data-charts`) and how many of them have
/// zero width or height (`data-zero-charts`), the first element sticking out on the
/// right when it does (`data-overflow-el`), how many elements hide part of their
/// content behind a horizontal scroll (`data-clipped`: a table wider than its scrolling
/// box) and the first of them (`data-clipped-el`), the page height (`data-height`) and
/// any script error (`data-js-error`). It changes nothing visible.
const CHECK_HOOK: &str = "addEventListener('error',function(e){document.documentElement.setAttribute('data-js-error',String(e.message))});\
addEventListener('load',function(){var d=document.documentElement,w=window.innerWidth,n=0,z=0,o='';\
document.querySelectorAll('svg').forEach(function(s){var r=s.getBoundingClientRect();n++;if(!(r.width>0&&r.height>0))z++;});\
var f=d.scrollWidth>w;if(f)document.querySelectorAll('body *').forEach(function(e){if(!o&&e.getBoundingClientRect().right>w+0.5)o=e.tagName+'.'+(e.getAttribute('class')||'');});\
d.setAttribute('data-overflow',String(f));d.setAttribute('data-overflow-el',o);\
var c=0,ce='';document.querySelectorAll('body *').forEach(function(e){if(e.scrollWidth>e.clientWidth+1&&getComputedStyle(e).overflowX!='visible'){c++;if(!ce)ce=e.tagName+'.'+(e.getAttribute('class')||'');}});\
d.setAttribute('data-clipped',String(c));d.setAttribute('data-clipped-el',ce);\
d.setAttribute('data-charts',String(n));d.setAttribute('data-zero-charts',String(z));\
d.setAttribute('data-height',String(Math.ceil(d.scrollHeight)));});";

/// A report's HTML with [`CHECK_HOOK`] added, its CSP opened for that inline script.
fn with_check_hook(html: &str) -> String {
    assert!(
        html.contains("script-src 'none'"),
        "a report's CSP forbids scripts"
    );
    html.replacen("script-src 'none'", "script-src 'unsafe-inline'", 1)
        .replacen(
            "</head>",
            &format!("<script>{CHECK_HOOK}</script>\n</head>"),
            1,
        )
}

/// The bytes at `url`: a `file://` URL (percent-decoded) or plain HTTP.
fn page_at(url: &str) -> String {
    let bytes = match url.strip_prefix("file://") {
        Some(path) => std::fs::read(percent_decode(path)).unwrap(),
        None => http_get(url).1,
    };
    String::from_utf8(bytes).unwrap()
}

/// `%XX` escapes decoded (file URLs of report objects escape their key's `%`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Loads the page at `url` at `width` px, with [`CHECK_HOOK`] added to a copy: the DOM
/// after load (the hook's attributes), the console, then a full-height screenshot to
/// `png`.
fn browser_check(url: &str, png: &Path, width: u32) -> BrowserCheck {
    let copy = tempfile::tempdir().unwrap();
    let page = copy.path().join("page.html");
    std::fs::write(&page, with_check_hook(&page_at(url))).unwrap();
    let url = file_url(&page);
    let (dom, log) = run_chromium(&[
        format!("--window-size={width},2000"),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        "--dump-dom".into(),
        url.clone(),
    ]);
    let console: Vec<String> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let start = dom.find("<html").expect("a DOM");
    let attrs = tag_attrs(&dom, start);
    let height: u32 = attrs
        .get("data-height")
        .and_then(|h| h.parse().ok())
        .unwrap_or(2000)
        .clamp(400, 16_000);
    let _ = std::fs::remove_file(png);
    run_chromium(&[
        format!("--window-size={width},{height}"),
        format!("--screenshot={}", png.display()),
        url,
    ]);
    eprintln!("screenshot: {}", png.display());
    BrowserCheck {
        attrs,
        console,
        dom,
        png: png.to_path_buf(),
    }
}

#[tokio::test]
async fn reports_render_in_headless_chromium() {
    let (dir, lake) = reports_lake().await;
    let shots = artifacts_dir();
    let out = run_reports(&lake, &event(0, 1)).await;
    let student = out.first_student_report.clone().unwrap();
    // The Korean report of that student through the command line; it replaces the
    // English one (same key), so keep a copy and write the English one again.
    let id = student.student_id.clone().unwrap();
    let cli = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .args([
            "--lake",
            &lake.uri().to_uri_string(),
            "report",
            "--week",
            WEEK,
        ])
        .args(["--run-date", LAST, "--student", &id, "--lang", "ko"])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let stdout = String::from_utf8(cli.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    let path = lake.local_path(&student.key).unwrap().unwrap();
    assert_eq!(
        last,
        format!("student report ({id}): {}", path.display()),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("student report url: file://{}", path.display())));
    assert!(
        !stdout.contains("cohort report"),
        "one student: no cohort report"
    );
    let ko_path = dir.path().join("student-ko.html");
    std::fs::copy(&path, &ko_path).unwrap();
    run_reports(&lake, &event(0, 1)).await;
    let student_path = lake.local_path(&student.key).unwrap().unwrap();
    let cohort_path = lake
        .local_path(&out.cohort_report.unwrap().key)
        .unwrap()
        .unwrap();

    let s = browser_check(
        &file_url(&student_path),
        &shots.join("student-390.png"),
        390,
    );
    s.assert_clean("student report");
    assert!(s.dom.contains("<html lang=\"en\""));
    let c = browser_check(&file_url(&cohort_path), &shots.join("cohort-390.png"), 390);
    c.assert_clean("cohort report");
    assert!(c.attrs["data-charts"].parse::<usize>().unwrap() >= 15);
    let k = browser_check(&file_url(&ko_path), &shots.join("student-ko-390.png"), 390);
    k.assert_clean("Korean student report");
    assert!(k.dom.contains("<html lang=\"ko\"") && k.dom.contains("주간 학습 리포트"));
    // Wider screens too (two-column layout), and print to PDF.
    browser_check(
        &file_url(&cohort_path),
        &shots.join("cohort-1024.png"),
        1024,
    )
    .assert_clean("cohort report at 1024 px");
    browser_check(
        &file_url(&cohort_path),
        &shots.join("cohort-1280.png"),
        1280,
    )
    .assert_clean("cohort report at 1280 px");
    browser_check(
        &file_url(&student_path),
        &shots.join("student-1280.png"),
        1280,
    )
    .assert_clean("student report at 1280 px");
    let pdf = shots.join("student.pdf");
    let _ = std::fs::remove_file(&pdf);
    run_chromium(&[
        "--no-pdf-header-footer".into(),
        format!("--print-to-pdf={}", pdf.display()),
        format!("file://{}", student_path.display()),
    ]);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(
        bytes.starts_with(b"%PDF") && bytes.len() > 10_000,
        "print to PDF"
    );
    eprintln!("printed: {}", pdf.display());

    // The checks themselves work: a console error and an overflowing element are seen.
    let control = dir.path().join("control.html");
    let html = std::fs::read_to_string(&student_path).unwrap().replace(
        "<main>",
        "<main><div class=\"x\" style=\"width:700px\">wide</div>",
    );
    std::fs::write(&control, html).unwrap();
    let bad = browser_check(&file_url(&control), &dir.path().join("control.png"), 390);
    assert_eq!(bad.attrs["data-overflow"], "true");
    assert_eq!(bad.attrs["data-overflow-el"], "DIV.x");
    let clipped = dir.path().join("clipped.html");
    let html = std::fs::read_to_string(&student_path).unwrap().replace(
        "<main>",
        "<main><div class=\"y\" style=\"overflow-x:auto\"><div style=\"width:900px\">wide</div></div>",
    );
    std::fs::write(&clipped, html).unwrap();
    let bad = browser_check(&file_url(&clipped), &dir.path().join("clipped.png"), 390);
    assert_eq!(bad.attrs["data-overflow"], "false");
    assert_eq!(bad.attrs["data-clipped"], "1");
    assert_eq!(bad.attrs["data-clipped-el"], "DIV.y");
    let noisy = dir.path().join("noisy.html");
    std::fs::write(
        &noisy,
        "<!doctype html><script>console.error('control')</script>",
    )
    .unwrap();
    let (_, log) = run_chromium(&[
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        "--dump-dom".into(),
        format!("file://{}", noisy.display()),
    ]);
    assert!(
        log.lines()
            .any(|l| l.contains(":CONSOLE") && l.contains("control")),
        "console messages are not captured: {log}"
    );
}

/// `GET url` over plain HTTP/1.0 (the test server is on loopback): status and body.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = http_get_with_head(url);
    (status, body)
}

/// `GET url`: status, the response head (lower-cased) and body.
fn http_get_with_head(url: &str) -> (u16, String, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        resp[split + 4..].to_vec(),
    )
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

#[tokio::test]
async fn presigned_urls_on_s3_return_the_report_and_expire() {
    let (_dir, local) = reports_lake().await;
    let server = S3Server::start("irtlake-reports");
    let lake = server.lake("s3://irtlake-reports/lake");
    // The same lake on S3.
    for o in local.list("").await.unwrap() {
        lake.put_object(&o.key, local.get_object(&o.key).await.unwrap())
            .await
            .unwrap();
    }
    let out = reports::run(&lake, &event(0, 1), Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(out.student_reports > 100);
    assert_eq!(out.cohort_reports, 1);
    // The summary (what Step Functions keeps in its execution history) holds counts,
    // no URLs, signatures or keys: those are in report_artifacts.
    let summary = serde_json::to_string(&out).unwrap();
    for leak in [
        "http",
        "X-Amz",
        "url",
        "report.html",
        "cohort.html",
        "s3://",
    ] {
        assert!(!summary.contains(leak), "{leak} in the summary: {summary}");
    }
    let rows = artifact_rows(&lake).await;
    assert_eq!(rows.len() as u64, out.student_reports + 1);
    let cohort = out.cohort_report.unwrap();
    let first = out.first_student_report.unwrap();
    for key in [&cohort.key, &first.key] {
        let row = &rows[key];
        // Stored as HTML: a signed HEAD through the S3 API, and the presigned GET.
        let head = lake
            .store()
            .get_opts(
                &lake.path(key).unwrap(),
                object_store::GetOptions {
                    head: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let attr = |a: object_store::Attribute| {
            head.attributes
                .get(&a)
                .map(|v| v.as_ref().to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            attr(object_store::Attribute::ContentType),
            "text/html; charset=utf-8",
            "{key}"
        );
        assert_eq!(
            attr(object_store::Attribute::CacheControl),
            "private, max-age=300",
            "{key}"
        );
        let (_, response_head, _) = http_get_with_head(&row.url);
        assert!(
            response_head.contains("content-type: text/html; charset=utf-8"),
            "{response_head}"
        );
        assert!(
            row.url.starts_with(&format!(
                "{}/irtlake-reports/lake/reports/",
                server.endpoint
            )),
            "{}",
            row.url
        );
        assert_eq!(query_param(&row.url, "X-Amz-Expires"), Some("3600"));
        assert!(query_param(&row.url, "X-Amz-Signature").is_some());
        let (status, body) = http_get(&row.url);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, lake.get_object(key).await.unwrap().to_vec());
        // sha256 of the downloaded bytes by an independent tool.
        let mut sum = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        sum.stdin.take().unwrap().write_all(&body).unwrap();
        let digest = String::from_utf8(sum.wait_with_output().unwrap().stdout).unwrap();
        assert_eq!(digest.split_whitespace().next(), Some(row.sha256.as_str()));
        assert_eq!(row.bytes, body.len() as i64);
    }
    // A browser opens the presigned URL as a page, not a download.
    let url = &rows[&first.key].url;
    let (dom, _) = run_chromium(&["--dump-dom".into(), url.clone()]);
    assert!(
        dom.contains("data-field=\"student_id\""),
        "Chromium did not show the report at its presigned URL: {dom}"
    );
    browser_check(url, &artifacts_dir().join("student-s3-presigned.png"), 1024)
        .assert_clean("student report from its presigned S3 URL");

    // The HTML stored on S3 is what a local run writes.
    assert_eq!(
        lake.get_object(&cohort.key).await.unwrap().len() as u64,
        cohort.bytes
    );

    // Four shards at once on S3 share the week's report_artifacts partition: its
    // updates are conditional puts, so no shard's rows are lost; the reports are the
    // same bytes as one shard's.
    let shared = &lake;
    let quarters = futures::future::join_all((0..4).map(|k| async move {
        reports::run(shared, &event(k, 4), Duration::from_secs(3600)).await
    }))
    .await;
    let written: u64 = quarters
        .into_iter()
        .map(|q| q.unwrap().student_reports)
        .sum();
    assert_eq!(written, out.student_reports);
    let after = artifact_rows(&lake).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        rows.keys().collect::<Vec<_>>()
    );
    for (key, r) in &after {
        assert_eq!(
            (&r.sha256, r.bytes),
            (&rows[key].sha256, rows[key].bytes),
            "{key}"
        );
    }

    // A URL that lives 1 s.
    let student = first.student_id.clone().unwrap();
    let short = reports::run(
        &lake,
        &ReportsInput {
            student: Some(student),
            ..event(0, 1)
        },
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let url = short.first_student_report.unwrap().url;
    assert_eq!(query_param(&url, "X-Amz-Expires"), Some("1"));
    std::thread::sleep(Duration::from_millis(2100));
    let (status, _) = http_get(&url);
    if status != 403 {
        // moto (the S3-protocol test server) does not check presigned URLs: it also
        // serves expired (and tampered) ones. So check the signed expiry instead: the
        // URL was signed at X-Amz-Date for X-Amz-Expires = 1 s, and that moment is past.
        let signed = query_param(&url, "X-Amz-Date").unwrap();
        let signed = NaiveDateTime::parse_from_str(signed, "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc();
        let expires = signed + chrono::Duration::seconds(1);
        assert!(expires < Utc::now(), "{url}");
        assert!(Utc::now() - signed < chrono::Duration::minutes(5), "{url}");
        eprintln!("moto served an expired URL (HTTP {status}); checked its signed expiry instead");
    }
    // Bad expiries are refused before anything is written.
    for bad in [Duration::ZERO, Duration::from_secs(8 * 24 * 3600)] {
        let e = reports::run(&lake, &event(0, 1), bad).await.unwrap_err();
        assert_eq!(e.error_name(), "Fatal.InvalidInput", "{e}");
    }
}
