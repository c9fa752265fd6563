//! Stage export_attempts against a real PostgreSQL started by the harness
//! (`support::PgServer`): a platform schema with a few thousand attempts, NULLs and
//! malformed meta; the export is exact (rows per day, checksums and every row compared
//! with what PostgreSQL computes), re-running changes no byte, the window is honoured,
//! lake anchors survive, and bad inputs give clear errors and leave the lake untouched.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use chrono::{TimeDelta, TimeZone, Utc};
use export_attempts::{ExportInput, ExportOutput};
use lake::Lake;

use crate::support::day;
use crate::support::{PgServer, temp_lake};

pub(crate) const DB: &str = "platform";

/// The platform's schema. Its types differ from the lake's on purpose (integer and uuid
/// ids, smallint `correct`), and `attempt` is a view, as on the platform.
const SCHEMA: &str = "
CREATE TABLE question (id integer PRIMARY KEY, topic_id text, exam_id integer, meta jsonb);
CREATE TABLE attempt_log (
    id bigint PRIMARY KEY, student_id uuid, question_id integer, correct smallint,
    completed_at timestamptz NOT NULL, time_spent_ms integer, hints_used integer,
    session_id text);
CREATE VIEW attempt AS
    SELECT id, student_id, question_id, correct, completed_at, time_spent_ms, hints_used,
           session_id
    FROM attempt_log;
";

/// Attempts generated (plus a few hand-made boundary rows).
const N_ATTEMPTS: usize = 3000;
/// Questions 1..=60; attempts also point at 61, which does not exist.
const N_QUESTIONS: u32 = 60;

/// splitmix64: a deterministic generator for the fixture.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `meta` of question `i`: anchors every 10th, the rest plain, and a few malformed.
fn question_meta(i: u32) -> Option<String> {
    Some(match i {
        7 => return None,
        11 => r#"{"tags": ["practice"], "irt": "1.2,0.3"}"#.into(), // irt not an object
        12 => r#"{"tags": ["anchor"], "irt": {"a": 1.1, "b": "hard"}}"#.into(), // non-numeric b
        13 => r#"{"tags": "anchor"}"#.into(),                       // tags not an array
        14 => "[1, 2]".into(),                                      // not an object
        15 => r#"{"tags": ["x", 3]}"#.into(),                       // a tag that is not a string
        16 => r#"{"irt": {"a": 0.8, "b": -1}}"#.into(),             // known params, not an anchor
        i if i % 10 == 0 => format!(
            r#"{{"tags": ["anchor", "core"], "irt": {{"a": {}, "b": {}, "c": 0.1}}}}"#,
            1.0 + f64::from(i) / 100.0,
            (f64::from(i) - 30.0) / 10.0
        ),
        i if i % 3 == 0 => "{}".into(),
        _ => r#"{"tags": ["practice"]}"#.into(),
    })
}

/// Malformed metas above: 11, 12, 13, 14, 15.
const META_WARNINGS: u64 = 5;

fn copy_value(v: Option<String>) -> String {
    v.unwrap_or_else(|| "\\N".into())
}

/// The questions as SQL (COPY).
fn questions_sql() -> String {
    let mut s = String::from("COPY question (id, topic_id, exam_id, meta) FROM STDIN;\n");
    for i in 1..=N_QUESTIONS {
        let topic = (i != 5).then(|| format!("t{}", i % 6));
        let exam = (i != 6).then(|| (100 + i % 3).to_string());
        let meta = question_meta(i).map(|m| m.replace('\\', "\\\\"));
        s.push_str(&format!(
            "{i}\t{}\t{}\t{}\n",
            copy_value(topic),
            copy_value(exam),
            copy_value(meta)
        ));
    }
    s.push_str("\\.\n");
    s
}

