//! `irtlake sql`: DataFusion SQL over the lake.

use std::io::Write;

use anyhow::{Context, Result};
use datafusion::sql::parser::DFParser;

use crate::output::{Format, write_batches};

/// Runs every statement in `text` (separated by `;`) and prints each result.
pub async fn run_sql(
    lake: &lake::Lake,
    text: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let ctx = lake.session()?;
    let statements = DFParser::parse_sql(text).context("parsing SQL")?;
    if statements.is_empty() {
        anyhow::bail!("no SQL statement given");
    }
    for (n, statement) in statements.into_iter().enumerate() {
        let plan = ctx
            .state()
            .statement_to_plan(statement)
            .await
            .with_context(|| format!("planning statement {}", n + 1))?;
        let batches = ctx
            .execute_logical_plan(plan)
            .await?
            .collect()
            .await
            .with_context(|| format!("running statement {}", n + 1))?;
        write_batches(&batches, format, out)?;
    }
    Ok(())
}
