//! Test harness: temporary lakes, fixture batches, an S3-protocol server
//! (`moto_server` from the Makefile's virtualenv) on 127.0.0.1, stopped on drop, and a
//! fake S3 that answers every request with one failure.

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
    // the item-fit columns that follow are nullable: null here
    let mut cols = cols;
    for field in def.file_schema.fields().iter().skip(cols.len()) {
        cols.push(arrow::array::new_null_array(field.data_type(), n));
    }
    RecordBatch::try_new(def.file_schema.clone(), cols).unwrap()
}

/// The test virtualenv (`IRTLAKE_VENV`, else `.venv` at the workspace root): `make test`
/// installs the Python tools the tests use into it.
pub fn venv() -> PathBuf {
    std::env::var("IRTLAKE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv"))
}

/// The virtualenv's Python, which has `tools` (e.g. "pyarrow and duckdb"); fails with a
/// clear message when it is missing (`make test` installs it).
pub fn venv_python(tools: &str) -> PathBuf {
    let python = venv().join("bin/python");
    assert!(
        python.exists(),
        "{} not found: run `make test` (it installs {tools} into the virtualenv)",
        python.display()
    );
    python
}

/// Runs the `irtlake` binary with `args` (no lake option added): (success, stdout, stderr).
pub fn irtlake_cmd(args: &[&str]) -> (bool, String, String) {
    outcome(
        Command::new(env!("CARGO_BIN_EXE_irtlake"))
            .args(args)
            .output()
            .expect("run irtlake"),
    )
}

/// A finished command as (success, stdout, stderr), the output decoded lossily.
pub fn outcome(out: std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    /// Keys of a server started with [`S3Server::start_with_auth`].
    pub auth: Option<S3Keys>,
}

/// Access keys issued by a server that checks them ([`S3Server::start_with_auth`]).
#[derive(Debug, Clone)]
pub struct S3Keys {
    /// A user allowed `s3:*`.
    pub key_id: String,
    /// Its secret.
    pub secret: String,
    /// A user with no policy: every S3 request is `AccessDenied`.
    pub denied_key_id: String,
    /// Its secret.
    pub denied_secret: String,
}

/// Creates, with the first unauthenticated actions of a moto server that checks
/// credentials, a user allowed `s3:*` and one with no policy (5 actions), then the
/// bucket as the allowed user. Prints the four keys, one a line.
const MOTO_AUTH_SETUP: &str = "import sys, json, boto3\n\
ep, bucket = sys.argv[1], sys.argv[2]\n\
iam = boto3.client('iam', endpoint_url=ep, region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x')\n\
iam.create_user(UserName='lake')\n\
iam.put_user_policy(UserName='lake', PolicyName='s3', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}]}))\n\
k = iam.create_access_key(UserName='lake')['AccessKey']\n\
iam.create_user(UserName='nobody')\n\
d = iam.create_access_key(UserName='nobody')['AccessKey']\n\
boto3.client('s3', endpoint_url=ep, region_name='us-east-1', aws_access_key_id=k['AccessKeyId'], aws_secret_access_key=k['SecretAccessKey']).create_bucket(Bucket=bucket)\n\
print(k['AccessKeyId']); print(k['SecretAccessKey']); print(d['AccessKeyId']); print(d['SecretAccessKey'])\n";

impl S3Server {
    /// Starts `moto_server` and creates `bucket`. Fails with a clear message if the
    /// virtualenv is missing (`make test` installs it).
    pub fn start(bucket: &str) -> Self {
        Self::start_inner(bucket, false)
    }

    /// As [`S3Server::start`], but the server checks credentials like S3 (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`): unknown keys are `InvalidAccessKeyId`, a wrong
    /// secret `SignatureDoesNotMatch`, a user without a policy `AccessDenied`. The keys
    /// are in [`S3Server::auth`]; [`S3Server::config`] uses the allowed user's.
    pub fn start_with_auth(bucket: &str) -> Self {
        Self::start_inner(bucket, true)
    }

