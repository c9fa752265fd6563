//! The lake on a real S3-protocol server (moto) on 127.0.0.1, and how S3 failures are
//! classified: permanent ones are `Fatal` with a fix, transient ones `Retryable`.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use lake::catalog::ITEM_PARAMS;

use crate::support::{S3Server, item_params_batch};

#[tokio::test]
async fn s3_round_trip_overwrite_escaping_and_sql() {
    let server = S3Server::start("irtlake-test");
    let lake = server.lake("s3://irtlake-test/lakes/one");
    let part = [("run_date", "2026-03-01"), ("bank", "subject:alg/1")];
    lake.write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 5, "r1")])
        .await
        .unwrap();
    lake.write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 3, "r2")])
        .await
        .unwrap();
    lake.write_partition(
        ITEM_PARAMS,
        &[("run_date", "2026-03-01"), ("bank", "all")],
        &[item_params_batch("q", 2, "r3")],
    )
    .await
    .unwrap();
    let objects = lake.list("").await.unwrap();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(
        objects
            .iter()
            .all(|o| o.key.starts_with("item_params/run_date=2026-03-01/bank="))
    );
    let b = lake
        .sql("SELECT bank, count(*) AS n FROM item_params GROUP BY bank ORDER BY bank")
        .await
        .unwrap();
    let banks = b[0].column(0).as_string::<i32>();
    let n = b[0].column(1).as_primitive::<Int64Type>();
    assert_eq!((banks.value(0), n.value(0)), ("all", 2));
    assert_eq!((banks.value(1), n.value(1)), ("subject:alg/1", 3));
    // schema mismatch refused on S3 too, nothing changes
    let bad = item_params_batch("q", 1, "r4");
    let bad = bad.project(&[0, 1]).unwrap();
    assert!(
        lake.write_partition(ITEM_PARAMS, &part, &[bad])
            .await
            .is_err()
    );
    assert_eq!(lake.list("").await.unwrap(), objects);
    // a young table on S3 is empty, not an error
    let b = lake.sql("SELECT count(*) FROM weekly_kpi").await.unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 0);
}