/// `N_ATTEMPTS` attempts from 2026-03-01 to 2026-03-05 (UTC) with NULLs, invalid values
/// and unknown questions, plus boundary rows; as SQL (COPY).
fn attempts_sql(n: usize) -> String {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let mut rng = Rng(42);
    let mut s = String::from(
        "COPY attempt_log (id, student_id, question_id, correct, completed_at, time_spent_ms, \
         hints_used, session_id) FROM STDIN;\n",
    );
    let student = |i: u64| format!("00000000-0000-4000-8000-{i:012x}");
    // Boundary rows: (id, time as the platform wrote it).
    for (id, t) in [
        (1, "2026-03-02 00:00:00+00"),        // first instant of 03-02
        (2, "2026-03-01 23:59:59.999999+00"), // last instant of 03-01
        (3, "2026-03-02 01:30:00+02"),        // 03-01 23:30 UTC
        (4, "2026-02-28 23:59:59.999999+00"), // before the fixture's days
        (5, "2026-03-06 00:00:00+00"),        // after them
        (6, "2026-03-05 23:59:59.999999+00"), // last instant of 03-05
    ] {
        s.push_str(&format!("{id}\t{}\t1\t1\t{t}\t1000\t0\tedge\n", student(1)));
    }
    for k in 0..n {
        let st = rng.below(150);
        let student_id = (k % 997 != 996).then(|| student(st));
        let question = if k % 500 == 499 {
            61
        } else {
            1 + rng.below(u64::from(N_QUESTIONS))
        };
        let correct = match k {
            k if k % 400 == 399 => Some("2".to_string()),
            k if k % 450 == 449 => None,
            _ => Some(rng.below(2).to_string()),
        };
        let offset = rng.below(5 * 86_400 * 1_000_000) as i64;
        let t = (start + TimeDelta::microseconds(offset)).format("%Y-%m-%d %H:%M:%S%.6f+00");
        let time_spent = match k {
            k if k % 37 == 0 => None,
            k if k % 211 == 5 => Some("-5".to_string()),
            _ => Some(rng.below(60_000).to_string()),
        };
        let hints = (k % 41 != 0).then(|| rng.below(4).to_string());
        let session = (k % 29 != 0).then(|| format!("sess-{st}-{}", k / 50));
        s.push_str(&format!(
            "{}\t{}\t{question}\t{}\t{t}\t{}\t{}\t{}\n",
            100_000 + k,
            copy_value(student_id),
            copy_value(correct),
            copy_value(time_spent),
            copy_value(hints),
            copy_value(session),
        ));
    }
    s.push_str("\\.\n");
    s
}

/// A server with the platform database loaded.
pub(crate) fn platform() -> PgServer {
    load_platform(PgServer::start())
}

/// Loads the platform database into `pg`.
fn load_platform(pg: PgServer) -> PgServer {
    pg.create_db(DB);
    let t = Instant::now();
    pg.psql(
        DB,
        &format!("{SCHEMA}{}{}", questions_sql(), attempts_sql(N_ATTEMPTS)),
    );
    eprintln!(
        "postgres: initdb {:.2} s, start {:.2} s, fixture load {:.2} s",
        pg.initdb_time.as_secs_f64(),
        pg.start_time.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    pg
}

fn window(from: &str, to: &str) -> ExportInput {
    ExportInput {
        run_date: Some(day(to)),
        from: Some(day(from)),
        to: Some(day(to)),
        ..Default::default()
    }
}

async fn export(lake: &Lake, url: &str, input: &ExportInput) -> ExportOutput {
    export_attempts::run(lake, url, input)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", e.error_name()))
}

async fn export_err(lake: &Lake, url: &str, input: &ExportInput) -> (String, String) {
    match export_attempts::run(lake, url, input).await {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err(e) => (e.error_name().to_string(), e.to_string()),
    }
}

/// Every object of the lake with its bytes.
async fn objects(lake: &Lake) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for o in lake.list("").await.unwrap() {
        let bytes = lake.get_object(&o.key).await.unwrap();
        out.insert(o.key, bytes.to_vec());
    }
    out
}

/// Rows of a lake query as `a|b|c` lines (NULL as `NULL`).
async fn lake_lines(lake: &Lake, sql: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for b in lake.sql(sql).await.unwrap() {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &DataType::Utf8).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            let vals: Vec<String> = cols
                .iter()
                .map(|c| {
                    let c = c.as_string::<i32>();
                    if c.is_null(r) {
                        "NULL".to_string()
                    } else {
                        c.value(r).to_string()
                    }
                })
                .collect();
            lines.push(vals.join("|"));
        }
    }
    lines
}

