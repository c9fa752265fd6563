//! The lake's storage guarantees under faults, seen by irtlake and by other engines:
//! a writer killed mid-write (pyarrow and DuckDB read the table folder), two processes
//! updating one partition, a disk that fills up during a multi-day ingest, a commit
//! that fails part-way, and ids too long for a path segment.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use lake::Lake;
use lake::catalog::{self, WEEKLY_KPI};

use crate::support::{ATTEMPTS_CSV, QUESTIONS_CSV, count, temp_lake, write_file};

/// Runs `irtlake --lake LAKE ARGS` with extra environment variables.
fn irtlake(lake: &Lake, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .arg("--lake")
        .arg(lake.uri().to_uri_string())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run irtlake");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(lake: &Lake, args: &[&str]) -> String {
    let (success, stdout, stderr) = irtlake(lake, &[], args);
    assert!(success, "irtlake {args:?} failed: {stderr}");
    stdout
}

/// The folder of a local lake.
fn lake_dir(lake: &Lake) -> PathBuf {
    match lake.uri() {
        lake::LakeUri::Local(d) => d.clone(),
        other => panic!("not a local lake: {other:?}"),
    }
}

/// Rows of a table folder as pyarrow (dataset, Hive partitioning) and DuckDB
/// (`read_parquet('<table>/**')`, every file under the folder, hidden ones included)
/// count them; panics with the engine's error when one cannot read the folder.
fn other_engines_count(table_dir: &Path) -> (i64, i64) {
    let python = crate::support::venv_python("pyarrow and duckdb");
    let script = r#"
import sys, duckdb, pyarrow.dataset as ds
t = sys.argv[1]
print(ds.dataset(t, format="parquet", partitioning="hive").count_rows())
print(duckdb.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = true)", [t + "/**"]).fetchone()[0])
"#;
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(table_dir)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyarrow/DuckDB could not read {}: {}",
        table_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let n: Vec<i64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    (n[0], n[1])
}

/// Every file under `dir` (recursively), relative paths.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

const MORE_ATTEMPTS_CSV: &str = "attempt_id,student_id,question_id,correct,completed_at\n\
b1,s1,q3,1,2026-03-02T10:00:00Z\n\
b2,s3,q1,0,2026-03-03T11:00:00Z\n";

/// A writer killed (`kill -9`) after staging its object leaves nothing that irtlake,
/// pyarrow or DuckDB read; the staging file (outside the table) is swept by the next
/// write of the partition. A `part-0.parquet#1` left by an older irtlake (object_store's
/// staging, 0 bytes) is swept too: before, it made pyarrow and DuckDB fail.
#[tokio::test]
async fn a_writer_killed_mid_write_leaves_nothing_other_engines_read() {
    let (dir, lake) = temp_lake();
    let root = lake_dir(&lake);
    let q = write_file(dir.path(), "q.csv", QUESTIONS_CSV);
    let a = write_file(dir.path(), "a.csv", ATTEMPTS_CSV);
    let more = write_file(dir.path(), "more.csv", MORE_ATTEMPTS_CSV);
    ok(&lake, &["ingest", "questions", q.to_str().unwrap()]);
    ok(&lake, &["ingest", "attempts", a.to_str().unwrap()]);
    // what a crash of an older irtlake left beside a partition object
    let legacy = root.join("attempts/dt=2026-03-03/part-0.parquet#1");
    std::fs::write(&legacy, b"").unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .arg("--lake")
        .arg(lake.uri().to_uri_string())
        .args(["ingest", "attempts", more.to_str().unwrap()])
        .env(lake::local::FAULT_ENV, "pause-after-stage")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run irtlake");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("irtlake fault: staged") {
                let _ = tx.send(line);
            }
        }
    });
    let staged = rx.recv_timeout(Duration::from_secs(120));
    child.kill().unwrap(); // SIGKILL: no destructor, no clean-up runs
    child.wait().unwrap();
    let staged = staged.expect("the writer never reported a staged object");
    eprintln!("killed the writer after: {staged}");
    let staging: Vec<String> = files_under(&root.join(lake::local::STAGING_DIR));
    assert_eq!(
        staging.len(),
        1,
        "the killed writer's staging file: {staging:?}"
    );

    // Nothing of the killed write is visible, to irtlake or any other engine.
    let ours = count(&lake, "SELECT count(*) FROM attempts").await;
    assert_eq!(ours, 4);
    assert_eq!(other_engines_count(&root.join("attempts")), (ours, ours));
    assert!(!legacy.exists(), "the writer swept the old staging file");

    // The re-run completes the write and sweeps the staging file.
    ok(&lake, &["ingest", "attempts", more.to_str().unwrap()]);
    let ours = count(&lake, "SELECT count(*) FROM attempts").await;
    assert_eq!(ours, 6);
    assert_eq!(other_engines_count(&root.join("attempts")), (ours, ours));
    assert_eq!(
        files_under(&root.join(lake::local::STAGING_DIR)),
        Vec::<String>::new()
    );
    let table_files = files_under(&root.join("attempts"));
    assert_eq!(
        table_files,
        vec![
            "dt=2026-03-02/part-0.parquet",
            "dt=2026-03-03/part-0.parquet"
        ],
        "each partition holds exactly one object"
    );
}

const WORKER_ENV: &str = "IRTLAKE_TEST_INCREMENT_WORKER";
const WEEK: &str = "2026-03-02";
const INCREMENTS: usize = 40;

/// A `weekly_kpi` partition of `students` with every KPI null.
fn kpi_batch(students: &[&str]) -> RecordBatch {
    let def = catalog::table(WEEKLY_KPI).unwrap();
    let n = students.len();
    let null = || -> ArrayRef { Arc::new(Float64Array::from(vec![None::<f64>; n])) };
    RecordBatch::try_new(
        def.file_schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["kpis-test"; n])),
            Arc::new(StringArray::from(students.to_vec())),
            null(),
            null(),
            null(),
            null(),
            null(),
            null(),
            null(),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(Int64Array::from(vec![10; n])),
            Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
        ],
    )
    .unwrap()
}

/// Not a test on its own: the child process of
/// [`two_processes_updating_one_partition_lose_no_update`] (it does nothing unless
/// started by it). Adds 1 to one Float64 column of every row of the partition,
/// `INCREMENTS` times, each a read–modify–write of the partition.
#[tokio::test]
async fn increment_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (uri, column) = spec.split_once('|').unwrap();
    let lake = Lake::open(uri).unwrap();
    let ix = catalog::table(WEEKLY_KPI)
        .unwrap()
        .file_schema
        .index_of(column)
        .unwrap();
    for _ in 0..INCREMENTS {
        lake.update_partition(WEEKLY_KPI, &[("week_start", WEEK)], |batches| {
            Ok(batches
                .into_iter()
                .map(|b| {
                    let old = b.column(ix).as_primitive::<arrow::datatypes::Float64Type>();
                    let new: Float64Array = (0..b.num_rows())
                        .map(|r| {
                            Some(if old.is_null(r) {
                                1.0
                            } else {
                                old.value(r) + 1.0
                            })
                        })
                        .collect();
                    let mut cols = b.columns().to_vec();
                    cols[ix] = Arc::new(new);
                    RecordBatch::try_new(b.schema(), cols).unwrap()
                })
                .collect())
        })
        .await
        .unwrap();
    }
}

/// Two processes each update their own column of one `weekly_kpi` partition (as churn
/// writes `s` and growth `p`), 40 read–modify–writes each, at the same time: every
/// update of both survives. Without a lock across processes, a write based on a read
/// from before the other process's write drops that write's column values.
#[tokio::test]
async fn two_processes_updating_one_partition_lose_no_update() {
    let (_dir, lake) = temp_lake();
    lake.write_partition(
        WEEKLY_KPI,
        &[("week_start", WEEK)],
        &[kpi_batch(&["s1", "s2", "s3"])],
    )
    .await
    .unwrap();
    let uri = lake.uri().to_uri_string();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["s", "p"]
        .iter()
        .map(|column| {
            Command::new(&exe)
                .args(["--exact", "integrity::increment_worker", "--nocapture"])
                .env(WORKER_ENV, format!("{uri}|{column}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start worker")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let n = INCREMENTS as i64;
    assert_eq!(
        count(
            &lake,
            &format!("SELECT count(*) FROM weekly_kpi WHERE s = {n} AND p = {n}")
        )
        .await,
        3,
        "{}",
        crate::support::render(&lake, "SELECT student_id, s, p FROM weekly_kpi").await
    );
}

/// A tmpfs of `size` mounted on a temporary folder, unmounted on drop; `None` (with the
/// reason) where mounting is not possible (not root, no CAP_SYS_ADMIN).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Self(dir))
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// `rows` attempts on 2026-03-03 whose ids do not compress (a file of a few MB).
fn big_day_csv(rows: usize) -> String {
    let mut s = String::from("attempt_id,student_id,question_id,correct,completed_at\n");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!(
            "big-{x:016x}-{i},st-{:016x},q{},{},2026-03-03T{:02}:{:02}:{:02}.{:06}Z\n",
            x.rotate_left(17),
            1 + i % 4,
            x % 2,
            (x >> 8) % 24,
            (x >> 16) % 60,
            (x >> 24) % 60,
            (x >> 32) % 1_000_000
        ));
    }
    s
}

/// A file with rows for two days fails on a full disk while the second day is written:
/// no day is committed (before: the first day's partition was rewritten and the error
/// said nothing of it), the error names both days, and a re-run with space converges.
/// Uses a small tmpfs when mounting works (root), else an injected `ENOSPC`.
#[tokio::test]
async fn ingest_on_a_full_disk_commits_no_day_and_a_rerun_converges() {
    let files = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::mount("1m");
    let (_holder, lake_root, fault) = match &tmpfs {
        Ok(fs) => {
            eprintln!("disk full: a 1 MiB tmpfs");
            (None, fs.0.path().join("lake"), None)
        }
        Err(reason) => {
            eprintln!("cannot mount a tmpfs ({reason}): injecting ENOSPC instead");
            let d = tempfile::tempdir().unwrap();
            let root = d.path().join("lake");
            (Some(d), root, Some("enospc-at-stage:2"))
        }
    };
    let lake = Lake::open(&format!("file://{}", lake_root.display())).unwrap();
    let q = write_file(files.path(), "q.csv", QUESTIONS_CSV);
    let a = write_file(files.path(), "a.csv", ATTEMPTS_CSV);
    ok(&lake, &["ingest", "questions", q.to_str().unwrap()]);
    ok(&lake, &["ingest", "attempts", a.to_str().unwrap()]);
    let before = crate::support::render(&lake, "SELECT * FROM attempts ORDER BY attempt_id").await;
    // two days: a few new rows for 2026-03-02, a day too big for the disk
    let mut text = MORE_ATTEMPTS_CSV.replace("2026-03-03T11", "2026-03-02T11");
    text.push_str(big_day_csv(60_000).split_once('\n').unwrap().1);
    let two_days = write_file(files.path(), "two-days.csv", &text);
    let env: Vec<(&str, &str)> = fault
        .map(|f| (lake::local::FAULT_ENV, f))
        .into_iter()
        .collect();
    let (success, _, stderr) = irtlake(
        &lake,
        &env,
        &["ingest", "attempts", two_days.to_str().unwrap()],
    );
    assert!(!success, "the ingest must fail on a full disk");
    assert!(
        stderr.contains("nothing was written")
            && stderr.contains("dt=2026-03-02")
            && stderr.contains("dt=2026-03-03"),
        "{stderr}"
    );
    assert_eq!(
        crate::support::render(&lake, "SELECT * FROM attempts ORDER BY attempt_id").await,
        before,
        "no day may change"
    );
    assert!(files_under(&lake_root.join(lake::local::STAGING_DIR)).is_empty());
    // with space again, the same file converges
    if let Ok(fs) = &tmpfs {
        fs.resize("64m");
    }
    ok(&lake, &["ingest", "attempts", two_days.to_str().unwrap()]);
    assert_eq!(
        count(&lake, "SELECT count(*) FROM attempts").await,
        4 + 2 + 60_000
    );
    assert_eq!(
        count(&lake, "SELECT count(DISTINCT attempt_id) FROM attempts").await,
        4 + 2 + 60_000
    );
}

/// A commit that fails after the first of two days: the error names the committed day
/// and the one left as it was, and a re-run of the same file converges (no duplicate).
#[tokio::test]
async fn a_commit_failing_part_way_names_the_days_and_a_rerun_converges() {
    let (dir, lake) = temp_lake();
    let q = write_file(dir.path(), "q.csv", QUESTIONS_CSV);
    let a = write_file(dir.path(), "a.csv", ATTEMPTS_CSV);
    ok(&lake, &["ingest", "questions", q.to_str().unwrap()]);
    let (success, _, stderr) = irtlake(
        &lake,
        &[(lake::local::FAULT_ENV, "fail-commit:2")],
        &["ingest", "attempts", a.to_str().unwrap()],
    );
    assert!(!success);
    assert!(
        stderr.contains("committed 1 (dt=2026-03-02)")
            && stderr.contains("not committed 1 (dt=2026-03-03)"),
        "{stderr}"
    );
    assert_eq!(
        count(
            &lake,
            "SELECT count(*) FROM attempts WHERE dt = '2026-03-02'"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &lake,
            "SELECT count(*) FROM attempts WHERE dt = '2026-03-03'"
        )
        .await,
        0
    );
    ok(&lake, &["ingest", "attempts", a.to_str().unwrap()]);
    assert_eq!(count(&lake, "SELECT count(*) FROM attempts").await, 4);
    assert_eq!(
        count(&lake, "SELECT count(DISTINCT attempt_id) FROM attempts").await,
        4
    );
}

/// Ids far over the 255-byte segment limit (a 5,000-character subject and student id, a
/// long Korean topic id) go through ingest, calibrate (`--bank topic:…`,
/// `--all-subjects`) and reports on a local lake; every path segment stays short, and
/// the full ids are in the data and resolve in SQL.
#[tokio::test]
async fn ids_too_long_for_a_path_run_through_the_pipeline() {
    let (dir, lake) = temp_lake();
    let topic = "고등수학 II 미적분 단원: 극한과 연속, 도함수의 정의와 활용 문제 ".repeat(3);
    let topic = topic.trim_end();
    let subject = format!("subj-{}", "x".repeat(4995));
    let long_student = format!("s-{}", "학생".repeat(2499));
    assert_eq!(subject.chars().count(), 5000);
    assert_eq!(long_student.chars().count(), 5000);
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut qcsv = String::from("question_id,subject_id,topic_id,tags,irt_a,irt_b,irt_c\n");
    for i in 0..12 {
        qcsv.push_str(&format!("q{i},{},{},,,,\n", quote(&subject), quote(topic)));
    }
    let mut acsv = String::from("attempt_id,student_id,question_id,correct,completed_at\n");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for s in 0..80 {
        let student = if s == 0 {
            long_student.clone()
        } else {
            format!("s{s}")
        };
        let theta = (s as f64 - 40.0) / 15.0;
        for i in 0..12 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = (i as f64 - 6.0) / 3.0;
            let p = 1.0 / (1.0 + (-(theta - b)).exp());
            let correct = ((x % 10_000) as f64 / 10_000.0) < p;
            acsv.push_str(&format!(
                "a{s}-{i},{},q{i},{},2026-03-0{}T10:{:02}:00Z\n",
                quote(&student),
                u8::from(correct),
                3 + i % 4,
                i
            ));
        }
    }
    let q = write_file(dir.path(), "q.csv", &qcsv);
    let a = write_file(dir.path(), "a.csv", &acsv);
    ok(&lake, &["ingest", "questions", q.to_str().unwrap()]);
    ok(&lake, &["ingest", "attempts", a.to_str().unwrap()]);
    let topic_bank = format!("topic:{topic}");
    ok(
        &lake,
        &[
            "calibrate",
            "--run-date",
            "2026-03-08",
            "--bank",
            "all",
            "--bank",
            &topic_bank,
            "--all-subjects",
        ],
    );
    ok(
        &lake,
        &[
            "report",
            "--week",
            "2026-03-02",
            "--run-date",
            "2026-03-08",
            "--student",
            &long_student,
        ],
    );
    for f in files_under(&lake_dir(&lake)) {
        for segment in f.split('/') {
            assert!(segment.len() <= 130, "{} bytes: {segment}", segment.len());
        }
    }
    // the full bank ids resolve in SQL, and each bank's items are found through them
    let subject_bank = format!("subject:{subject}");
    for bank in ["all", topic_bank.as_str(), subject_bank.as_str()] {
        let sql = format!(
            "SELECT count(*) FROM item_params p JOIN fit_meta f USING (run_date, bank) \
             WHERE f.bank_id = '{}'",
            bank.replace('\'', "''")
        );
        assert_eq!(count(&lake, &sql).await, 12, "{bank:.40}");
    }
    assert_eq!(
        count(
            &lake,
            &format!(
                "SELECT count(*) FROM fit_meta WHERE bank = '{}'",
                lake::partition::sql_value(&topic_bank)
            )
        )
        .await,
        1
    );
    // the long student: θ in abilities, a report whose row names the full id
    let student_sql = long_student.replace('\'', "''");
    assert_eq!(
        count(
            &lake,
            &format!(
                "SELECT count(*) FROM abilities WHERE bank = 'all' AND student_id = '{student_sql}'"
            )
        )
        .await,
        1
    );
    let b = lake
        .sql(&format!(
            "SELECT key FROM report_artifacts WHERE student_id = '{student_sql}'"
        ))
        .await
        .unwrap();
    let key = b[0].column(0).as_string::<i32>().value(0).to_string();
    assert!(!lake.get_object(&key).await.unwrap().is_empty());
}
