//! The platform database URL for the export stage in AWS: the Secrets Manager secret
//! named by `DATABASE_SECRET_ARN` (its `SecretString` is the URL), read at every export
//! (see `StageEnv::resolve_database_url`).
//!
//! The secret is read with one signed `GetSecretValue` call (AWS Signature Version 4
//! by `object_store`'s signer, sent with its HTTP client), so the binary carries no AWS
//! SDK. Credentials and region come from the Lambda environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`; the region falls back to
//! the ARN's). `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` overrides the
//! endpoint (tests use a local server). The URL is never logged.

use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{ClientOptions, HttpConnector, HttpRequest, ReqwestConnector};
use serde_json::{Value, json};

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager could not be reached or was busy (network, 5xx, throttling).
    #[error("{0}")]
    Unavailable(String),
    /// The request was refused or the secret is unusable (missing, access denied, no
    /// credentials, empty value): retrying will not help.
    #[error("{0}")]
    Refused(String),
}

impl SecretError {
    /// `Retryable.Timeout` for [`SecretError::Unavailable`], else `Fatal.InvalidInput`.
    pub fn error_name(&self) -> &'static str {
        match self {
            SecretError::Unavailable(_) => lake::runs::ErrorName::RetryableTimeout.as_str(),
            SecretError::Refused(_) => lake::runs::ErrorName::FatalInvalidInput.as_str(),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `SecretString` of the secret `secret_id` (an ARN or a name).
pub async fn secret_string(secret_id: &str) -> Result<String, SecretError> {
    use SecretError::{Refused, Unavailable};
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| secret_id.split(':').nth(3).map(str::to_string))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Refused("no AWS region: set AWS_REGION or use a secret ARN".into()))?;
    let endpoint = env("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
    let credential = AwsCredential {
        key_id: env("AWS_ACCESS_KEY_ID")
            .ok_or_else(|| Refused("AWS_ACCESS_KEY_ID is not set".into()))?,
        secret_key: env("AWS_SECRET_ACCESS_KEY")
            .ok_or_else(|| Refused("AWS_SECRET_ACCESS_KEY is not set".into()))?,
        token: env("AWS_SESSION_TOKEN"),
    };
    let body = json!({ "SecretId": secret_id }).to_string();
    let mut request: HttpRequest = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .body(body.into())
        .map_err(|e| Refused(format!("building the GetSecretValue request: {e}")))?;
    AwsAuthorizer::new(&credential, "secretsmanager", &region)
        .with_sign_payload(true)
        .authorize(&mut request, None);
    let allow_http = endpoint.starts_with("http://");
    let client = ReqwestConnector::default()
        .connect(&ClientOptions::new().with_allow_http(allow_http))
        .map_err(|e| Refused(format!("creating the HTTP client: {e}")))?;
    let response = client
        .execute(request)
        .await
        .map_err(|e| Unavailable(format!("calling Secrets Manager at {endpoint}: {e}")))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .bytes()
        .await
        .map_err(|e| Unavailable(format!("reading the Secrets Manager response: {e}")))?;
    let reply: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let kind = reply
            .get("__type")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        let message = reply
            .get("message")
            .or(reply.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let text = format!("Secrets Manager answered {status}: {kind} {message}");
        let busy = status.is_server_error() || kind.contains("Throttling");
        return Err(if busy {
            Unavailable(text)
        } else {
            Refused(text)
        });
    }
    match reply.get("SecretString").and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(Refused(
            "the secret has no SecretString (store the PostgreSQL URL as text)".into(),
        )),
    }
}
