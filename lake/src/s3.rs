//! S3 failures, told apart: which are worth retrying and what to tell the user about
//! the others; and the credential check when an S3 lake is opened.
//!
//! `object_store` 0.13 reports an S3 failure as [`object_store::Error`]: `NotFound`
//! (404), `PermissionDenied` (403), `Unauthenticated` (401), `Precondition` (412),
//! `AlreadyExists` (409), and `Generic` for everything else (a list request that
//! failed, other statuses, transport errors, credential fetches). Its retry type is
//! private, so the status and the S3 error code (`<Code>NoSuchBucket</Code>` in the
//! response body) are read from the error's text, which carries both
//! (`Server returned non-2xx status code: 404 Not Found: <?xml …><Code>…`); transport
//! errors are told by [`object_store::client::HttpError::kind`] where the chain holds one.
//!
//! Only throttling (429, `SlowDown`, 503), other 5xx, request timeouts (408,
//! `RequestTimeout`) and transport failures (timeouts, refused or reset connections)
//! are retryable. A missing bucket, denied access, unknown keys, a wrong secret, an
//! expired token, a wrong region, a skewed clock and missing credentials are not: each
//! has a message saying what to fix.

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{HttpError, HttpErrorKind};

use crate::error::{LakeError, Result};

/// What a storage failure means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFailure {
    /// Worth retrying: throttling, a server error, a timeout, a dropped connection,
    /// or a failure not known to be permanent.
    Transient,
    /// Retrying cannot help; the text says what to fix.
    Permanent(String),
}

impl StoreFailure {
    /// True for [`StoreFailure::Transient`].
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreFailure::Transient)
    }
}

/// What to do about a wrong region (S3 redirects, or refuses the signature's region).
const REGION_FIX: &str = "the bucket is in another region than the one the lake uses \
     (AWS_REGION, or us-east-1 when it is not set): set AWS_REGION to the bucket's region";

/// Why the credential chain found nothing, and what to do.
const NO_CREDENTIALS_FIX: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
     AWS_SESSION_TOKEN for temporary credentials), or run where a role provides them \
     (Lambda, ECS task role, EC2 instance profile)";

/// Classifies a storage failure (see the module docs).
pub fn classify(e: &object_store::Error) -> StoreFailure {
    use object_store::Error as E;
    let text = chain_text(e);
    if let Some(fix) = metadata_service_failure(&text) {
        return StoreFailure::Permanent(fix);
    }
    if let Some(class) = s3_code(&text).and_then(|code| classify_code(code, &text)) {
        return class;
    }
    if text.contains("Received redirect without LOCATION") {
        return StoreFailure::Permanent(REGION_FIX.to_string());
    }
    let status = status_of(&text);
    match e {
        E::PermissionDenied { path, .. } | E::Unauthenticated { path, .. } => {
            return StoreFailure::Permanent(if status.is_some() {
                format!(
                    "access to {path} was refused (HTTP {}): check that the credentials \
                     in use may read and write the lake",
                    status.unwrap_or_default()
                )
            } else {
                format!("permission denied on {path}: fix the permissions of the lake folder")
            });
        }
        E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. }
        | E::InvalidPath { .. } => {
            return StoreFailure::Permanent("the lake's store cannot do this".to_string());
        }
        _ => {}
    }
    if http_kind(e).is_some() {
        // Refused, reset or timed-out connections; a body cut short.
        return StoreFailure::Transient;
    }
    match status {
        Some(s) if s >= 500 || s == 429 || s == 408 => StoreFailure::Transient,
        Some(301 | 307) => StoreFailure::Permanent(REGION_FIX.to_string()),
        Some(s @ (400 | 401 | 403 | 405)) => StoreFailure::Permanent(format!(
            "S3 refused the request (HTTP {s}): check the lake URI, the credentials and \
             AWS_REGION"
        )),
        _ => StoreFailure::Transient,
    }
}

/// The error's text with a fix-it prefix when it is permanent.
pub fn describe(e: &object_store::Error) -> String {
    match classify(e) {
        StoreFailure::Transient => e.to_string(),
        // The metadata service's own error (its URL, a 403) would mislead: the problem
        // is that no credentials were configured.
        StoreFailure::Permanent(fix) if fix.starts_with("no AWS credentials found") => fix,
        StoreFailure::Permanent(fix) => format!("{fix} ({e})"),
    }
}

