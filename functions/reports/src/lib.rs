//! Stage `reports`: weekly HTML reports per student and for the cohort, stored as
//! artifacts with URLs in `report_artifacts`.
//!
//! (Skeleton: the implementation lands with issue 6.)

use chrono::NaiveDate;
use lake::Lake;
use lake::runs::StageError;
use serde::{Deserialize, Serialize};

/// The event of the stage (JSON, as sent by the state machine or the CLI).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsInput {
    /// The day the run is for (UTC); the report week is the week containing it unless `week_start` is given.
    pub run_date: Option<NaiveDate>,
    /// Time written on every output row (RFC 3339); default now.
    pub run_ts: Option<chrono::DateTime<chrono::Utc>>,
    /// Monday of the report week.
    pub week_start: Option<NaiveDate>,
    /// This shard's number in `0..shards` (students whose id hash modulo `shards` is `shard`).
    pub shard: Option<u32>,
    /// Number of shards (default 1).
    pub shards: Option<u32>,
    /// Only this student.
    pub student: Option<String>,
    /// Language of the text: `en` (default) or `ko`.
    pub lang: Option<String>,
}

/// What the stage did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportsOutput {
    /// Student reports written.
    pub student_reports: u64,
}

/// Default lifetime of presigned report URLs on S3 (7 days).
pub const DEFAULT_URL_EXPIRY: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Runs the stage; presigned URLs (S3 lakes) live for `url_expiry`.
pub async fn run(
    _lake: &Lake,
    _input: &ReportsInput,
    _url_expiry: std::time::Duration,
) -> Result<ReportsOutput, StageError> {
    Err(StageError::InvalidInput("not implemented yet".into()))
}
