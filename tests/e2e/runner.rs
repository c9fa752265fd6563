//! `irtlake run`: the state machine `infra/statemachine/pipeline.asl.json` executed
//! locally on a small demo lake: every stage from calibrate on, a retried failure,
//! a failure that ends the run in `PipelineFailed`, and a stage failing on bad lake
//! content that leaves no half-written output.

use std::process::{Command, Output};

use lake::Lake;

use crate::support::{
    SMALL_DEMO_LAST_DAY as LAST_DAY, SMALL_DEMO_START_TIME, count, irtlake_run, small_demo,
    temp_lake,
};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_state_machine_runs_every_stage_and_a_failed_attempt_is_retried() {
    let (dir, lake) = temp_lake();
    small_demo(&lake, dir.path(), 600, 5);
    let out = irtlake_run(
        &lake,
        &[
            "--from",
            "calibrate",
            "--all-subjects",
            "--backfill-from",
            "2026-01-05",
            "--inject-failure",
            "kpis=Retryable.LakeIo:1",
            "--inject-failure",
            "calibrate=Retryable.LakeIo:1",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The table: one line per invocation; kpis failed once, then succeeded.
    for stage in [
        "calibrate all",
        "calibrate subject:",
        "score_abilities",
        "score_topics",
        "features",
        "churn",
        "growth",
        "forecast",
        "segments",
        "reports",
    ] {
        assert!(stdout.contains(stage), "{stage} missing:\n{stdout}");
    }
    let kpis: Vec<&str> = stdout.lines().filter(|l| l.starts_with("kpis")).collect();
    assert_eq!(kpis.len(), 2, "{stdout}");
    assert!(kpis[0].contains("failed: Retryable.LakeIo"), "{stdout}");
    assert!(!kpis[1].contains("failed"), "{stdout}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    // Inside the Map over banks: one bank's call fails once and is retried, once.
    let subjects = count(&lake, "SELECT count(DISTINCT subject_id) FROM questions").await;
    let cal: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("calibrate"))
        .collect();
    // the backfill calibrates bank all weekly back to its start (run date − 7k ≥
    // 2026-01-05), before the run date's own calibration
    let history = count(
        &lake,
        &format!("SELECT count(*) FROM fit_meta WHERE bank = 'all' AND run_date < '{LAST_DAY}'"),
    )
    .await;
    let last: chrono::NaiveDate = LAST_DAY.parse().unwrap();
    let expected_history = (1..)
        .map(|k| last - chrono::Days::new(7 * k))
        .take_while(|d| *d >= chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap())
        .count() as i64;
    assert!(expected_history >= 1);
    assert_eq!(history, expected_history, "{stdout}");
    // Which call fails first depends on the threads the banks (and the backfill's
    // calibrations) run on: whichever it was is retried, once, with the same label.
    // a line's label: the words before its row count
    let label = |line: &str| {
        line.split_whitespace()
            .take_while(|w| !w.bytes().all(|b| b.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let failed: Vec<&str> = cal
        .iter()
        .copied()
        .filter(|l| l.contains("failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{stdout}");
    let retried = label(failed[0]);
    assert!(
        cal.iter()
            .any(|l| !l.contains("failed") && label(l) == retried),
        "the failed call {retried} was retried: {stdout}"
    );
    let history_failed = i64::from(failed[0].contains(" @"));
    assert_eq!(
        cal.iter().filter(|l| l.contains(" @")).count() as i64,
        history + history_failed,
        "{stdout}"
    );
    assert_eq!(cal.len() as i64, history + 1 + subjects + 1, "{stdout}");
    assert!(
        !stdout.contains("export_attempts"),
        "export is skipped: {stdout}"
    );
    // Every table the stages own has rows for this run.
    assert_eq!(
        count(
            &lake,
            &format!("SELECT count(*) FROM fit_meta WHERE run_date = '{LAST_DAY}'")
        )
        .await,
        1 + subjects
    );
    for table in [
        "student_topic_theta",
        "user_segment",
        "forecasts",
        "growth_fit",
        "churn_fit",
    ] {
        assert!(
            count(&lake, &format!("SELECT count(*) FROM {table}")).await > 0,
            "{table}"
        );
    }
    assert!(
        count(
            &lake,
            "SELECT count(*) FROM weekly_kpi WHERE s IS NOT NULL AND p IS NOT NULL"
        )
        .await
            > 0
    );
    // --backfill-from: features for every day of the platform, KPIs for each of its weeks.
    assert_eq!(
        count(&lake, "SELECT count(DISTINCT dt) FROM features_topic_daily").await,
        28
    );
    assert_eq!(
        count(&lake, "SELECT count(DISTINCT week_start) FROM weekly_kpi").await,
        4
    );
    // run_ts is the execution's start time.
    let stamped = count(
        &lake,
        &format!(
            "SELECT count(*) FROM features_topic_daily WHERE computed_at <> TIMESTAMP '{}'",
            SMALL_DEMO_START_TIME.trim_end_matches('Z')
        ),
    )
    .await;
    assert_eq!(
        stamped, 0,
        "every features row carries the execution start time"
    );
    operator_checks_read_the_same_in_duckdb(&lake);
}

/// Every operator check in `sql/checks`, and every query the README shows on lake tables
/// ([`readme_queries`]), returns the same rows from irtlake (`irtlake sql -f FILE --format
/// json`) and from DuckDB over the lake's folders (one view per table,
/// `read_parquet(…, hive_partitioning = true)`: DuckDB types the date partitions as `DATE`
/// and the banks as text, as irtlake does). Rows are compared as multisets (ties in an
/// `ORDER BY` may come in either order); numbers to 1e-9 relative (both engines sum in
/// double precision, in different orders), everything else exactly, dates as
/// `YYYY-MM-DD`. The checks name every column, so their rows are compared by name; the
/// README's may leave a column unnamed (`count(*)`), which each engine names its own way,
/// so their rows are compared as multisets of values. Every check returns rows here.
fn operator_checks_read_the_same_in_duckdb(lake: &Lake) {
    let lake::LakeUri::Local(dir) = lake.uri() else {
        panic!("not a local lake")
    };
    let checks = crate::support::workspace_root().join("sql/checks");
    let mut files: Vec<_> = std::fs::read_dir(&checks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    let n_checks = files.len();
    let scratch = tempfile::tempdir().unwrap();
    for (i, q) in readme_queries().iter().enumerate() {
        let f = scratch.path().join(format!("readme-{i}.sql"));
        std::fs::write(&f, q).unwrap();
        files.push(f);
    }
    let duckdb = duckdb_results(dir, &files);
    for (k, (file, theirs)) in files.iter().zip(duckdb).enumerate() {
        let path = file.to_str().unwrap();
        let is_check = k < n_checks;
        let what = if is_check {
            path.to_string()
        } else {
            std::fs::read_to_string(file).unwrap()
        };
        let (ok, out, err) = crate::support::irtlake_cmd(&[
            "sql",
            "--lake",
            &lake.uri().to_uri_string(),
            "--format",
            "json",
            "-f",
            path,
        ]);
        assert!(ok, "{what}: {err}");
        let ours: serde_json::Value = serde_json::from_str(&out).expect("irtlake's JSON");
        let ours = rows_of(&ours);
        let theirs = rows_of(&theirs);
        assert!(!is_check || !ours.is_empty(), "{what} returned no rows");
        assert_eq!(ours.len(), theirs.len(), "{what}: row counts");
        let same = if is_check { same_row } else { same_values };
        let mut unmatched = theirs.clone();
        for row in &ours {
            let at = unmatched
                .iter()
                .position(|t| same(row, t))
                .unwrap_or_else(|| {
                    panic!("{what}: irtlake's row {row:?} not in DuckDB's {theirs:?}")
                });
            unmatched.swap_remove(at);
        }
    }
}

/// The SQL queries on lake tables that the README shows: the arguments of `irtlake sql
/// "…"`, Athena's `--query-string "…"`, and inline `SELECT … FROM …` code; whitespace
/// collapsed, each once. Fails when it finds fewer than four (the extraction broke).
fn readme_queries() -> Vec<String> {
    let text = std::fs::read_to_string(crate::support::workspace_root().join("README.md"))
        .expect("README.md");
    let mut out: Vec<String> = Vec::new();
    for (open, close, keep) in [
        ("irtlake sql \"", '"', ""),
        ("--query-string \"", '"', ""),
        ("`SELECT ", '`', "SELECT "),
    ] {
        let mut rest = text.as_str();
        while let Some(i) = rest.find(open) {
            let after = &rest[i + open.len()..];
            let Some(end) = after.find(close) else { break };
            let q = format!("{keep}{}", &after[..end]);
            let q = q.split_whitespace().collect::<Vec<_>>().join(" ");
            rest = &after[end + 1..];
            if q.starts_with("SELECT ") && q.contains(" FROM ") && !out.contains(&q) {
                out.push(q);
            }
        }
    }
    assert!(out.len() >= 4, "README queries found: {out:?}");
    out
}

/// Two rows hold the same values, whatever their columns are named (see
/// [`operator_checks_read_the_same_in_duckdb`]).
fn same_values(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    let mut rest: Vec<&serde_json::Value> = b.values().collect();
    a.len() == b.len()
        && a.values()
            .all(|x| match rest.iter().position(|y| same_value(x, y)) {
                Some(at) => {
                    rest.swap_remove(at);
                    true
                }
                None => false,
            })
}

/// The rows of one statement's JSON result (an array of objects), as ordered maps.
fn rows_of(v: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
    v.as_array()
        .expect("a JSON array of rows")
        .iter()
        .map(|r| r.as_object().expect("a row object").clone())
        .collect()
}

/// Two rows hold the same value in every column, by name.
fn same_row(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, x)| b.get(k).is_some_and(|y| same_value(x, y)))
}

/// Numbers to 1e-9 relative, everything else exactly.
fn same_value(x: &serde_json::Value, y: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (x, y) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (x, y) => x == y,
    }
}

/// Runs each check file in DuckDB (the test virtualenv's `duckdb`) over the lake folder
/// `dir`, with a view per catalog table that has a folder: one JSON array of row objects
/// per file, dates as `YYYY-MM-DD`.
fn duckdb_results(dir: &std::path::Path, files: &[std::path::PathBuf]) -> Vec<serde_json::Value> {
    let python = crate::support::venv_python("duckdb");
    let script = r#"
import datetime, decimal, json, os, sys
import duckdb
lake, tables, files = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
con = duckdb.connect()
for table in tables:
    folder = os.path.join(lake, table)
    if os.path.isdir(folder):
        glob = (folder + "/**/*.parquet").replace("'", "''")
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
        )
def value(v):
    # date - INTERVAL is a TIMESTAMP in DuckDB, a DATE in irtlake: midnight is the day
    if isinstance(v, datetime.datetime) and v.tzinfo is None and v.time() == datetime.time():
        return v.date().isoformat()
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v
out = []
for f in files:
    cur = con.execute(open(f).read())
    names = [d[0] for d in cur.description]
    out.append([{n: value(v) for n, v in zip(names, row)} for row in cur.fetchall()])
print(json.dumps(out))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(dir)
        .arg(
            lake::TABLES
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(","),
        )
        .args(files)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "DuckDB could not run the checks: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("DuckDB's JSON");
    all.as_array().expect("one result per check").clone()
}

#[tokio::test]
async fn a_stage_that_keeps_failing_ends_the_run_with_its_error_and_nothing_after_it_runs() {
    let (dir, lake) = temp_lake();
    small_demo(&lake, dir.path(), 600, 5);
    let out = irtlake_run(
        &lake,
        &[
            "--from",
            "calibrate",
            "--inject-failure",
            "features=Retryable.Timeout",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "stdout:\n{stdout}");
    assert!(stderr.contains("PipelineFailed"), "{stderr}");
    assert!(stderr.contains("Retryable.Timeout"), "{stderr}");
    // One attempt and three retries, then the Catch: nothing after features ran.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("features")).count(),
        4,
        "{stdout}"
    );
    assert!(!stdout.lines().any(|l| l.starts_with("kpis")), "{stdout}");
    assert!(lake.list("weekly_kpi/").await.unwrap().is_empty());
    assert!(lake.list("features_topic_daily/").await.unwrap().is_empty());
    // What ran before the failure is complete.
    assert_eq!(count(&lake, "SELECT count(*) FROM fit_meta").await, 1);
}

#[tokio::test]
async fn a_stage_failing_on_corrupt_input_leaves_no_half_written_output() {
    let (dir, lake) = temp_lake();
    small_demo(&lake, dir.path(), 600, 5);
    // Corrupt the questions table: calibrate reads it after the attempts.
    let questions = lake.list("questions/").await.unwrap();
    assert!(!questions.is_empty());
    for q in &questions {
        let file = dir.path().join("lake").join(&q.key);
        std::fs::write(&file, b"PAR1 this is not parquet PAR1").unwrap();
    }
    let out = irtlake_run(&lake, &["--from", "calibrate"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "stdout:\n{stdout}");
    // The Parquet decoder refuses the file with an error (a bad footer is Retryable.LakeIo:
    // it is also what a reader sees when a writer replaces the object under it, so it is
    // retried three times) or, in a debug build, panics on the bogus footer length
    // (caught: Fatal.Internal). Either way the run ends in PipelineFailed.
    assert!(
        stderr.contains("PipelineFailed")
            && (stderr.contains("Fatal.") || stderr.contains("Retryable.LakeIo")),
        "{stderr}"
    );
    for table in [
        "item_params/",
        "abilities/",
        "fit_meta/",
        "student_topic_theta/",
    ] {
        assert!(
            lake.list(table).await.unwrap().is_empty(),
            "{table} was written"
        );
    }
}

#[test]
fn the_full_pipeline_needs_a_database_url_and_says_so() {
    let (_dir, lake) = temp_lake();
    let out = irtlake_run(&lake, &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("DATABASE_URL") && stderr.contains("--from calibrate"),
        "{stderr}"
    );
}

fn irtlake_stage(lake: &Lake, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .args(["--lake", &lake.uri().to_uri_string(), "stage"])
        .args(args)
        .output()
        .expect("run irtlake stage")
}

#[tokio::test]
async fn the_plan_stage_counts_the_windows_students_and_sizes_the_shards() {
    let (dir, lake) = temp_lake();
    small_demo(&lake, dir.path(), 600, 5);
    // The 60 days to the run date cover the whole 28-day platform; 10 days cover less.
    let students_in = |first: &str| {
        format!(
            "SELECT count(DISTINCT student_id) FROM attempts WHERE dt >= '{first}' AND dt <= '{LAST_DAY}'"
        )
    };
    for (lookback, first) in [("60", "2025-12-04"), ("10", "2026-01-23")] {
        let want = count(&lake, &students_in(first)).await;
        assert!(want > 100, "{want}");
        let out = irtlake_stage(
            &lake,
            &[
                "plan",
                "--run-date",
                LAST_DAY,
                "--lookback-days",
                lookback,
                "--students-per-shard",
                "100",
            ],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let plan: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(plan["students"], want, "{plan}");
        let n = (want as u64).div_ceil(100);
        assert_eq!(plan["shard_count"], n, "{plan}");
        let items = plan["shards"].as_array().unwrap();
        assert_eq!(items.len() as u64, n);
        assert_eq!(
            items.last().unwrap(),
            &serde_json::json!({"shard": n - 1, "shards": n})
        );
    }
    // The default target (25,000) keeps a small platform in one shard; a given count is
    // planned without reading the lake.
    let out = irtlake_stage(&lake, &["plan", "--run-date", LAST_DAY]);
    let plan: serde_json::Value = serde_json::from_str(text(&out).0.trim()).unwrap();
    assert_eq!(plan["shard_count"], 1, "{plan}");
    let out = irtlake_stage(&lake, &["plan", "--run-date", LAST_DAY, "--shards", "3"]);
    let plan: serde_json::Value = serde_json::from_str(text(&out).0.trim()).unwrap();
    assert_eq!(
        (plan["shard_count"].clone(), plan["students"].clone()),
        (3.into(), serde_json::Value::Null)
    );
}

#[tokio::test]
async fn a_run_with_a_shard_count_runs_every_per_student_stage_once_per_shard() {
    let (dir, lake) = temp_lake();
    small_demo(&lake, dir.path(), 600, 5);
    let out = irtlake_run(
        &lake,
        &[
            "--from",
            "calibrate",
            "--shards",
            "2",
            "--max-parallel",
            "2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for stage in [
        "score_abilities",
        "score_topics",
        "features",
        "kpis",
        "churn",
        "growth",
        "segments",
        "reports",
    ] {
        for shard in ["0", "1"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.split_whitespace().take(2).eq([stage, shard])),
                "{stage} {shard} missing:\n{stdout}"
            );
        }
    }
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("forecast")).count(),
        1,
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("plan")), "{stdout}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    for table in [
        "student_topic_theta",
        "weekly_kpi",
        "user_segment",
        "report_artifacts",
    ] {
        assert!(
            count(&lake, &format!("SELECT count(*) FROM {table}")).await > 0,
            "{table}"
        );
    }
}
