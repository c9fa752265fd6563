//! `irtlake report`: the reports stage from the command line.
//! (Stub: lands with issue 6.)

use anyhow::Result;
use lake::Lake;

/// Options of `irtlake report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Monday of the report week (any day of the week is accepted).
    #[arg(long)]
    pub week: Option<chrono::NaiveDate>,
}

/// Runs `irtlake report`.
pub async fn run(_lake: &Lake, _args: ReportArgs) -> Result<()> {
    anyhow::bail!("irtlake report is not implemented yet")
}
