//! `irtlake status`: what the lake holds.

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;

/// Prints rows per table, the attempt date range and partition count, and anchors.
pub async fn print_status(lake: &lake::Lake) -> Result<()> {
    println!("lake: {}", lake.uri());
    let ctx = lake.session()?;
    println!("{:<22} {:>12}", "table", "rows");
    for def in lake::TABLES.iter() {
        let batches = ctx
            .sql(&format!("SELECT count(*) FROM {}", def.name))
            .await?
            .collect()
            .await?;
        let n = batches
            .first()
            .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
            .unwrap_or(0);
        println!("{:<22} {:>12}", def.name, n);
    }
    let b = ctx
        .sql(
            "SELECT min(dt), max(dt), count(DISTINCT dt), count(DISTINCT student_id) FROM attempts",
        )
        .await?
        .collect()
        .await?;
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
    let b = ctx
        .sql("SELECT count(*) AS questions, sum(CASE WHEN is_anchor THEN 1 ELSE 0 END) AS anchors FROM questions")
        .await?
        .collect()
        .await?;
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
