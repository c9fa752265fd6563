//! Test harness: temporary lakes, fixture batches, and an S3-protocol server
//! (`moto_server` from the Makefile's virtualenv) on 127.0.0.1, stopped on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use lake::Lake;

/// Workspace root (the tests live in `tests/e2e`, compiled as part of the cli crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh local lake in a temporary folder (kept alive by the returned guard).
pub fn temp_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::open(&format!("file://{}", dir.path().join("lake").display())).expect("open");
    (dir, lake)
}

/// An `item_params` batch with `n` items named `prefix-i`.
pub fn item_params_batch(prefix: &str, n: usize, run_id: &str) -> RecordBatch {
    let def = lake::catalog::table(lake::catalog::ITEM_PARAMS).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let f = |v: f64| -> ArrayRef { Arc::new(Float64Array::from(vec![v; n])) };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(vec!["2pl"; n])),
        Arc::new(Float64Array::from(
            (0..n).map(|i| 1.0 + i as f64 / 10.0).collect::<Vec<_>>(),
        )),
        f(0.0),
        f(0.0),
        f(0.1),
        f(0.1),
        f(0.0),
        Arc::new(Int64Array::from(vec![100; n])),
        f(0.5),
        Arc::new(BooleanArray::from(vec![false; n])),
        Arc::new(BooleanArray::from(vec![false; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![1_700_000_000_000_000; n]).with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(def.file_schema.clone(), cols).unwrap()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A small question bank: 4 questions in 2 topics, one anchor.
pub const QUESTIONS_CSV: &str = "question_id,subject_id,topic_id,tags,irt_a,irt_b,irt_c\n\
q1,math,alg,anchor,1.2,-0.5,0\n\
q2,math,alg,,,,\n\
q3,math,geo,practice|hard,,,\n\
q4,math,geo,,,,\n";

/// Attempts over two days for the bank above.
pub const ATTEMPTS_CSV: &str = "attempt_id,student_id,question_id,correct,completed_at,time_spent_ms,hints_used,session_id\n\
a1,s1,q1,1,2026-03-02T09:00:00Z,30000,0,x1\n\
a2,s1,q2,0,2026-03-02T09:01:00Z,45000,1,x1\n\
a3,s2,q3,true,2026-03-03 10:00:00+00,20000,0,x2\n\
a4,s2,q4,false,2026-03-03 10:02:00,25000,2,x2\n";

/// An S3-protocol server (moto) on a free loopback port with one bucket.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl S3Server {
    /// Starts `moto_server` and creates `bucket`. Fails with a clear message if the
    /// virtualenv is missing (`make test` installs it).
    pub fn start(bucket: &str) -> Self {
        let venv = std::env::var("IRTLAKE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join(".venv"));
        let bin = venv.join("bin/moto_server");
        assert!(
            bin.exists(),
            "{} not found: run `make test` (it installs the S3 test server into the virtualenv)",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Create the bucket (moto accepts an unsigned CreateBucket).
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 200"),
            "CreateBucket failed: {resp}"
        );
        server
    }

    /// object_store settings that reach this server.
    pub fn config(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
            ("aws_allow_http", "true".into()),
        ]
    }

    /// Opens a lake on this server.
    pub fn lake(&self, uri: &str) -> Lake {
        let cfg = self.config();
        let refs: Vec<(&str, &str)> = cfg.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Lake::open_with(uri, &refs).expect("open S3 lake")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `irtlake demo-data ARGS --truth-dir TRUTH` into `lake` and checks it succeeded.
pub fn demo_data(lake: &Lake, truth: &std::path::Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .args(["--lake", &lake.uri().to_uri_string(), "demo-data"])
        .args(args)
        .args(["--truth-dir", truth.to_str().expect("utf-8 path")])
        .output()
        .expect("run irtlake demo-data");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
