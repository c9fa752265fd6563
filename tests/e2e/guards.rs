//! The edges of the CLI: `irtlake sql` is read-only (writes, COPY, external tables and
//! reads outside the lake are refused; `--out` exports), reading commands on a lake that
//! is not there fail without creating it, and out-of-range flags are refused.

use std::path::Path;
use std::process::Command;

use crate::support::{ATTEMPTS_CSV, QUESTIONS_CSV, S3Server, write_file};

/// Runs `irtlake --lake LAKE ARGS` in `cwd` with extra environment variables.
fn irtlake_in(
    cwd: &Path,
    lake: &str,
    env: &[(&str, String)],
    args: &[&str],
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("--lake")
        .arg(lake)
        .args(args)
        .output()
        .expect("run irtlake");
    crate::support::outcome(out)
}

/// Every file under `dir` with its bytes, sorted: a lake "unchanged" has the same listing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A local lake holding the small question bank and its attempts, in `dir/lake`.
fn small_lake(dir: &Path) -> String {
    let uri = format!("file://{}", dir.join("lake").display());
    let q = write_file(dir, "q.csv", QUESTIONS_CSV);
    let a = write_file(dir, "a.csv", ATTEMPTS_CSV);
    for (kind, f) in [("questions", &q), ("attempts", &a)] {
        let (ok, _, err) = irtlake_in(dir, &uri, &[], &["ingest", kind, f.to_str().unwrap()]);
        assert!(ok, "{err}");
    }
    uri
}

#[test]
fn sql_refuses_writes_copy_and_reads_outside_the_lake_and_leaves_the_lake_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let uri = small_lake(dir.path());
    let lake_dir = dir.path().join("lake");
    let before = snapshot(&lake_dir);
    let secret = write_file(dir.path(), "secret.csv", "l\nsecret-line\n");
    let attacks: Vec<(String, &str)> = vec![
        (
            "INSERT INTO questions SELECT * FROM questions".into(),
            "INSERT INTO",
        ),
        ("COPY (SELECT 'x') TO '../outside.csv'".into(), "COPY"),
        ("COPY questions TO 'questions_copy.parquet'".into(), "COPY"),
        (
            "CREATE EXTERNAL TABLE p (l TEXT) STORED AS CSV LOCATION '/etc/passwd'".into(),
            "CREATE EXTERNAL TABLE",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{}'",
                secret.display()
            ),
            "CREATE EXTERNAL TABLE",
        ),
        (
            "CREATE TABLE t AS SELECT * FROM questions".into(),
            "CREATE TABLE",
        ),
        ("DROP TABLE questions".into(), "DROP TABLE"),
        ("DELETE FROM questions".into(), "DELETE FROM"),
        (
            "EXPLAIN ANALYZE INSERT INTO questions SELECT * FROM questions".into(),
            "INSERT INTO",
        ),
        (
            "SET datafusion.execution.target_partitions = 1000000".into(),
            "SET datafusion.execution.target_partitions",
        ),
        // A URL table would read any local file: it is not a table of the lake.
        (format!("SELECT * FROM '{}'", secret.display()), "not found"),
    ];
    // Run from inside the lake folder, so '../outside.csv' would land in `dir`.
    for (sql, kind) in &attacks {
        let (ok, out, err) = irtlake_in(&lake_dir, &uri, &[], &["sql", sql]);
        assert!(!ok, "{sql} was allowed: {out}");
        assert!(err.contains(kind), "{sql}: {err}");
        if *kind != "not found" {
            assert!(err.contains("read-only"), "{sql}: {err}");
        }
        assert!(!err.contains("secret-line") && !out.contains("secret-line"));
    }
    // A script with a write runs nothing, not even the query before it.
    let script = write_file(
        dir.path(),
        "mixed.sql",
        "SELECT count(*) AS n FROM questions; INSERT INTO questions SELECT * FROM questions;",
    );
    let (ok, out, err) = irtlake_in(
        &lake_dir,
        &uri,
        &[],
        &["sql", "-f", script.to_str().unwrap()],
    );
    assert!(
        !ok && out.is_empty() && err.contains("statement 2: INSERT INTO"),
        "{out}{err}"
    );

    assert!(!dir.path().join("outside.csv").exists());
    assert!(!lake_dir.join("questions_copy.parquet").exists());
    assert_eq!(snapshot(&lake_dir), before, "the lake changed");
    let (ok, out, err) = irtlake_in(
        dir.path(),
        &uri,
        &[],
        &[
            "sql",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM questions",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "n\n4\n");
    // Reading queries, SHOW, DESCRIBE and the one harmless SET still work.
    for sql in [
        "SHOW TABLES",
        "DESCRIBE attempts",
        "EXPLAIN SELECT * FROM attempts",
        "SET datafusion.execution.time_zone = '+09:00'",
    ] {
        let (ok, _, err) = irtlake_in(dir.path(), &uri, &[], &["sql", sql]);
        assert!(ok, "{sql}: {err}");
    }
}

#[test]
fn sql_exports_a_result_to_the_file_named_by_out() {
    let dir = tempfile::tempdir().unwrap();
    let uri = small_lake(dir.path());
    let before = snapshot(&dir.path().join("lake"));
    let q = "SELECT question_id, topic_id FROM questions ORDER BY question_id";
    let pq = dir.path().join("out.parquet");
    let (ok, out, err) = irtlake_in(
        dir.path(),
        &uri,
        &[],
        &[
            "sql",
            "--format",
            "parquet",
            "--out",
            pq.to_str().unwrap(),
            q,
        ],
    );
    assert!(ok && out.is_empty(), "{out}{err}");
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&pq).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 4);

    let csv = dir.path().join("out.csv");
    let (ok, _, err) = irtlake_in(
        dir.path(),
        &uri,
        &[],
        &["sql", "--format", "csv", "--out", csv.to_str().unwrap(), q],
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "question_id,topic_id\nq1,alg\nq2,alg\nq3,geo\nq4,geo\n"
    );
    let (ok, _, err) = irtlake_in(dir.path(), &uri, &[], &["sql", "--format", "parquet", q]);
    assert!(!ok && err.contains("--out"), "{err}");
    let (ok, _, err) = irtlake_in(
        dir.path(),
        &uri,
        &[],
        &["sql", "--out", csv.to_str().unwrap(), "SELECT 1; SELECT 2"],
    );
    assert!(!ok && err.contains("exactly one statement"), "{err}");
    assert_eq!(snapshot(&dir.path().join("lake")), before);
}

