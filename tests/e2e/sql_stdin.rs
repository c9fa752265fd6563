//! `irtlake sql` reading its SQL from stdin: a pipe without a query, and `-f -`; `--lake`
//! before or after the command's name. (The interactive shell a terminal gets is tested
//! through its line handling, `cli/src/shell.rs`.)

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{QUESTIONS_CSV, outcome, temp_lake, write_file};

/// A lake holding the small question bank: `irtlake sql` needs an existing lake.
fn question_lake() -> (tempfile::TempDir, String) {
    let (dir, lake) = temp_lake();
    let uri = lake.uri().to_uri_string();
    let q = write_file(dir.path(), "q.csv", QUESTIONS_CSV);
    let (ok, _, err) =
        crate::support::irtlake_cmd(&["--lake", &uri, "ingest", "questions", q.to_str().unwrap()]);
    assert!(ok, "{err}");
    (dir, uri)
}

/// Runs `irtlake ARGS` with `stdin` written to a pipe: (success, stdout, stderr).
fn with_stdin(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .args(args)
        .env_remove("LAKE_URI")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run irtlake");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    outcome(child.wait_with_output().unwrap())
}

/// `echo "SELECT 1 AS x;" | irtlake sql` prints the result; `-f -` reads stdin too, every
/// statement of it; a piped script with a bad statement fails with the error and prints
/// no result.
#[test]
fn sql_reads_a_piped_script_from_stdin() {
    let (_dir, uri) = question_lake();
    let (ok, out, err) = with_stdin(&["--lake", &uri, "sql"], "SELECT 1 AS x;\n");
    assert!(ok, "{err}");
    assert!(out.contains("| x |") && out.contains("| 1 |"), "{out}");

    let script = "SELECT count(*) AS n FROM questions;\nSELECT 'a;b' AS s\n  ORDER BY 1;\n";
    let (ok, out, err) = with_stdin(
        &["--lake", &uri, "sql", "-f", "-", "--format", "csv"],
        script,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "n\n4\ns\na;b\n");

    let (ok, out, err) = with_stdin(
        &["--lake", &uri, "sql", "--format", "csv"],
        "SELECT 1 AS one;\nSELECT nope FROM questions;\n",
    );
    assert!(!ok, "{out}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("statement 2") && err.contains("nope"), "{err}");
    let (ok, _, err) = with_stdin(&["--lake", &uri, "sql"], "DROP TABLE questions;");
    assert!(!ok && err.contains("DROP TABLE is refused"), "{err}");
    // nothing piped in: no statement
    let (ok, _, err) = with_stdin(&["--lake", &uri, "sql"], "");
    assert!(!ok && err.contains("no SQL statement"), "{err}");
}

/// `--lake` works before the command's name (scripts) and after it; after it, it also
/// beats `$LAKE_URI`; two different lakes are refused.
#[test]
fn sql_takes_the_lake_before_or_after_the_command() {
    let (_dir, uri) = question_lake();
    let query = "SELECT count(*) AS n FROM questions";
    for args in [
        vec!["--lake", &uri, "sql", "--format", "csv", query],
        vec!["sql", "--lake", &uri, "--format", "csv", query],
        vec![
            "--lake", &uri, "sql", "--lake", &uri, "--format", "csv", query,
        ],
    ] {
        let (ok, out, err) = crate::support::irtlake_cmd(&args);
        assert!(ok, "{args:?}: {err}");
        assert_eq!(out, "n\n4\n", "{args:?}");
    }
    let missing = "file:///nonexistent-irtlake-lake";
    for args in [
        vec!["--lake", &uri, "sql", query],
        vec!["sql", "--lake", &uri, query],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_irtlake"))
            .args(&args)
            .env("LAKE_URI", missing)
            .output()
            .unwrap();
        let (ok, _, err) = outcome(out);
        assert!(ok, "{args:?} with LAKE_URI set: {err}");
    }
    let (ok, _, err) =
        crate::support::irtlake_cmd(&["--lake", &uri, "sql", "--lake", missing, query]);
    assert!(!ok && err.contains("--lake given twice"), "{err}");
}
