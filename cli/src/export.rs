//! `irtlake export`: the export_attempts stage from the command line — the platform's
//! PostgreSQL `attempt` view and `question` table into the lake's `attempts` and
//! `questions` (see the `export_attempts` crate for the mapping). Prints the stage's
//! summary JSON.

use anyhow::{Context, Result, anyhow};
use lake::Lake;

/// Options of `irtlake export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The day the run is for (UTC); default today. The default window is the day before
    /// and this day.
    #[arg(long)]
    pub run_date: Option<chrono::NaiveDate>,
    /// First day to export (UTC, inclusive); default the day before the run date.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day to export (UTC, inclusive); default the run date.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// PostgreSQL URL of the platform database (postgres://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Rows fetched per round trip (default 10000; never changes the output).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// A day fails when more than this share of its rows (and more than 10) are
    /// rejected (default 0.05).
    #[arg(long)]
    pub max_rejected_share: Option<f64>,
}

/// Runs `irtlake export`.
pub async fn run(lake: &Lake, args: ExportArgs) -> Result<()> {
    let url = args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .context(
            "no database: pass --database-url postgres://USER@HOST:PORT/DB or set DATABASE_URL",
        )?;
    let input = export_attempts::ExportInput {
        run_date: args.run_date,
        from: args.from,
        to: args.to,
        page_size: args.page_size,
        max_rejected_share: args.max_rejected_share,
    };
    let out = export_attempts::run(lake, url, &input)
        .await
        .map_err(|e| anyhow!("{}: {e}", e.error_name()))
        .with_context(|| format!("exporting from PostgreSQL into {}", lake.uri()))?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