    fn start_inner(bucket: &str, auth: bool) -> Self {
        let bin = venv().join("bin/moto_server");
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
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "5");
        }
        let child = cmd.spawn().expect("start moto_server");
        let mut server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            auth: None,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if auth {
            let out = Command::new(venv().join("bin/python"))
                .args(["-c", MOTO_AUTH_SETUP, &server.endpoint, bucket])
                .output()
                .expect("run the virtualenv's python");
            assert!(
                out.status.success(),
                "setting up users on moto: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let keys: Vec<&str> = text.lines().map(str::trim).collect();
            assert_eq!(keys.len(), 4, "{text}");
            server.auth = Some(S3Keys {
                key_id: keys[0].into(),
                secret: keys[1].into(),
                denied_key_id: keys[2].into(),
                denied_secret: keys[3].into(),
            });
            return server;
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
        let (key, secret) = match &self.auth {
            Some(k) => (k.key_id.clone(), k.secret.clone()),
            None => ("test".into(), "test".into()),
        };
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", key),
            ("aws_secret_access_key", secret),
            ("aws_allow_http", "true".into()),
        ]
    }

    /// Pauses the server process (`SIGSTOP`): connections are still accepted by the
    /// kernel, but no request is answered — an S3 endpoint that hangs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resumes a paused server (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} moto_server");
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
        // a paused process is killed too (SIGKILL needs no SIGCONT)
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`FakeS3`] answers to every request.
#[derive(Debug, Clone, Copy)]
pub enum FakeReply {
    /// This HTTP status with an S3 error document carrying this `<Code>`.
    Error(u16, &'static str),
    /// Reads the request, then closes the connection without an answer.
    Hangup,
}

/// A stand-in for S3 on a loopback port that answers every request the same way: the
/// failures the real test server cannot produce on demand (moto does not check
/// signatures, is never throttled, never drops a connection). Counts the requests;
/// stopped on drop.
pub struct FakeS3 {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    requests: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeS3 {
    /// Starts the server.
    pub fn start(reply: FakeReply) -> Self {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (n, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = conn else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                // The request head, then as many body bytes as it announces.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(p + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
                n.fetch_add(1, Ordering::SeqCst);
                match reply {
                    FakeReply::Hangup => drop(s),
                    FakeReply::Error(status, code) => {
                        let body = format!(
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                             <Message>fake S3 says {code}</Message><RequestId>1</RequestId></Error>"
                        );
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                }
            }
        });
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            requests,
            stop,
            port,
            thread: Some(thread),
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// object_store settings that reach this server (test keys, as for [`S3Server`]).
    pub fn config(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
            ("aws_allow_http", "true".into()),
        ]
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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

/// A demo platform of `[students, items, days, anchors]` (starting 2026-01-05) written
/// into `lake` by `irtlake demo-data`, its truth in `truth`; `extra` adds flags (a
/// seed, planted drift, …).
pub fn demo_platform(lake: &Lake, truth: &std::path::Path, size: [u32; 4], extra: &[&str]) {
    let [students, items, days, anchors] = size.map(|n| n.to_string());
    let args = [
        "--students",
        &students,
        "--items",
        &items,
        "--days",
        &days,
        "--anchors",
        &anchors,
    ];
    demo_data(lake, truth, &[&args[..], extra].concat());
}

/// A demo platform of `size` (see [`demo_platform`], `extra` flags) with bank `all`
/// calibrated on `calibrated_on` (`None`: not calibrated), as a fresh copy — `lake/`
/// and `truth/` in its own temporary folder — that the test may change freely.
///
/// The platform and its calibration are built once per build of the binaries into
/// `<target>/tmp/demo-lakes/<key>` (the key hashes the arguments and the modification
/// times of `irtlake` and of this test binary, so a rebuilt stage never reads a stale
/// lake), under a file lock that makes concurrent test processes wait for one builder;
/// every test then copies it. Tests that share a setup share its cost.
pub async fn calibrated_demo_lake(
    size: [u32; 4],
    extra: &[&str],
    calibrated_on: Option<&str>,
) -> (tempfile::TempDir, Lake) {
    use std::hash::{Hash, Hasher};
    let mtime = |p: PathBuf| {
        std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .map(|t| format!("{t:?}"))
            .unwrap_or_default()
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (size, extra, calibrated_on).hash(&mut h);
    mtime(PathBuf::from(env!("CARGO_BIN_EXE_irtlake"))).hash(&mut h);
    mtime(std::env::current_exe().expect("test binary")).hash(&mut h);
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-lakes");
    std::fs::create_dir_all(&root).expect("cache folder");
    let key = format!("{:016x}", h.finish());
    let cached = root.join(&key);
    let lock = std::fs::File::create(root.join(format!("{key}.lock"))).expect("lock file");
    lock.lock().expect("lock the demo-lake cache");
    if !cached.exists() {
        prune_stale_demo_lakes(&root);
        let building = root.join(format!("{key}.building"));
        let _ = std::fs::remove_dir_all(&building);
        let lake = Lake::open(&format!("file://{}", building.join("lake").display()))
            .expect("open the cache lake");
        demo_platform(&lake, &building.join("truth"), size, extra);
        if let Some(d) = calibrated_on {
            calibrate::run(&lake, &calibrate::CalibrateInput::new(day(d)))
                .await
                .expect("calibrate the cached demo lake");
        }
        std::fs::rename(&building, &cached).expect("publish the cached demo lake");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&cached, dir.path());
    drop(lock);
    let lake = Lake::open(&format!("file://{}", dir.path().join("lake").display())).expect("open");
    (dir, lake)
}

/// Removes cached demo lakes older than this test binary (built by an earlier build;
/// no key of this build can name them) that no other test process is using: each is
/// removed only under its own key's lock, taken without waiting, and its lock file
/// goes with it. (`target/tmp` is shared by every profile, so a concurrent run of
/// another build may hold one.)
fn prune_stale_demo_lakes(root: &std::path::Path) {
    let built = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified());
    let (Ok(built), Ok(entries)) = (built, std::fs::read_dir(root)) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < built);
        let name = entry.file_name().to_string_lossy().to_string();
        let key = name.strip_suffix(".building").unwrap_or(&name).to_string();
        if !(stale && entry.file_type().is_ok_and(|t| t.is_dir())) {
            continue;
        }
        let lock_path = root.join(format!("{key}.lock"));
        let Ok(lock) = std::fs::File::create(&lock_path) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(entry.path());
            let _ = std::fs::remove_file(&lock_path);
        }
    }
}

