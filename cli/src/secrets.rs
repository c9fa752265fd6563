//! The platform database URL for the export stage: `DATABASE_URL`, or in AWS the
//! Secrets Manager secret named by `DATABASE_SECRET_ARN` (its `SecretString` is the URL).
//!
//! The secret is read with one signed `GetSecretValue` call (AWS Signature Version 4
//! by `object_store`'s signer, sent with its HTTP client), so the binary carries no AWS
//! SDK. Credentials and region come from the Lambda environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`; the region falls back to
//! the ARN's). `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` overrides the
//! endpoint (tests use a local server). The URL is never logged.

use anyhow::{Context, Result, bail};
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{ClientOptions, HttpConnector, HttpRequest, ReqwestConnector};
use serde_json::{Value, json};

/// The database URL from the environment: `DATABASE_URL`, else the secret named by
/// `DATABASE_SECRET_ARN`, else `None`.
pub async fn database_url() -> Result<Option<String>> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(Some(url));
    }
    let Ok(arn) = std::env::var("DATABASE_SECRET_ARN") else {
        return Ok(None);
    };
    let url = secret_string(&arn)
        .await
        .with_context(|| format!("reading the secret {arn} (DATABASE_SECRET_ARN)"))?;
    Ok(Some(url))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `SecretString` of the secret `secret_id` (an ARN or a name).
pub async fn secret_string(secret_id: &str) -> Result<String> {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| secret_id.split(':').nth(3).map(str::to_string))
        .filter(|r| !r.is_empty())
        .context("no AWS region: set AWS_REGION or use a secret ARN")?;
    let endpoint = env("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
    let credential = AwsCredential {
        key_id: env("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID is not set")?,
        secret_key: env("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?,
        token: env("AWS_SESSION_TOKEN"),
    };
    let body = json!({ "SecretId": secret_id }).to_string();
    let mut request: HttpRequest = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .body(body.into())
        .context("building the GetSecretValue request")?;
    AwsAuthorizer::new(&credential, "secretsmanager", &region)
        .with_sign_payload(true)
        .authorize(&mut request, None);
    let allow_http = endpoint.starts_with("http://");
    let client = ReqwestConnector::default()
        .connect(&ClientOptions::new().with_allow_http(allow_http))
        .context("creating the HTTP client")?;
    let response = client
        .execute(request)
        .await
        .with_context(|| format!("calling Secrets Manager at {endpoint}"))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .bytes()
        .await
        .context("reading the Secrets Manager response")?;
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
        bail!("Secrets Manager answered {status}: {kind} {message}");
    }
    match reply.get("SecretString").and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => bail!("the secret has no SecretString (store the PostgreSQL URL as text)"),
    }
}