/// The S3 error code of a classified failure: `Some` for a code whose meaning is known.
fn classify_code(code: &str, text: &str) -> Option<StoreFailure> {
    let permanent = |s: String| Some(StoreFailure::Permanent(s));
    match code {
        "SlowDown"
        | "ServiceUnavailable"
        | "InternalError"
        | "RequestTimeout"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequests"
        | "RequestLimitExceeded"
        | "OperationAborted"
        | "IncompleteBody" => Some(StoreFailure::Transient),
        "NoSuchBucket" => {
            let bucket = xml_field(text, "BucketName")
                .map(|b| format!("bucket '{b}'"))
                .unwrap_or_else(|| "the lake's bucket".to_string());
            permanent(format!(
                "{bucket} does not exist (S3 NoSuchBucket): check the bucket in the lake URI \
                 (--lake or LAKE_URI), and AWS_ENDPOINT_URL / AWS_REGION if the bucket is \
                 elsewhere"
            ))
        }
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => permanent(
            "access denied (S3 AccessDenied): the credentials in use may not reach the lake; \
             grant s3:ListBucket on the bucket and s3:GetObject / s3:PutObject on the lake \
             prefix, or use other credentials"
                .to_string(),
        ),
        "InvalidAccessKeyId" => permanent(
            "the access key id is not known to S3 (InvalidAccessKeyId): check \
             AWS_ACCESS_KEY_ID"
                .to_string(),
        ),
        "SignatureDoesNotMatch" => permanent(
            "the request signature does not match (SignatureDoesNotMatch): check that \
             AWS_SECRET_ACCESS_KEY belongs to AWS_ACCESS_KEY_ID"
                .to_string(),
        ),
        "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" => permanent(format!(
            "the session token is expired or invalid ({code}): get fresh credentials \
             (AWS_SESSION_TOKEN with its AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )),
        "RequestTimeTooSkewed" => permanent(
            "this machine's clock is too far from S3's (RequestTimeTooSkewed): set the clock \
             right (NTP)"
                .to_string(),
        ),
        "AuthorizationHeaderMalformed"
        | "PermanentRedirect"
        | "IllegalLocationConstraintException" => permanent(format!("{REGION_FIX} (S3 {code})")),
        "InvalidBucketName" => permanent(
            "the bucket name is not valid (InvalidBucketName): check the lake URI".to_string(),
        ),
        _ => None,
    }
}

/// A failed credential fetch from the EC2 instance metadata service: the chain found no
/// configured credentials and fell back to it. Its URL and a 403 would mislead.
fn metadata_service_failure(text: &str) -> Option<String> {
    let imds = text.contains("169.254.169.254")
        || text.contains("/latest/api/token")
        || text.contains("/latest/meta-data/iam/security-credentials");
    imds.then(|| {
        let why = match status_of(text) {
            Some(s) => format!("HTTP {s}"),
            None => "unreachable".to_string(),
        };
        format!(
            "no AWS credentials found (none in the environment, and the EC2 instance \
             metadata service gave none: {why}): {NO_CREDENTIALS_FIX}"
        )
    })
}

/// Refuses to open an S3 lake that has no way to get credentials: none configured
/// (keys, web identity, container credentials, `aws_skip_signature`) and the instance
/// metadata service turned off (`AWS_EC2_METADATA_DISABLED=true`, as the AWS SDKs and
/// CLI read it). With the service on, the chain asks it at the first request and a
/// failure there is reported the same way ([`classify`]).
pub(crate) fn check_credentials(builder: &AmazonS3Builder, uri: &str) -> Result<()> {
    use AmazonS3ConfigKey as K;
    let set = |k: K| {
        builder
            .get_config_value(&k)
            .is_some_and(|v| !v.trim().is_empty())
    };
    let configured = set(K::AccessKeyId)
        || set(K::SecretAccessKey)
        || (set(K::WebIdentityTokenFile) && set(K::RoleArn))
        || set(K::ContainerCredentialsRelativeUri)
        || (set(K::ContainerCredentialsFullUri) && set(K::ContainerAuthorizationTokenFile))
        || builder
            .get_config_value(&K::SkipSignature)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let imds_disabled = std::env::var("AWS_EC2_METADATA_DISABLED")
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if configured || !imds_disabled {
        return Ok(());
    }
    Err(LakeError::NoCredentials {
        uri: uri.to_string(),
        reason: format!(
            "none in the environment, and AWS_EC2_METADATA_DISABLED=true turns off the EC2 \
             instance metadata service: {NO_CREDENTIALS_FIX}"
        ),
    })
}

/// The error and all its sources, joined by `": "`.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// The kind of the first HTTP transport error in the chain, if any.
fn http_kind(e: &(dyn std::error::Error + 'static)) -> Option<HttpErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if let Some(h) = x.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        cur = x.source();
    }
    None
}

/// The HTTP status in `object_store`'s text (`…status code: 404 Not Found…`).
fn status_of(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text[at..].get(..3)?.parse().ok()
}

/// The S3 error code (`<Code>…</Code>`) in the response body quoted by the error.
fn s3_code(text: &str) -> Option<&str> {
    xml_field(text, "Code")
}

fn xml_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find("</")?;
    let v = text[start..start + len].trim();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose text is what `object_store` 0.13 writes for a failed S3 request
    /// (`RetryError`'s display; the type itself is private).
    #[derive(Debug)]
    struct Text(String);
    impl std::fmt::Display for Text {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Text {}

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(Text(msg.to_string())),
        }
    }

    fn s3_status(status: &str, code: &str) -> String {
        format!(
            "Error performing GET http://127.0.0.1:9/b/k in 2ms - Server returned non-2xx \
             status code: {status}: <?xml version=\"1.0\"?><Error><Code>{code}</Code>\
             <Message>m</Message><BucketName>nosuchbucket</BucketName></Error>"
        )
    }

    #[test]
    fn permanent_s3_failures_say_what_to_fix() {
        let cases = [
            (
                "404 Not Found",
                "NoSuchBucket",
                "bucket 'nosuchbucket' does not exist",
            ),
            ("403 Forbidden", "AccessDenied", "access denied"),
            ("403 Forbidden", "InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
            (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "AWS_SECRET_ACCESS_KEY",
            ),
            ("400 Bad Request", "ExpiredToken", "fresh credentials"),
            (
                "400 Bad Request",
                "AuthorizationHeaderMalformed",
                "AWS_REGION",
            ),
            ("301 Moved Permanently", "PermanentRedirect", "AWS_REGION"),
            ("403 Forbidden", "RequestTimeTooSkewed", "clock"),
        ];
        for (status, code, fix) in cases {
            let e = generic(&s3_status(status, code));
            match classify(&e) {
                StoreFailure::Permanent(m) => assert!(m.contains(fix), "{code}: {m}"),
                StoreFailure::Transient => panic!("{code} classified as transient"),
            }
            assert!(describe(&e).contains(fix));
        }
        let bare = generic(
            "Error performing GET http://s3.amazonaws.com/b in 1ms - Received redirect \
             without LOCATION, this normally indicates an incorrectly configured region",
        );
        assert!(!classify(&bare).is_transient());
        let denied = object_store::Error::PermissionDenied {
            path: "lake/x".into(),
            source: Box::new(Text(
                "Server returned non-2xx status code: 403 Forbidden: ".into(),
            )),
        };
        assert!(!classify(&denied).is_transient());
    }

    #[test]
    fn throttling_server_errors_and_transport_failures_are_retryable() {
        for (status, code) in [
            ("503 Service Unavailable", "SlowDown"),
            ("503 Service Unavailable", "ServiceUnavailable"),
            ("500 Internal Server Error", "InternalError"),
            ("429 Too Many Requests", "Whatever"),
            ("502 Bad Gateway", "Unknown"),
            ("400 Bad Request", "RequestTimeout"),
        ] {
            assert!(
                classify(&generic(&s3_status(status, code))).is_transient(),
                "{status} {code}"
            );
        }
        for kind in [
            HttpErrorKind::Connect,
            HttpErrorKind::Request,
            HttpErrorKind::Timeout,
            HttpErrorKind::Interrupted,
        ] {
            let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            let e = object_store::Error::Generic {
                store: "S3",
                source: Box::new(HttpError::new(kind, reset)),
            };
            assert!(classify(&e).is_transient(), "{kind:?}");
        }
    }

    #[test]
    fn a_failed_metadata_service_fetch_means_no_credentials() {
        let e = generic(
            "Error performing PUT http://169.254.169.254/latest/api/token in 1ms - Server \
             returned non-2xx status code: 403 Forbidden: ",
        );
        let m = describe(&e);
        assert!(m.starts_with("no AWS credentials found ("), "{m}");
        assert!(!m.contains("169.254.169.254"), "{m}");
        assert!(!classify(&e).is_transient());
    }
}