/// Copies the files under `from` into `to` (folders created as needed).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The last day of [`small_demo`]'s platform (it starts on 2026-01-05 and runs 28 days).
pub const SMALL_DEMO_LAST_DAY: &str = "2026-02-01";
/// The state machine's start time that [`irtlake_run`] passes (the morning after).
pub const SMALL_DEMO_START_TIME: &str = "2026-02-02T03:00:00Z";

/// The small demo platform of the pipeline tests: `students` students, 80 questions (12
/// anchors), 28 days, `seed`; its truth in `dir/truth`.
pub fn small_demo(lake: &Lake, dir: &std::path::Path, students: u32, seed: u32) {
    let seed = seed.to_string();
    demo_platform(
        lake,
        &dir.join("truth"),
        [students, 80, 28, 12],
        &["--seed", &seed],
    );
}

/// `irtlake run` on `lake` for [`SMALL_DEMO_LAST_DAY`], retries without delay, no
/// database in the environment, and `extra` arguments.
pub fn irtlake_run(lake: &Lake, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_irtlake"))
        .args(["--lake", &lake.uri().to_uri_string(), "run"])
        .args(["--run-date", SMALL_DEMO_LAST_DAY])
        .args(["--start-time", SMALL_DEMO_START_TIME])
        .args(["--retry-delay-scale", "0"])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_SECRET_ARN")
        .output()
        .expect("run irtlake run")
}

/// A private PostgreSQL cluster (Debian `postgresql`, installed by
/// `tools/install-system-deps.sh`) on a free loopback port with trust authentication,
/// in a temporary folder; stopped (`pg_ctl stop -m immediate`, else by pid) on drop.
///
/// `initdb` and `postgres` refuse to run as root: as root, they run as the `postgres`
/// user on a folder that user owns; otherwise they run directly.
///
/// [`PgServer::start_with_tls`] starts one that only accepts TLS on TCP, with a server
/// certificate (for `localhost` and `127.0.0.1`) signed by a test CA made with the
/// `openssl` command.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as_postgres: bool,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// Time taken by `initdb`.
    pub initdb_time: Duration,
    /// Time taken by `pg_ctl start` (until it accepts connections).
    pub start_time: Duration,
    /// The test CA's certificate (PEM) when started with TLS.
    pub ca_file: Option<PathBuf>,
}

impl PgServer {
    /// The newest `/usr/lib/postgresql/<version>/bin` (or `$PG_BIN`).
    fn bin_dir() -> PathBuf {
        if let Ok(dir) = std::env::var("PG_BIN") {
            return PathBuf::from(dir);
        }
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        dirs.sort();
        dirs.pop().map(|(_, b)| b).unwrap_or_else(|| {
            panic!(
                "PostgreSQL not found in /usr/lib/postgresql/<version>/bin: run `make test` \
                 (tools/install-system-deps.sh installs the Debian package postgresql) or set PG_BIN"
            )
        })
    }

