//! The `irtlake` binary: sql (table/csv/json, -f), ingest errors, status, the checks.

use std::process::Command;

use crate::support::{ATTEMPTS_CSV, QUESTIONS_CSV, temp_lake, workspace_root, write_file};

fn irtlake(lake: &lake::Lake, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .arg("--lake")
        .arg(lake.uri().to_uri_string())
        .args(args)
        .output()
        .expect("run irtlake");
    crate::support::outcome(out)
}

#[test]
fn ingest_sql_formats_status_and_errors() {
    let (dir, lake) = temp_lake();
    let q = write_file(dir.path(), "q.csv", QUESTIONS_CSV);
    let a = write_file(dir.path(), "a.csv", ATTEMPTS_CSV);
    let (ok, out, err) = irtlake(&lake, &["ingest", "questions", q.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("\"inserted\": 4"), "{out}");
    let (ok, _, err) = irtlake(&lake, &["ingest", "attempts", a.to_str().unwrap()]);
    assert!(ok, "{err}");

    let (ok, out, err) = irtlake(
        &lake,
        &[
            "sql",
            "SELECT dt, count(*) AS n FROM attempts GROUP BY dt ORDER BY dt LIMIT 3",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("| dt ") && out.contains("| 2026-03-02 | 2 "),
        "{out}"
    );
    let (ok, out, _) = irtlake(
        &lake,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT question_id FROM questions ORDER BY 1",
        ],
    );
    assert!(ok);
    assert_eq!(out, "question_id\nq1\nq2\nq3\nq4\n");
    let (ok, out, _) = irtlake(
        &lake,
        &[
            "sql",
            "--format",
            "json",
            "SELECT student_id, count(*) AS n FROM attempts GROUP BY 1 ORDER BY 1",
        ],
    );
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"student_id": "s1", "n": 2}, {"student_id": "s2", "n": 2}])
    );
    let f = write_file(dir.path(), "two.sql", "SELECT 1 AS one; SELECT 2 AS two;");
    let (ok, out, _) = irtlake(
        &lake,
        &["sql", "-f", f.to_str().unwrap(), "--format", "csv"],
    );
    assert!(ok);
    assert_eq!(out, "one\n1\ntwo\n2\n");

    let (ok, _, err) = irtlake(&lake, &["sql", "SELECT nope FROM attempts"]);
    assert!(!ok && err.contains("nope"), "{err}");
    let bad = write_file(
        dir.path(),
        "bad.csv",
        "attempt_id,student_id,question_id,correct,completed_at\nx,s,q1,maybe,2026-03-05T10:00:00Z\n",
    );
    let (ok, _, err) = irtlake(&lake, &["ingest", "attempts", bad.to_str().unwrap()]);
    assert!(
        !ok && err.contains("bad.csv") && err.contains("'correct'"),
        "{err}"
    );

    let (ok, out, err) = irtlake(&lake, &["status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("2026-03-02 .. 2026-03-03 over 2 dt partitions"),
        "{out}"
    );
    assert!(out.contains("anchors: 1"), "{out}");
    // the layout: the attempts of two days are two objects in two partitions
    let attempts = out
        .lines()
        .find(|l| l.starts_with("attempts "))
        .unwrap_or_else(|| panic!("no attempts line: {out}"));
    let cols: Vec<&str> = attempts.split_whitespace().collect();
    assert_eq!(&cols[2..4], ["2", "2"], "objects, partitions: {attempts}");
    assert!(out.contains("median KB"), "{out}");
}

/// Every operator check in sql/checks runs on a lake holding only attempts and questions.
#[test]
fn operator_checks_run_on_a_young_lake() {
    let (dir, lake) = temp_lake();
    irtlake(
        &lake,
        &[
            "ingest",
            "questions",
            write_file(dir.path(), "q.csv", QUESTIONS_CSV)
                .to_str()
                .unwrap(),
        ],
    );
    irtlake(
        &lake,
        &[
            "ingest",
            "attempts",
            write_file(dir.path(), "a.csv", ATTEMPTS_CSV)
                .to_str()
                .unwrap(),
        ],
    );
    let checks = workspace_root().join("sql/checks");
    let mut files: Vec<_> = std::fs::read_dir(&checks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    for f in files {
        let (ok, out, err) = irtlake(&lake, &["sql", "-f", f.to_str().unwrap()]);
        assert!(ok, "{}: {err}", f.display());
        if f.ends_with("04_anchors.sql") {
            assert!(out.contains("| math "), "{out}");
        }
    }
}

/// One default lifetime of presigned report URLs: the lake's constant, the reports
/// function's default, Terraform's `report_url_expiry_seconds` and the CLI's help.
#[test]
fn presigned_urls_have_one_default_expiry_everywhere() {
    let secs = lake::DEFAULT_URL_EXPIRY.as_secs();
    assert_eq!(reports::DEFAULT_URL_EXPIRY, lake::DEFAULT_URL_EXPIRY);
    let tf =
        std::fs::read_to_string(workspace_root().join("infra/terraform/variables.tf")).unwrap();
    let block = &tf[tf
        .find("variable \"report_url_expiry_seconds\"")
        .expect("report_url_expiry_seconds in variables.tf")..];
    let default: u64 = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("default"))
        .and_then(|v| v.trim().trim_start_matches('=').trim().parse().ok())
        .expect("a numeric default");
    assert_eq!(
        default, secs,
        "Terraform's default differs from lake::DEFAULT_URL_EXPIRY"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .args(["report", "--help"])
        .env_remove("REPORT_URL_EXPIRY_SECS")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains(&format!("[default: {secs}]")), "{help}");
}