/// Opens a lake on an S3 endpoint with these settings (test keys unless replaced).
fn lake_with(uri: &str, config: &[(&'static str, String)]) -> lake::Lake {
    let refs: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    lake::Lake::open_with(uri, &refs).expect("open S3 lake")
}

/// `irtlake --lake URI ARGS` with the AWS variables of the parent removed and `env` set.
fn irtlake_s3(uri: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_irtlake"));
    cmd.args(["--lake", uri]).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("DATABASE_URL")
        .env_remove("DATABASE_SECRET_ARN")
        .envs(env.iter().copied())
        .output()
        .expect("run irtlake")
}

#[test]
fn a_missing_bucket_fails_the_run_as_fatal_with_a_fix_and_is_not_retried() {
    let server = S3Server::start("irtlake-test");
    let out = irtlake_s3(
        "s3://nosuchbucket/x",
        &[
            "run",
            "--from",
            "calibrate",
            "--run-date",
            "2026-02-01",
            "--retry-delay-scale",
            "0",
        ],
        &[
            ("AWS_ENDPOINT_URL", &server.endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    // The CLI refuses the lake before the run when opening it (`no irtlake lake` check,
    // lake/src/presence.rs) finds the bucket missing; a stage that gets that far (as in
    // Lambda) fails once as Fatal: the state machine's Retry does not match it.
    let calls: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("calibrate"))
        .collect();
    assert!(calls.len() <= 1, "retried:\n{stdout}\n{stderr}");
    if let Some(call) = calls.first() {
        assert!(call.contains("failed: Fatal.Lake"), "{stdout}");
    }
    assert!(!stderr.contains("— retry"), "{stderr}");
    assert!(
        stderr.contains("bucket 'nosuchbucket' does not exist")
            && stderr.contains("check the bucket in the lake URI"),
        "{stderr}"
    );
}

#[tokio::test]
async fn wrong_keys_and_denied_access_on_the_test_server_are_fatal_with_a_fix() {
    let server = S3Server::start_with_auth("irtlake-test");
    let keys = server.auth.clone().unwrap();
    // The issued keys work.
    let lake = server.lake("s3://irtlake-test/x");
    lake.write_partition(
        ITEM_PARAMS,
        &[("run_date", "2026-03-01"), ("bank", "all")],
        &[item_params_batch("q", 2, "r1")],
    )
    .await
    .unwrap();
    assert_eq!(lake.list("").await.unwrap().len(), 1);
    for (key, secret, fix) in [
        (keys.key_id.as_str(), "wrong", "AWS_SECRET_ACCESS_KEY"),
        ("AKIAUNKNOWN000000000", "wrong", "AWS_ACCESS_KEY_ID"),
        (&keys.denied_key_id, &keys.denied_secret, "access denied"),
    ] {
        let mut cfg = server.config();
        cfg.retain(|(k, _)| !k.contains("_key"));
        cfg.push(("aws_access_key_id", key.to_string()));
        cfg.push(("aws_secret_access_key", secret.to_string()));
        let lake = lake_with("s3://irtlake-test/x", &cfg);
        let e = lake.list("").await.unwrap_err();
        assert!(!e.is_retryable(), "{fix}: {e}");
        assert!(e.to_string().contains(fix), "{fix}: {e}");
        let e = lake
            .sql("SELECT count(*) FROM item_params")
            .await
            .unwrap_err();
        assert!(!e.is_retryable(), "{fix} in a query: {e}");
    }
}

/// S3's refusals replayed by [`FakeS3`], including the wrong-region answers the test
/// server never gives (moto serves every region).
#[tokio::test]
async fn refused_credentials_and_a_wrong_region_are_fatal_with_a_fix_and_asked_once() {
    use crate::support::{FakeReply, FakeS3};
    for (status, code, fix) in [
        (403, "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"),
        (403, "InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
        (403, "AccessDenied", "access denied"),
        (400, "AuthorizationHeaderMalformed", "set AWS_REGION"),
        (301, "PermanentRedirect", "set AWS_REGION"),
    ] {
        let fake = FakeS3::start(FakeReply::Error(status, code));
        let lake = lake_with("s3://irtlake-test/x", &fake.config());
        let e = lake.list("").await.unwrap_err();
        assert!(!e.is_retryable(), "{code}: {e}");
        assert!(e.to_string().contains(fix), "{code}: {e}");
        let e = lake.sql("SELECT count(*) FROM attempts").await.unwrap_err();
        assert!(!e.is_retryable(), "{code} in a query: {e}");
        assert!(e.to_string().contains(fix), "{code} in a query: {e}");
        assert_eq!(fake.requests(), 2, "{code}: one request each, no retries");
    }
}

#[tokio::test]
async fn throttling_and_dropped_connections_stay_retryable() {
    use crate::support::{FakeReply, FakeS3};
    let slow = FakeS3::start(FakeReply::Error(503, "SlowDown"));
    let hangup = FakeS3::start(FakeReply::Hangup);
    let (a, b) = (
        lake_with("s3://irtlake-test/x", &slow.config()),
        lake_with("s3://irtlake-test/x", &hangup.config()),
    );
    // object_store retries these itself first (several requests), then gives up.
    let (ea, eb) = tokio::join!(a.list(""), b.get_object("k"));
    let (ea, eb) = (ea.unwrap_err(), eb.unwrap_err());
    assert!(ea.is_retryable(), "503 SlowDown: {ea}");
    assert!(eb.is_retryable(), "dropped connection: {eb}");
    assert!(slow.requests() > 1 && hangup.requests() > 1);
}

#[tokio::test]
async fn no_credentials_at_all_says_so_instead_of_a_metadata_service_error() {
    use crate::support::{FakeReply, FakeS3};
    // The chain finds no keys and asks the instance metadata service, which refuses
    // (as it does off EC2 behind a proxy): a 403 from its token URL.
    let imds = FakeS3::start(FakeReply::Error(403, "Forbidden"));
    let s3 = FakeS3::start(FakeReply::Error(500, "InternalError"));
    let mut cfg = s3.config();
    cfg.retain(|(k, _)| !k.contains("_key"));
    cfg.push(("aws_metadata_endpoint", imds.endpoint.clone()));
    let lake = lake_with("s3://irtlake-test/x", &cfg);
    let e = lake.list("").await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("no AWS credentials found ("), "{msg}");
    assert!(!msg.contains("latest/api/token"), "{msg}");
    assert!(!e.is_retryable(), "{msg}");
    assert_eq!(s3.requests(), 0, "nothing was sent to S3 unsigned");

    // With the metadata service turned off, the lake says so at once.
    let server = S3Server::start("irtlake-test");
    let out = irtlake_s3(
        "s3://irtlake-test/x",
        &["sql", "SELECT count(*) FROM attempts"],
        &[
            ("AWS_ENDPOINT_URL", &server.endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no AWS credentials found"), "{stderr}");
    assert!(stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    assert!(!stderr.contains("169.254.169.254"), "{stderr}");
}

/// A paused S3 server (every request hangs): with one attempt's timeout and the retry
/// budget bounded (`aws_timeout`, `max_retries`, `retry_timeout_secs`), a write and a
/// read fail within seconds as retryable errors (Step Functions' Retry takes over), the
/// partition holds one whole object (old or new: a timed-out PUT may still land), and the
/// same write after the server resumes converges.
#[tokio::test]
async fn a_paused_server_fails_fast_as_retryable_and_a_rerun_converges() {
    let server = S3Server::start("irtlake-test");
    let uri = "s3://irtlake-test/paused";
    let lake = server.lake(uri);
    let part = [("run_date", "2026-03-01"), ("bank", "all")];
    lake.write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 5, "r1")])
        .await
        .unwrap();
    let mut config = server.config();
    config.extend([
        ("aws_timeout", "1s".to_string()),
        ("max_retries", "1".to_string()),
        ("retry_timeout_secs", "3".to_string()),
    ]);
    let impatient = lake_with(uri, &config);
    // bad retry settings are refused when the lake is opened
    let mut bad = server.config();
    bad.push(("max_retries", "1000".to_string()));
    let refs: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert!(lake::Lake::open_with(uri, &refs).is_err());

    server.pause();
    let write = impatient
        .write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 3, "r2")])
        .await;
    let read = impatient.sql("SELECT count(*) FROM item_params").await;
    server.resume();
    let write = write.expect_err("a write to a paused server fails");
    assert!(write.is_retryable(), "{write}");
    let read = read.expect_err("a read from a paused server fails");
    assert!(read.is_retryable(), "{read}");
    // A timed-out PUT may still land: the kernel had buffered it and the server
    // answers it after resuming. The partition is the old object or the new one, whole.
    let rows = crate::support::count(&lake, "SELECT count(*) FROM item_params").await;
    assert!(
        rows == 5 || rows == 3,
        "{rows} rows: neither the old nor the new object"
    );
    assert_eq!(lake.list("item_params").await.unwrap().len(), 1);
    impatient
        .write_partition(ITEM_PARAMS, &part, &[item_params_batch("q", 3, "r2")])
        .await
        .unwrap();
    assert_eq!(
        crate::support::count(&lake, "SELECT count(*) FROM item_params").await,
        3
    );
    assert_eq!(lake.list("item_params").await.unwrap().len(), 1);
}
