//! The platform database URL: `DATABASE_URL`, or in AWS the Secrets Manager secret
//! named by `DATABASE_SECRET_ARN`. (Stub: lands with issue 7.)

use anyhow::Result;

/// The database URL from the environment, if configured.
pub async fn database_url() -> Result<Option<String>> {
    Ok(std::env::var("DATABASE_URL").ok())
}