/// A mistyped command or option gets clap's "did you mean" tip.
#[test]
fn typos_get_a_did_you_mean_tip() {
    let (ok, _, stderr) = crate::support::irtlake_cmd(&["sqll"]);
    assert!(!ok);
    assert!(
        stderr.contains("similar subcommand exists: 'sql'"),
        "{stderr}"
    );
    let (ok, _, stderr) = crate::support::irtlake_cmd(&["status", "--lak", "file://x"]);
    assert!(!ok);
    assert!(
        stderr.contains("similar argument exists: '--lake'"),
        "{stderr}"
    );
}

/// `--lake` is an option of the commands that use a lake and of no other: `irt`, `fit`
/// and `completions` neither list nor take it.
#[test]
fn only_commands_with_a_lake_take_lake() {
    let help = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--help");
        let (ok, out, err) = crate::support::irtlake_cmd(&all);
        assert!(ok, "{args:?}: {err}");
        out
    };
    for args in [
        &["irt"][..],
        &["irt", "fit"],
        &["irt", "score"],
        &["irt", "link"],
        &["fit"],
        &["fit", "cox"],
        &["fit", "glmm"],
        &["completions"],
    ] {
        let out = help(args);
        assert!(!out.contains("--lake"), "{args:?} lists --lake:\n{out}");
    }
    for args in [
        &["sql"][..],
        &["status"],
        &["ingest"],
        &["demo-data"],
        &["calibrate"],
        &["stage"],
        &["anchors", "tag"],
        &["export"],
        &["report"],
        &["run"],
    ] {
        let out = help(args);
        assert!(
            out.contains("--lake <URI>") && out.contains("LAKE_URI"),
            "{args:?} does not list --lake:\n{out}"
        );
    }
    let (ok, _, err) = crate::support::irtlake_cmd(&["irt", "fit", "--lake", "file://x"]);
    assert!(!ok && err.contains("unexpected argument '--lake'"), "{err}");
    let (ok, _, err) = crate::support::irtlake_cmd(&["--lake", "file://x", "completions", "bash"]);
    assert!(
        !ok && err.contains("`irtlake completions` uses no lake"),
        "{err}"
    );
}

/// `irtlake completions SHELL` prints a completion script that knows the commands.
#[test]
fn completions_know_the_commands() {
    let (ok, bash, stderr) = crate::support::irtlake_cmd(&["completions", "bash"]);
    assert!(ok, "{stderr}");
    assert!(
        bash.contains("_irtlake()") && bash.contains("calibrate"),
        "{bash}"
    );
    let (ok, zsh, _) = crate::support::irtlake_cmd(&["completions", "zsh"]);
    assert!(ok && zsh.starts_with("#compdef irtlake"));
    let (ok, fish, _) = crate::support::irtlake_cmd(&["completions", "fish"]);
    assert!(ok && fish.contains("complete -c irtlake"));
    let (ok, _, stderr) = crate::support::irtlake_cmd(&["completions", "tcsh"]);
    assert!(!ok && stderr.contains("invalid value 'tcsh'"), "{stderr}");
}

/// `irtlake sql … | head -c 64` ends quietly in every format: exit 141 (SIGPIPE's
/// status), nothing on stderr.
#[test]
fn a_closed_pipe_ends_sql_quietly_in_every_format() {
    use std::io::Read;
    let (dir, lake) = temp_lake();
    crate::support::small_demo(&lake, dir.path(), 300, 1);
    for format in ["table", "csv", "json", "ndjson"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_irtlake"))
            .args(["--lake", &lake.uri().to_uri_string(), "sql"])
            .args(["SELECT * FROM attempts", "--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run irtlake");
        // 64 bytes of a several-MB result (JSON is one line), then the pipe is closed
        let mut first = [0u8; 64];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.trim().is_empty(), "{format}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{format}: {:?}", out.status);
    }
}

/// `demo-data` writes `truth/` beside a local lake by default and refuses a truth folder
/// that holds another lake's truth, writing nothing.
#[test]
fn demo_truth_sits_beside_its_lake_and_is_never_overwritten_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let lake_a = format!("file://{}", dir.path().join("a/lake").display());
    let lake_b = format!("file://{}", dir.path().join("b/lake").display());
    let small = [
        "--students",
        "50",
        "--items",
        "40",
        "--days",
        "7",
        "--anchors",
        "0",
    ];
    let mut args = vec!["--lake", lake_a.as_str(), "demo-data"];
    args.extend_from_slice(&small);
    let (ok, _, stderr) = crate::support::irtlake_cmd(&args);
    assert!(ok, "{stderr}");
    let truth_a = dir.path().join("a/truth");
    assert!(truth_a.join("items.csv").is_file() && truth_a.join("platform.json").is_file());
    let truth_a_text = truth_a.to_str().unwrap().to_string();
    let mut args = vec![
        "--lake",
        lake_b.as_str(),
        "demo-data",
        "--truth-dir",
        &truth_a_text,
    ];
    args.extend_from_slice(&small);
    let (ok, _, stderr) = crate::support::irtlake_cmd(&args);
    assert!(
        !ok && stderr.contains("holds the truth of lake"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("b/lake/attempts").exists(),
        "lake b was written"
    );
    // the same lake may rewrite its own truth
    let mut args = vec!["--lake", lake_a.as_str(), "demo-data"];
    args.extend_from_slice(&small);
    let (ok, _, stderr) = crate::support::irtlake_cmd(&args);
    assert!(ok, "{stderr}");
}
