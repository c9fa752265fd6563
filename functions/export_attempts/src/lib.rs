//! Stage `export_attempts`: copies the platform's PostgreSQL `attempt` view and
//! `question` table into the lake's `attempts` and `questions` tables.
//!
//! (Skeleton: the implementation lands with issue 7.)

use chrono::NaiveDate;
use lake::Lake;
use serde::{Deserialize, Serialize};

/// The event of the stage (JSON, as sent by the state machine or the CLI).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// The day the run is for (UTC); the default window is the day before and this day.
    pub run_date: Option<NaiveDate>,
    /// First day to export (UTC, inclusive); default `run_date - 1`.
    pub from: Option<NaiveDate>,
    /// Last day to export (UTC, inclusive); default `run_date`.
    pub to: Option<NaiveDate>,
}

/// What the stage did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportOutput {
    /// Attempts written.
    pub attempts: u64,
}

/// Errors of the stage, with stable names for Step Functions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The event or configuration is invalid; the message names the field.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl ExportError {
    /// Stable error name (`Retryable.*` / `Fatal.*`).
    pub fn error_name(&self) -> &'static str {
        match self {
            ExportError::InvalidInput(_) => "Fatal.InvalidInput",
        }
    }
}

/// Runs the export for the input's window from the database at `database_url`.
pub async fn run(
    _lake: &Lake,
    _database_url: &str,
    _input: &ExportInput,
) -> Result<ExportOutput, ExportError> {
    Err(ExportError::InvalidInput("not implemented yet".into()))
}