/// Rows of a PostgreSQL query as `a|b|c` lines (NULL as `NULL`).
fn pg_lines(pg: &PgServer, sql: &str) -> Vec<String> {
    pg.psql(DB, &format!("\\pset null NULL\n{sql};"))
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// What the export must write for the window, computed by PostgreSQL from the documented
/// mapping: known question, non-NULL student, correct 0/1, negative counts as NULL.
fn expected_cte(from: &str, to: &str) -> String {
    let end = day(to) + TimeDelta::days(1);
    format!(
        "WITH e AS (
           SELECT a.id::text AS attempt_id, a.student_id::text AS student_id,
                  a.question_id::text AS question_id, q.exam_id::text AS subject_id,
                  q.topic_id AS topic_id, a.session_id, a.correct::int AS correct,
                  (extract(epoch FROM a.completed_at) * 1000000)::bigint AS completed_us,
                  CASE WHEN a.time_spent_ms >= 0 THEN a.time_spent_ms END AS time_spent_ms,
                  CASE WHEN a.hints_used >= 0 THEN a.hints_used END AS hints_used,
                  to_char(a.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS dt
           FROM attempt a JOIN question q ON q.id = a.question_id
           WHERE a.completed_at >= '{from} 00:00:00+00' AND a.completed_at < '{end} 00:00:00+00'
             AND a.student_id IS NOT NULL AND a.correct IN (0, 1))"
    )
}

/// Per-day checksum: counts, sums of every numeric field, of the id values and of the
/// text lengths, NULL counts.
const PG_CHECKSUM: &str = "SELECT dt, count(*), sum(correct), coalesce(sum(time_spent_ms), 0),
    count(time_spent_ms), coalesce(sum(hints_used), 0), count(hints_used), count(session_id),
    count(subject_id), count(topic_id), sum(completed_us), sum(attempt_id::bigint),
    sum(length(student_id || question_id || coalesce(session_id, '') || coalesce(subject_id, '')
        || coalesce(topic_id, '')))
    FROM e GROUP BY dt ORDER BY dt";
const LAKE_CHECKSUM: &str = "SELECT dt, count(*), sum(CASE WHEN correct THEN 1 ELSE 0 END),
    coalesce(sum(time_spent_ms), 0), count(time_spent_ms), coalesce(sum(hints_used), 0),
    count(hints_used), count(session_id), count(subject_id), count(topic_id),
    sum(CAST(completed_at AS BIGINT)), sum(CAST(attempt_id AS BIGINT)),
    sum(length(concat(student_id, question_id, coalesce(session_id, ''), coalesce(subject_id, ''),
        coalesce(topic_id, ''))))
    FROM attempts GROUP BY dt ORDER BY dt";
const PG_ROWS: &str =
    "SELECT attempt_id, student_id, question_id, subject_id, topic_id, session_id,
    correct, completed_us, time_spent_ms, hints_used, dt FROM e ORDER BY attempt_id";
const LAKE_ROWS: &str = "SELECT attempt_id, student_id, question_id, subject_id, topic_id,
    session_id, CASE WHEN correct THEN 1 ELSE 0 END, CAST(completed_at AS BIGINT),
    time_spent_ms, hints_used, dt FROM attempts ORDER BY attempt_id";

/// Checks that the lake's attempts are exactly what PostgreSQL says for the window.
async fn assert_exact(pg: &PgServer, lake: &Lake, from: &str, to: &str) {
    let cte = expected_cte(from, to);
    let want = pg_lines(pg, &format!("{cte} {PG_CHECKSUM}"));
    let got = lake_lines(lake, LAKE_CHECKSUM).await;
    assert_eq!(got, want, "per-day checksums (lake vs PostgreSQL)");
    let mut want = pg_lines(pg, &format!("{cte} {PG_ROWS}"));
    let mut got = lake_lines(lake, LAKE_ROWS).await;
    want.sort();
    got.sort();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "first differing row (lake vs PostgreSQL)");
    }
}