#[test]
fn reading_commands_on_a_missing_lake_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo");
    let uri = format!("file://{}", typo.display());
    let cases: &[&[&str]] = &[
        &["sql", "SELECT count(*) FROM attempts"],
        &["status"],
        &["stage", "kpis", "--run-date", "2026-03-05"],
        &["calibrate", "--run-date", "2026-03-05"],
        &["report", "--run-date", "2026-03-05"],
        &["run", "--from", "calibrate", "--retry-delay-scale", "0"],
    ];
    for args in cases {
        let (ok, out, err) = irtlake_in(dir.path(), &uri, &[], args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(
            err.contains(&format!("no irtlake lake at {uri}")),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // An existing folder with no tables is no lake either.
    std::fs::create_dir_all(&typo).unwrap();
    let (ok, _, err) = irtlake_in(dir.path(), &uri, &[], &["status"]);
    assert!(!ok && err.contains("no irtlake lake"), "{err}");
    // Commands that create a lake do.
    let q = write_file(dir.path(), "q.csv", QUESTIONS_CSV);
    let (ok, _, err) = irtlake_in(
        dir.path(),
        &uri,
        &[],
        &["ingest", "questions", q.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = irtlake_in(dir.path(), &uri, &[], &["status"]);
    assert!(ok, "{err}");
}

#[test]
fn out_of_range_flags_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let uri = small_lake(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--from", "calibrate", "--retry-delay-scale", "1e300"],
            "--retry-delay-scale",
        ),
        (
            &["run", "--from", "calibrate", "--retry-delay-scale", "NaN"],
            "--retry-delay-scale",
        ),
        (
            &["run", "--from", "reports", "--until", "calibrate"],
            "--from reports comes after --until calibrate",
        ),
        (&["calibrate", "--quadpts", "100000000"], "--quadpts"),
        (&["calibrate", "--tol", "NaN"], "--tol"),
        (
            &["stage", "kpis", "--lookback-days", "0"],
            "--lookback-days",
        ),
        (&["stage", "kpis", "--run-date", "2026-02-30"], "--run-date"),
        (&["demo-data", "--students", "0"], "--students"),
        (&["report", "--shards", "0"], "--shards"),
    ];
    for (args, needle) in cases {
        let (ok, _, err) = irtlake_in(dir.path(), &uri, &[], args);
        assert!(!ok, "{args:?} was accepted");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Some("),
            "{args:?}: {err}"
        );
    }
}

fn s3_env(s3: &S3Server) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
        ("AWS_ENDPOINT", s3.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ]
}

#[tokio::test]
async fn on_s3_a_typo_prefix_is_no_lake_and_copy_cannot_write_the_bucket() {
    let s3 = S3Server::start("guards");
    let env = s3_env(&s3);
    let dir = tempfile::tempdir().unwrap();
    let q = write_file(dir.path(), "q.csv", QUESTIONS_CSV);
    let (ok, _, err) = irtlake_in(
        dir.path(),
        "s3://guards/lake",
        &env,
        &["ingest", "questions", q.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = irtlake_in(
        dir.path(),
        "s3://guards/typo",
        &env,
        &["sql", "SELECT count(*) FROM attempts"],
    );
    assert!(
        !ok && err.contains("no irtlake lake at s3://guards/typo"),
        "{out}{err}"
    );
    let bucket = s3.lake("s3://guards");
    let before = bucket.list("").await.unwrap();
    for sql in [
        "COPY (SELECT 'x') TO 's3://guards/deployed.zip' STORED AS CSV",
        "COPY (SELECT 'x') TO 's3://other/any.csv' STORED AS CSV",
        "INSERT INTO questions SELECT * FROM questions",
    ] {
        let (ok, _, err) = irtlake_in(dir.path(), "s3://guards/lake", &env, &["sql", sql]);
        assert!(!ok && err.contains("read-only"), "{sql}: {err}");
    }
    assert_eq!(bucket.list("").await.unwrap(), before, "the bucket changed");
    let (ok, out, err) = irtlake_in(
        dir.path(),
        "s3://guards/lake",
        &env,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM questions",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "n\n4\n");
}
