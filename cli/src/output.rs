//! Printing query results as a table, CSV or JSON.

use std::io::Write;

use anyhow::Result;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use clap::ValueEnum;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of row objects.
    Json,
    /// A Parquet file (only with `--out FILE`).
    Parquet,
}

/// Writes `batches` (of `schema`) to `out` in `format`.
pub fn write_batches(
    batches: &[RecordBatch],
    schema: &SchemaRef,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        Format::Table => {
            writeln!(
                out,
                "{}",
                arrow::util::pretty::pretty_format_batches(batches)?
            )?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            let mut wrote = false;
            for b in batches {
                w.write(b)?;
                wrote = true;
            }
            drop(w);
            if !wrote {
                // no batch at all: nothing to print (not even a header)
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut *out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
            drop(w);
            writeln!(out)?;
        }
        Format::Parquet => {
            // The writer needs a `Send` sink: encode into memory, then copy.
            let mut buf = Vec::new();
            let mut w =
                datafusion::parquet::arrow::ArrowWriter::try_new(&mut buf, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
            out.write_all(&buf)?;
        }
    }
    Ok(())
}
