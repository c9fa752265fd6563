//! `irtlake status`: what the lake holds.

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;

const ATTEMPT_DAYS_SQL: &str = include_str!("../../sql/cli/attempt_days.sql");
const QUESTION_COUNTS_SQL: &str = include_str!("../../sql/cli/question_counts.sql");
const TABLE_ROWS_SQL: &str = include_str!("../../sql/cli/table_rows.sql");

/// Prints rows per table with its storage layout (Parquet objects, partitions, bytes,
/// median object size: what the lake's layout costs, README "Object sizes"), the report
/// artifacts' objects, the attempt date range and partition count, and anchors.
pub async fn print_status(lake: &lake::Lake) -> Result<()> {
    println!("lake: {}", lake.uri());
    let ctx = lake.session()?;
    println!(
        "{:<22} {:>12} {:>8} {:>10} {:>10} {:>12}",
        "table", "rows", "objects", "partitions", "MB", "median KB"
    );
    for def in lake::TABLES.iter() {
        let batches = ctx
            .sql(&TABLE_ROWS_SQL.replace("{table}", def.name))
            .await?
            .collect()
            .await?;
        let n = batches
            .first()
            .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
            .unwrap_or(0);
        let layout = Layout::of(&lake.list(def.name).await?, ".parquet");
        println!("{:<22} {n:>12} {layout}", def.name);
    }
    let reports = Layout::of(&lake.list(lake::artifacts::REPORTS_PREFIX).await?, "");
    if reports.objects > 0 {
        println!("{:<22} {:>12} {reports}", "(report files)", "-");
    }
    let b = ctx.sql(ATTEMPT_DAYS_SQL).await?.collect().await?;
    if let Some(b) = b.first() {
        let s = |i: usize| {
            let c = b.column(i);
            if c.is_null(0) {
                "-".to_string()
            } else {
                arrow::util::display::array_value_to_string(c, 0).unwrap_or_default()
            }
        };
        println!(
            "attempts: {} .. {} over {} dt partitions, {} students",
            s(0),
            s(1),
            s(2),
            s(3)
        );
    }
    let b = ctx.sql(QUESTION_COUNTS_SQL).await?.collect().await?;
    if let Some(b) = b.first() {
        let q = arrow::util::display::array_value_to_string(b.column(0), 0)?;
        let a = arrow::util::display::array_value_to_string(b.column(1), 0)?;
        println!(
            "questions: {q}, anchors: {}",
            if a.is_empty() { "0".into() } else { a }
        );
    }
    Ok(())
}

/// The storage of one table folder: its objects, their partitions (folders) and sizes.
struct Layout {
    objects: usize,
    partitions: usize,
    bytes: u64,
    median_bytes: u64,
}

impl Layout {
    /// The layout of the `objects` whose key ends with `suffix`.
    fn of(objects: &[lake::ObjectInfo], suffix: &str) -> Self {
        let files: Vec<&lake::ObjectInfo> =
            objects.iter().filter(|o| o.key.ends_with(suffix)).collect();
        let mut sizes: Vec<u64> = files.iter().map(|o| o.size).collect();
        sizes.sort_unstable();
        let partitions: std::collections::HashSet<&str> = files
            .iter()
            .map(|o| o.key.rsplit_once('/').map_or("", |(folder, _)| folder))
            .collect();
        Self {
            objects: files.len(),
            partitions: partitions.len(),
            bytes: sizes.iter().sum(),
            median_bytes: sizes.get(sizes.len() / 2).copied().unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8} {:>10} {:>10.2} {:>12.1}",
            self.objects,
            self.partitions,
            self.bytes as f64 / 1e6,
            self.median_bytes as f64 / 1e3
        )
    }
}
