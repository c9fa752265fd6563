//! The `irtlake` binary as a Lambda function: started with `AWS_LAMBDA_RUNTIME_API`
//! pointing at cargo-lambda's Runtime API emulator (`cargo lambda watch
//! --only-lambda-apis`), it serves the stage named by `STAGE` against a lake on the
//! S3-protocol test server. Events go in with `cargo lambda invoke`; the test checks
//! the responses, the stable error names and the lake output.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{S3Server, workspace_root};

fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var("IRTLAKE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv"));
    let bin = venv.join("bin").join(name);
    assert!(
        bin.exists(),
        "{} not found: run `make test` (it installs cargo-lambda into the virtualenv)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Runtime API emulator on a loopback port.
struct Emulator {
    _proc: Proc,
    port: u16,
}

impl Emulator {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(venv_bin("cargo-lambda"))
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(workspace_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo lambda watch");
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the emulator did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Emulator { _proc: proc, port }
    }

    /// Starts the irtlake binary as the function serving `stage`.
    fn function(&self, s3: &S3Server, lake_uri: &str, stage: &str, log: &std::path::Path) -> Proc {
        self.function_with(s3, lake_uri, stage, log, &[])
    }

    /// As [`Self::function`], with extra environment variables.
    fn function_with(
        &self,
        s3: &S3Server,
        lake_uri: &str,
        stage: &str,
        log: &std::path::Path,
        extra_env: &[(&str, &str)],
    ) -> Proc {
        let child = Command::new(env!("CARGO_BIN_EXE_irtlake"))
            .env_remove("DATABASE_URL")
            .envs(extra_env.iter().copied())
            .envs(s3_env(s3))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
            .env("STAGE", stage)
            .env("LAKE_URI", lake_uri)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the function");
        Proc(child)
    }

    /// Sends one event; `Ok(response)` or `Err(error name and message)`.
    fn invoke(&self, event: &str) -> Result<Value, String> {
        let out: Output = Command::new(venv_bin("cargo-lambda"))
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P"])
            .arg(self.port.to_string())
            .args(["_", "--data-ascii", event])
            .current_dir(workspace_root())
            .output()
            .expect("cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}")))
        } else {
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        }
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
async fn the_binary_serves_stages_under_the_lambda_runtime_api_against_s3() {
    let s3 = S3Server::start("lambda-lake");
    let uri = "s3://lambda-lake/lake";
    let dir = tempfile::tempdir().unwrap();
    // A small demo platform written straight into the S3 lake.
    let out = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .envs(s3_env(&s3))
        .args([
            "--lake",
            uri,
            "demo-data",
            "--students",
            "400",
            "--items",
            "60",
        ])
        .args([
            "--days",
            "21",
            "--anchors",
            "10",
            "--seed",
            "9",
            "--truth-dir",
        ])
        .arg(dir.path().join("truth"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let emulator = Emulator::start();

    // calibrate, served by the binary as the Lambda function.
    let log = dir.path().join("calibrate.log");
    let f = emulator.function(&s3, uri, "calibrate", &log);
    let summary = emulator
        .invoke(r#"{"run_date": "2026-01-25", "bank": "all"}"#)
        .expect("calibrate succeeds");
    assert_eq!(summary["status"], "calibrated", "{summary}");
    assert_eq!(summary["bank"], "all");
    assert!(summary["n_items"].as_u64().unwrap() > 40, "{summary}");
    // A bad event: a stable error name for Step Functions, and the function keeps serving.
    let err = emulator
        .invoke(r#"{"run_date": "2026-01-25", "bank": "all", "color": "red"}"#)
        .unwrap_err();
    assert!(
        err.contains("Fatal.InvalidInput") && err.contains("color"),
        "{err}"
    );
    let err = emulator
        .invoke(r#"{"run_date": "not a date"}"#)
        .unwrap_err();
    assert!(err.contains("Fatal.InvalidInput"), "{err}");
    drop(f);
    // JSON logs, one object per line, with the request id of each event.
    let logs = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "ready"),
        "{logs}"
    );
    assert!(logs.contains("requestId"), "{logs}");

    // score_topics, a second stage, reads what calibrate wrote.
    let f = emulator.function(&s3, uri, "score_topics", &dir.path().join("topics.log"));
    let summary = emulator
        .invoke(r#"{"run_date": "2026-01-25", "run_ts": "2026-01-26T03:00:00Z"}"#)
        .expect("score_topics succeeds");
    assert!(summary["rows"].as_u64().unwrap() > 0, "{summary}");
    drop(f);

    let lake = s3.lake(uri);
    let n = crate::support::count(
        &lake,
        "SELECT count(*) FROM student_topic_theta WHERE run_date = '2026-01-25'",
    )
    .await;
    assert_eq!(n as u64, summary["rows"].as_u64().unwrap());
    let fit = lake.list("fit_meta/").await.unwrap();
    assert_eq!(fit.len(), 1, "one fit_meta object for (run_date, bank)");
}

#[test]
fn a_function_with_an_unknown_stage_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("STAGE", "nope")
        .env("LAKE_URI", "file:///nonexistent-lake")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("STAGE=nope") && text.contains("calibrate"),
        "{text}"
    );
}

/// Creates a Secrets Manager secret on the test server (boto3 from the virtualenv, which
/// moto brings) and returns its ARN.
fn create_secret(s3: &S3Server, name: &str, value: &str) -> String {
    let script = "import sys, boto3\n\
        c = boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                         aws_access_key_id='test', aws_secret_access_key='test')\n\
        print(c.create_secret(Name=sys.argv[2], SecretString=sys.argv[3])['ARN'])\n";
    let out = Command::new(venv_bin("python"))
        .args(["-c", script, &s3.endpoint, name, value])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn the_export_function_reads_its_database_url_from_secrets_manager() {
    let pg = crate::export_pg::platform();
    let s3 = S3Server::start("export-lake");
    let uri = "s3://export-lake/lake";
    let arn = create_secret(&s3, "irtlake/database-url", &pg.url(crate::export_pg::DB));
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start();
    // The function's environment names the secret, not the URL.
    let log = dir.path().join("export.log");
    let f = emulator.function_with(
        &s3,
        uri,
        "export_attempts",
        &log,
        &[("DATABASE_SECRET_ARN", &arn)],
    );
    let summary = emulator
        .invoke(r#"{"run_date": "2026-03-05"}"#)
        .expect("the export succeeds");
    assert!(summary["attempts"].as_u64().unwrap() > 0, "{summary}");
    drop(f);
    let lake = s3.lake(uri);
    let days = lake.list("attempts/").await.unwrap();
    assert_eq!(
        days.len(),
        2,
        "the default window: the run date and the day before"
    );
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logs.contains("postgres://"),
        "the URL is never logged: {logs}"
    );

    // The secret is read at every export (a rotated password is picked up): a secret
    // that does not exist fails the invocation with a fatal error naming it.
    let f = emulator.function_with(
        &s3,
        uri,
        "export_attempts",
        &dir.path().join("bad.log"),
        &[(
            "DATABASE_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
        )],
    );
    let err = emulator
        .invoke(r#"{"run_date": "2026-03-05"}"#)
        .unwrap_err();
    assert!(
        err.contains("Fatal.InvalidInput") && err.contains("secret:nope"),
        "{err}"
    );
    drop(f);
}