fn pg_count(pg: &PgServer, sql: &str) -> u64 {
    pg_lines(pg, sql)[0].trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_exact_idempotent_and_honours_the_window() {
    let pg = platform();
    let url = pg.url(DB);
    let (_dir, lake) = temp_lake();

    let t = Instant::now();
    let mut input = window("2026-03-02", "2026-03-04");
    input.page_size = Some(500);
    let out = export(&lake, &url, &input).await;
    let elapsed = t.elapsed();
    eprintln!(
        "export: {} attempts read, {} written over {} days, {} questions, {} pages in {:.3} s",
        out.attempts_read,
        out.attempts,
        out.days.len(),
        out.questions,
        out.pages,
        elapsed.as_secs_f64()
    );

    // The window: exactly its three days, nothing before or after.
    let days: Vec<String> = out.days.iter().map(|d| d.dt.to_string()).collect();
    assert_eq!(days, ["2026-03-02", "2026-03-03", "2026-03-04"]);
    assert!(out.empty_days.is_empty());
    let keys: Vec<String> = objects(&lake).await.into_keys().collect();
    assert_eq!(
        keys,
        [
            "attempts/dt=2026-03-02/part-0.parquet",
            "attempts/dt=2026-03-03/part-0.parquet",
            "attempts/dt=2026-03-04/part-0.parquet",
            "questions/part-0.parquet",
        ]
    );
    assert_exact(&pg, &lake, "2026-03-02", "2026-03-04").await;

    // The counts of the summary agree with PostgreSQL.
    let in_window = pg_count(
        &pg,
        "SELECT count(*) FROM attempt WHERE completed_at >= '2026-03-02 00:00:00+00' \
         AND completed_at < '2026-03-05 00:00:00+00'",
    );
    let cte = expected_cte("2026-03-02", "2026-03-04");
    let expected = pg_count(&pg, &format!("{cte} SELECT count(*) FROM e"));
    let negative = pg_count(
        &pg,
        &format!(
            "{cte} SELECT count(*) FROM e JOIN attempt a ON a.id::text = e.attempt_id WHERE a.time_spent_ms < 0 OR a.hints_used < 0"
        ),
    );
    assert_eq!(out.attempts_read, in_window);
    assert_eq!(out.attempts, expected);
    assert_eq!(out.rejected.count, in_window - expected);
    assert_eq!(out.duplicates, 0);
    assert_eq!(out.values_nulled.count, negative);
    assert!(negative > 0);
    for reason in [
        "missing_student_id",
        "missing_correct",
        "correct_not_0_1",
        "unknown_question",
    ] {
        assert!(
            out.rejected_by_reason.get(reason).is_some_and(|n| *n > 0),
            "{reason}: {:?}",
            out.rejected_by_reason
        );
    }
    assert!(
        out.rejected
            .examples
            .iter()
            .any(|e| e.contains("correct is '2'")),
        "{:?}",
        out.rejected.examples
    );
    assert_eq!(
        out.rejected_by_reason.values().sum::<u64>(),
        out.rejected.count
    );

    // Questions: all 60, malformed meta counted, anchors and parameters as documented.
    assert_eq!(out.questions, u64::from(N_QUESTIONS));
    assert_eq!(
        out.meta_warnings.count, META_WARNINGS,
        "{:?}",
        out.meta_warnings
    );
    assert!(
        out.meta_warnings
            .examples
            .iter()
            .any(|e| e.starts_with("question 12: meta.irt.b is a string")),
        "{:?}",
        out.meta_warnings
    );
    assert_eq!(out.anchors, 7, "6 anchors with parameters and question 12");
    assert!(out.questions_written);
    let q = lake_lines(
        &lake,
        "SELECT question_id, subject_id, topic_id, array_to_string(tags, ','), irt_a, irt_b, irt_c, is_anchor \
         FROM questions WHERE question_id IN ('5', '6', '7', '10', '12', '13', '14', '16') ORDER BY question_id",
    )
    .await;
    assert_eq!(
        q,
        [
            "10|101|t4|anchor,core|1.1|-2.0|0.1|true",
            "12|100|t0|anchor|NULL|NULL|NULL|true",
            "13|101|t1||NULL|NULL|NULL|false",
            "14|102|t2||NULL|NULL|NULL|false",
            "16|101|t4||0.8|-1.0|NULL|false",
            "5|102|NULL|practice|NULL|NULL|NULL|false",
            "6|NULL|t0||NULL|NULL|NULL|false",
            "7|101|t1||NULL|NULL|NULL|false",
        ]
    );

    // Re-running changes nothing: same bytes, same summary; whatever the page size.
    let before = objects(&lake).await;
    let again = export(&lake, &url, &input).await;
    assert_eq!(objects(&lake).await, before, "re-run changed the lake");
    assert!(!again.questions_written);
    assert_eq!(
        ExportOutput {
            questions_written: true,
            ..again.clone()
        },
        out
    );
    input.page_size = Some(7);
    let small = export(&lake, &url, &input).await;
    assert_eq!(objects(&lake).await, before, "page size changed the bytes");
    assert_eq!(small.attempts, out.attempts);
    assert!(small.pages > out.pages);

    // Another window adds its day and leaves the others alone.
    let out5 = export(&lake, &url, &window("2026-03-05", "2026-03-05")).await;
    assert_eq!(out5.days.len(), 1);
    let after = objects(&lake).await;
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} changed");
    }
    assert!(after.contains_key("attempts/dt=2026-03-05/part-0.parquet"));
    assert_exact(&pg, &lake, "2026-03-02", "2026-03-05").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_window_is_yesterday_and_today_and_empty_days_are_not_written() {
    let pg = platform();
    let url = pg.url(DB);
    let (_dir, lake) = temp_lake();
    let input = ExportInput {
        run_date: Some(day("2026-03-05")),
        ..Default::default()
    };
    let out = export(&lake, &url, &input).await;
    assert_eq!((out.from, out.to), (day("2026-03-04"), day("2026-03-05")));
    let days: Vec<String> = out.days.iter().map(|d| d.dt.to_string()).collect();
    assert_eq!(days, ["2026-03-04", "2026-03-05"]);
    assert_exact(&pg, &lake, "2026-03-04", "2026-03-05").await;

    // The day after the fixture holds only the boundary row at 00:00; the next is empty.
    let out = export(
        &lake,
        &url,
        &ExportInput {
            run_date: Some(day("2026-03-07")),
            ..Default::default()
        },
    )
    .await;
    let days: Vec<String> = out.days.iter().map(|d| d.dt.to_string()).collect();
    assert_eq!(days, ["2026-03-06"]);
    assert_eq!(out.attempts, 1);
    assert_eq!(out.empty_days, [day("2026-03-07")]);
    assert!(out.empty_days_kept.is_empty());
    assert!(
        !objects(&lake)
            .await
            .keys()
            .any(|k| k.contains("dt=2026-03-07"))
    );

    // A day the source no longer has is not deleted from the lake, and the summary says so.
    let before = objects(&lake).await;
    pg.psql(
        DB,
        "DELETE FROM attempt_log WHERE completed_at >= '2026-03-06' AND completed_at < '2026-03-07';",
    );
    let out = export(&lake, &url, &window("2026-03-06", "2026-03-06")).await;
    assert_eq!(out.attempts, 0);
    assert_eq!(out.empty_days, [day("2026-03-06")]);
    assert_eq!(out.empty_days_kept, [day("2026-03-06")]);
    assert_eq!(objects(&lake).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_tagged_in_the_lake_survive_the_export() {
    let pg = platform();
    let url = pg.url(DB);
    let (_dir, lake) = temp_lake();
    let input = window("2026-03-05", "2026-03-05");
    export(&lake, &url, &input).await;
    // As `irtlake anchors tag` does: 3 is plain in the source, 12 an anchor without
    // valid parameters there, 10 an anchor with parameters there.
    let tagged = lake::ingest::set_anchors(
        &lake,
        &[
            ("3".into(), 1.3, 0.2, 0.0),
            ("12".into(), 0.9, 0.4, 0.15),
            ("10".into(), 2.0, 2.0, 0.0),
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(tagged.tagged, 3);
    let out = export(&lake, &url, &input).await;
    assert_eq!(out.anchors_kept_from_lake, 2, "3 and 12");
    assert_eq!(out.anchors, 8);
    let q = lake_lines(
        &lake,
        "SELECT question_id, array_to_string(tags, ','), irt_a, irt_b, irt_c, is_anchor \
         FROM questions WHERE question_id IN ('3', '10', '12') ORDER BY question_id",
    )
    .await;
    assert_eq!(
        q,
        [
            "10|anchor,core|1.1|-2.0|0.1|true", // the source's parameters win
            "12|anchor|0.9|0.4|0.15|true",
            "3|anchor|1.3|0.2|0.0|true",
        ]
    );
    // Stable: a further run keeps them and writes nothing new.
    let before = objects(&lake).await;
    let again = export(&lake, &url, &input).await;
    assert!(!again.questions_written);
    assert_eq!(objects(&lake).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_give_clear_errors_and_leave_the_lake_untouched() {
    let pg = platform();
    let (_dir, lake) = temp_lake();
    let input = window("2026-03-04", "2026-03-05");
    export(&lake, &pg.url(DB), &input).await;
    let before = objects(&lake).await;

    // Nobody listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let (name, msg) = export_err(
        &lake,
        &format!("postgres://postgres:secret@127.0.0.1:{port}/{DB}"),
        &input,
    )
    .await;
    assert_eq!(name, "Retryable.Timeout", "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}/{DB}")), "{msg}");
    assert!(!msg.contains("secret"), "the password leaked: {msg}");
    assert!(t.elapsed() < Duration::from_secs(15));

    // A view without hints_used.
    pg.create_db("broken");
    let without_hints = SCHEMA.replace("hints_used,\n           session_id", "session_id");
    assert_ne!(without_hints, SCHEMA);
    pg.psql("broken", &format!("{without_hints}{}", questions_sql()));
    let (name, msg) = export_err(&lake, &pg.url("broken"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(
        msg.contains("attempt") && msg.contains("'hints_used'"),
        "{msg}"
    );

    // completed_at as text.
    pg.psql(
        "broken",
        "DROP VIEW attempt; CREATE VIEW attempt AS SELECT id, student_id, question_id, correct, \
         completed_at::text AS completed_at, time_spent_ms, hints_used, session_id FROM attempt_log;",
    );
    let (name, msg) = export_err(&lake, &pg.url("broken"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(
        msg.contains("attempt.completed_at") && msg.contains("text"),
        "{msg}"
    );

    // No attempt relation at all; no such database.
    pg.create_db("empty");
    let (name, msg) = export_err(&lake, &pg.url("empty"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(msg.contains("no table or view 'attempt'"), "{msg}");
    let (name, msg) = export_err(&lake, &pg.url("nosuchdb"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(msg.contains("nosuchdb"), "{msg}");

    // An empty question table never replaces the lake's questions.
    pg.create_db("noquestions");
    pg.psql("noquestions", SCHEMA);
    let (name, msg) = export_err(&lake, &pg.url("noquestions"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(msg.contains("refusing to replace"), "{msg}");

    // A changed contract: correct as Y/N rejects a whole day, which fails and is not written.
    pg.create_db("yesno");
    pg.psql(
        "yesno",
        &format!(
            "{}{}{}DROP VIEW attempt; CREATE VIEW attempt AS SELECT id, student_id, question_id, \
             CASE correct WHEN 1 THEN 'Y' ELSE 'N' END AS correct, completed_at, time_spent_ms, \
             hints_used, session_id FROM attempt_log;",
            SCHEMA,
            questions_sql(),
            attempts_sql(N_ATTEMPTS)
        ),
    );
    let (name, msg) = export_err(&lake, &pg.url("yesno"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(
        msg.contains("of 2026-03-04 were rejected") && msg.contains("correct_not_0_1"),
        "{msg}"
    );

    // Bad URL, TLS required of a server without it, bad sslmode, and event fields.
    let base = format!("postgres://postgres:secret@127.0.0.1:{}/{DB}", pg.port);
    for (url, needle) in [
        ("postgres://[::1".to_string(), "database URL"),
        (
            format!("{base}?sslmode=require"),
            "the server does not accept TLS, which sslmode=require",
        ),
        (
            format!("{base}?sslmode=verify-full"),
            "the server does not accept TLS",
        ),
        (format!("{base}?sslmode=on"), "sslmode=on is not one of"),
        (
            format!("{base}?sslcert=client.pem"),
            "unknown option `sslcert`",
        ),
    ] {
        let (name, msg) = export_err(&lake, &url, &input).await;
        assert_eq!(name, "Fatal.InvalidInput", "{msg}");
        assert!(msg.contains(needle), "{msg}");
        assert!(!msg.contains("secret"), "the password leaked: {msg}");
    }
    // prefer (libpq's default, also when absent) falls back to plain on this server.
    export(&lake, &format!("{}?sslmode=prefer", pg.url(DB)), &input).await;
    let (name, msg) = export_err(&lake, &pg.url(DB), &window("2026-03-05", "2026-03-04")).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(
        msg.contains("from (2026-03-05) is after to (2026-03-04)"),
        "{msg}"
    );

    assert_eq!(
        objects(&lake).await,
        before,
        "a failed export touched the lake"
    );
}

/// The `sslmode`s against a server that accepts TCP connections with TLS only
/// (`hostssl`; `hostnossl … reject`), with a certificate for `localhost` and
/// `127.0.0.1` signed by a test CA: every export that gets in was encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_against_a_server_that_only_accepts_tls() {
    let pg = load_platform(PgServer::start_with_tls());
    let ca = pg.ca_file.clone().unwrap();
    let ca = ca.display();
    let (_dir, lake) = temp_lake();
    let (from, to) = ("2026-03-03", "2026-03-04");
    let input = window(from, to);
    let base = format!("postgres://postgres:secret@127.0.0.1:{}/{DB}", pg.port);

    // Plain is refused by the server: what follows succeeds only over TLS.
    let (name, msg) = export_err(&lake, &format!("{base}?sslmode=disable"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(msg.contains("no encryption"), "{msg}");
    assert!(objects(&lake).await.is_empty(), "a refused export wrote");

    // require: encrypted, the certificate not verified (no root given).
    let out = export(&lake, &format!("{base}?sslmode=require"), &input).await;
    assert_eq!(out.days.len(), 2);
    assert_exact(&pg, &lake, from, to).await;
    let written = objects(&lake).await;

    // prefer, explicit or by default: TLS when the server offers it.
    export(&lake, &format!("{base}?sslmode=prefer"), &input).await;
    export(&lake, &base, &input).await;

    // verify-full against the test CA, by IP (the certificate names 127.0.0.1), by host
    // name, and in key=value form; verify-ca too; require with the CA verifies the chain.
    let kv = format!(
        "host=localhost port={} user=postgres dbname={DB} sslmode=verify-full sslrootcert='{ca}'",
        pg.port
    );
    let by_name = format!(
        "postgres://postgres@localhost:{}/{DB}?sslmode=verify-full&sslrootcert={ca}",
        pg.port
    );
    for url in [
        format!("{base}?sslmode=verify-full&sslrootcert={ca}"),
        by_name,
        kv,
        format!("{base}?sslmode=verify-ca&sslrootcert={ca}"),
        format!("{base}?sslmode=require&sslrootcert={ca}"),
    ] {
        export(&lake, &url, &input).await;
    }
    assert_eq!(
        objects(&lake).await,
        written,
        "re-runs over TLS changed bytes"
    );

    // A host name the certificate does not hold: verify-full refuses it, verify-ca (the
    // chain only) accepts it.
    let other_name = |mode: &str| {
        format!(
            "host=db.example hostaddr=127.0.0.1 port={} user=postgres password=secret \
             dbname={DB} sslmode={mode} sslrootcert={ca}",
            pg.port
        )
    };
    let (name, msg) = export_err(&lake, &other_name("verify-full"), &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(
        msg.contains("does not name the host") && msg.contains("verify-ca"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "the password leaked: {msg}");
    export(&lake, &other_name("verify-ca"), &input).await;

    // verify-full / verify-ca without the test CA: the system roots do not trust it (or,
    // on a machine without a CA bundle, there are none).
    for mode in ["verify-full", "verify-ca"] {
        let (name, msg) = export_err(&lake, &format!("{base}?sslmode={mode}"), &input).await;
        assert_eq!(name, "Fatal.InvalidInput", "{msg}");
        assert!(
            (msg.contains("not signed by a trusted root")
                || msg.contains("no system root certificates"))
                && msg.contains("sslrootcert="),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "the password leaked: {msg}");
    }
    // A root file that is not there, or not a certificate.
    let missing = format!("{base}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
    let (name, msg) = export_err(&lake, &missing, &input).await;
    assert_eq!(name, "Fatal.InvalidInput", "{msg}");
    assert!(msg.contains("sslrootcert=/nonexistent/ca.pem"), "{msg}");
    assert_eq!(
        objects(&lake).await,
        written,
        "a failed export touched the lake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retryable_and_leaves_only_complete_days() {
    let pg = platform();
    let (_dir, lake) = temp_lake();
    // A slow view that streams: rows come from an index in the export's order (sorting is
    // disabled for the database), and each one costs half a millisecond, so days are
    // written while later days are still being read.
    pg.psql(
        DB,
        "CREATE FUNCTION slow(x text) RETURNS text LANGUAGE plpgsql STABLE AS
           $$ BEGIN PERFORM pg_sleep(0.0005); RETURN x; END $$;
         CREATE INDEX attempt_log_order ON attempt_log (completed_at, (id::text));
         CREATE OR REPLACE VIEW attempt AS
           SELECT id, student_id, question_id, correct, completed_at, time_spent_ms,
                  hints_used, slow(session_id) AS session_id
           FROM attempt_log;
         ALTER DATABASE platform SET enable_sort = off;",
    );
    let url = pg.url(DB);
    let task_lake = lake.clone();
    let task_url = url.clone();
    let mut input = window("2026-03-01", "2026-03-05");
    input.page_size = Some(50);
    let task_input = input.clone();
    let task =
        tokio::spawn(async move { export_attempts::run(&task_lake, &task_url, &task_input).await });
    // Once the first day is in the lake, the server drops the export's connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lake.list("attempts").await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no day was written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed = pg.psql(
        DB,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'irtlake-export_attempts';",
    );
    assert_eq!(killed.trim(), "1");
    let err = match task.await.unwrap() {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err(e) => e,
    };
    assert_eq!(err.error_name(), "Retryable.Timeout", "{err}");
    assert!(err.to_string().contains("reading page"), "{err}");

    // What was written is complete: each partition has all of its day's rows.
    let cte =
        expected_cte("2026-03-01", "2026-03-05").replace("FROM attempt a", "FROM attempt_log a");
    let want: BTreeMap<String, String> = pg_lines(
        &pg,
        &format!("{cte} SELECT dt, count(*) FROM e GROUP BY dt"),
    )
    .into_iter()
    .filter_map(|l| {
        l.split_once('|')
            .map(|(a, b)| (a.to_string(), b.to_string()))
    })
    .collect();
    let written = lake_lines(&lake, "SELECT dt, count(*) FROM attempts GROUP BY dt").await;
    assert!(!written.is_empty() && written.len() < 5, "{written:?}");
    for line in &written {
        let (dt, n) = line.split_once('|').unwrap();
        assert_eq!(
            want.get(dt).map(String::as_str),
            Some(n),
            "partial day {dt}"
        );
    }

    // The retry (as Step Functions would do it) completes the window.
    pg.psql(DB, &format!("ALTER DATABASE platform RESET enable_sort; {}", "CREATE OR REPLACE VIEW attempt AS SELECT id, student_id, question_id, correct, completed_at, time_spent_ms, hints_used, session_id FROM attempt_log;"));
    let out = export(&lake, &url, &input).await;
    assert_eq!(out.days.len(), 5);
    assert_exact(&pg, &lake, "2026-03-01", "2026-03-05").await;
}

#[test]
fn cli_export_end_to_end() {
    let pg = platform();
    let (_dir, lake) = temp_lake();
    let irtlake = |args: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_irtlake"));
        cmd.args(["--lake", &lake.uri().to_uri_string(), "export"])
            .args(args)
            .env_remove("DATABASE_URL");
        if let Some(url) = env {
            cmd.env("DATABASE_URL", url);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let url = pg.url(DB);
    let (ok, out, err) = irtlake(
        &[
            "--database-url",
            &url,
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-03",
        ],
        None,
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["from"], "2026-03-02");
    assert_eq!(summary["days"].as_array().unwrap().len(), 2);
    assert!(summary["attempts"].as_u64().unwrap() > 1000);
    assert_eq!(summary["questions"], 60);

    // DATABASE_URL from the environment; the default window ends on --run-date.
    let (ok, out, err) = irtlake(&["--run-date", "2026-03-05"], Some(&url));
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["from"], "2026-03-04");
    assert_eq!(summary["to"], "2026-03-05");

    // Errors: the stable name and a message; no URL, a clear hint.
    let (ok, _, err) = irtlake(&["--run-date", "2026-03-05"], None);
    assert!(!ok);
    assert!(err.contains("DATABASE_URL"), "{err}");
    let (ok, _, err) = irtlake(
        &["--database-url", "postgres://postgres@127.0.0.1:1/x"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("Retryable.Timeout"), "{err}");
}