    fn id_of(args: &[&str]) -> u32 {
        let out = Command::new("id").args(args).output().expect("run id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("id {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// A command running the server program `prog`, as `postgres` when we are root.
    fn server_cmd(&self, prog: &str) -> Command {
        let exe = self.bin.join(prog);
        let mut cmd = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `initdb` and starts the server; panics with the server log on failure.
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// As [`PgServer::start`], with `ssl=on` and a `pg_hba.conf` that accepts TCP
    /// connections with TLS only (`hostssl … trust`, `hostnossl … reject`): a client that
    /// gets in over TCP is encrypted. The CA is in [`PgServer::ca_file`].
    pub fn start_with_tls() -> Self {
        Self::start_inner(true)
    }

    /// Makes the test CA and the server's key and certificate in the server's folder;
    /// returns the `postgres` options that enable TLS.
    fn make_certificates(&self) -> String {
        let dir = self.dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl (the openssl command makes the test certificates)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "7",
                    "-subj",
                    "/CN=irtlake test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req", "-new"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "7",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        // The server refuses a key others can read; as root, the key must be postgres's.
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod server.key");
        if self.run_as_postgres {
            let uid = Self::id_of(&["-u", "postgres"]);
            for f in ["server.key", "server.crt"] {
                std::os::unix::fs::chown(dir.join(f), Some(uid), None).expect("chown");
            }
        }
        std::fs::write(
            self.data().join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("write pg_hba.conf");
        format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            dir.join("server.crt").display(),
            key.display()
        )
    }

    fn start_inner(tls: bool) -> Self {
        let bin = Self::bin_dir();
        let run_as_postgres = Self::id_of(&["-u"]) == 0;
        let dir = tempfile::tempdir().expect("temp dir");
        if run_as_postgres {
            let (uid, gid) = (
                Self::id_of(&["-u", "postgres"]),
                Self::id_of(&["-g", "postgres"]),
            );
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let mut server = Self {
            dir,
            bin,
            run_as_postgres,
            port: 0,
            initdb_time: Duration::ZERO,
            start_time: Duration::ZERO,
            ca_file: None,
        };
        let t = Instant::now();
        let out = server
            .server_cmd("initdb")
            .arg("-D")
            .arg(server.data())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        server.initdb_time = t.elapsed();
        let tls_opts = if tls {
            let opts = server.make_certificates();
            server.ca_file = Some(server.dir.path().join("ca.crt"));
            opts
        } else {
            String::new()
        };
        // A free port can be taken between the probe and the start: try a few.
        let log = server.dir.path().join("server.log");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c full_page_writes=off{tls_opts}",
                server.dir.path().display()
            );
            let t = Instant::now();
            let out = server
                .server_cmd("pg_ctl")
                .arg("-D")
                .arg(server.data())
                .arg("-l")
                .arg(&log)
                .args(["-o", &opts, "-w", "-t", "60", "start"])
                .output()
                .expect("run pg_ctl start");
            if out.status.success() {
                server.port = port;
                server.start_time = t.elapsed();
                return server;
            }
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// URL of database `db` (user `postgres`, trust authentication).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` (one or more statements, may contain `COPY … FROM STDIN` data) with
    /// `psql` on database `db`, stopping at the first error; returns the unaligned,
    /// tuples-only output. Panics with psql's message on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut child = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "psql failed on {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates database `name`.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name};"));
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let stopped = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            // The first line of postmaster.pid is the server's pid.
            let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().map(str::to_string));
            if let Some(pid) = pid {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
        }
    }
}

/// The input of a per-student stage run on `run_date` (with `from` for a backfill),
/// stamped as the state machine would stamp it: `run_ts` at 03:00 UTC the next morning.
pub fn stage_input(run_date: &str, from: Option<&str>) -> lake::runs::StageInput {
    let run_date = day(run_date);
    let run_ts = (run_date + chrono::Days::new(1))
        .and_hms_opt(3, 0, 0)
        .expect("a valid time")
        .and_utc();
    lake::runs::StageInput {
        run_date: Some(run_date),
        run_ts: Some(run_ts),
        from: from.map(day),
        ..Default::default()
    }
}

/// A date from `YYYY-MM-DD`.
pub fn day(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

/// The single integer of a `SELECT count(*) …` query.
pub async fn count(lake: &Lake, sql: &str) -> i64 {
    use arrow::array::AsArray;
    let b = lake.sql(sql).await.unwrap();
    b[0].column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0)
}

/// The rows of a query rendered as text (for before/after comparisons).
pub async fn render(lake: &Lake, sql: &str) -> String {
    let b = lake.sql(sql).await.unwrap();
    arrow::util::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string()
}

/// `(key, value)` pairs of a two-column query (string key, float value; nulls left out).
pub async fn values(lake: &Lake, sql: &str) -> std::collections::HashMap<String, f64> {
    use arrow::array::{Array, AsArray};
    let mut m = std::collections::HashMap::new();
    for b in lake.sql(sql).await.unwrap() {
        let (s, v) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_primitive::<arrow::datatypes::Float64Type>(),
        );
        for r in 0..b.num_rows() {
            if !v.is_null(r) {
                m.insert(s.value(r).to_string(), v.value(r));
            }
        }
    }
    m
}

/// Pearson's correlation of `a` and `b` (same length, ≥ 2 values, not constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}
