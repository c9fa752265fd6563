//! `irtlake export`: the export_attempts stage from the command line.
//! (Stub: lands with issue 7.)

use anyhow::Result;
use lake::Lake;

/// Options of `irtlake export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The day the run is for (UTC); default today.
    #[arg(long)]
    pub run_date: Option<chrono::NaiveDate>,
}

/// Runs `irtlake export`.
pub async fn run(_lake: &Lake, _args: ExportArgs) -> Result<()> {
    anyhow::bail!("irtlake export is not implemented yet")
}
