//! Printing query results as a table, CSV, JSON, JSON lines or Parquet.
//!
//! - `table`: aligned text; an empty result prints its header.
//! - `csv`: header row, then rows; an empty result still prints the header (pandas
//!   reads it); list, struct and map cells are written as JSON text.
//! - `json`: one JSON document: an array of row objects, null fields kept as `null`; with
//!   several statements, an array of those arrays.
//! - `ndjson`: one JSON object per line (every statement's rows in order), nulls kept.
//! - `parquet`: a file (`--out FILE` only).

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};
use clap::ValueEnum;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// CSV with a header row (nested cells as JSON text).
    Csv,
    /// One JSON document: an array of row objects (an array of arrays for several
    /// statements).
    Json,
    /// JSON lines: one row object per line.
    Ndjson,
    /// A Parquet file (only with `--out FILE`).
    Parquet,
}

/// Writes the results of one or more statements (`(schema, batches)` each) to `out`.
/// JSON wraps several statements' arrays in one array; the other formats write one
/// result after the other.
pub fn write_results(
    results: &[(SchemaRef, Vec<RecordBatch>)],
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    if format == Format::Json && results.len() > 1 {
        write!(out, "[")?;
        for (i, (schema, batches)) in results.iter().enumerate() {
            if i > 0 {
                write!(out, ",")?;
            }
            json_array(batches, schema, out)?;
        }
        writeln!(out, "]")?;
        return Ok(());
    }
    for (schema, batches) in results {
        write_batches(batches, schema, format, out)?;
    }
    Ok(())
}

/// Writes `batches` (of `schema`) to `out` in `format`.
pub fn write_batches(
    batches: &[RecordBatch],
    schema: &SchemaRef,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let batches = or_empty(batches, schema);
    let batches: &[RecordBatch] = &batches;
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
            for b in batches {
                w.write(&nested_as_json_text(b)?)?;
            }
        }
        Format::Json => {
            json_array(batches, schema, out)?;
            writeln!(out)?;
        }
        Format::Ndjson => {
            let mut w = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
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

/// One JSON array of row objects (nulls kept), without a trailing newline.
fn json_array(batches: &[RecordBatch], schema: &SchemaRef, out: &mut dyn Write) -> Result<()> {
    let batches = or_empty(batches, schema);
    let batches: &[RecordBatch] = &batches;
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut *out);
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    w.write_batches(&refs)?;
    // arrow writes `[]` for a result without rows (the empty batch above starts the stream)
    w.finish()?;
    Ok(())
}

/// `batches`, or one empty batch of `schema` when there are none: the writers then print
/// a header (table, CSV) or `[]` (JSON) for an empty result.
fn or_empty<'a>(batches: &'a [RecordBatch], schema: &SchemaRef) -> Cow<'a, [RecordBatch]> {
    if batches.is_empty() {
        Cow::Owned(vec![RecordBatch::new_empty(schema.clone())])
    } else {
        Cow::Borrowed(batches)
    }
}

/// Whether CSV cannot hold a column of this type as is.
fn is_nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Struct(_)
            | DataType::Map(..)
            | DataType::Union(..)
    )
}

/// `batch` with every nested column (list, struct, map) replaced by its cells as JSON
/// text (null stays null), so CSV can hold it.
fn nested_as_json_text(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| is_nested(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (f, col) in schema.fields().iter().zip(batch.columns()) {
        if !is_nested(f.data_type()) {
            fields.push(f.as_ref().clone());
            columns.push(col.clone());
            continue;
        }
        let one = RecordBatch::try_new(
            Arc::new(Schema::new(vec![f.as_ref().clone()])),
            vec![col.clone()],
        )?;
        let mut lines = Vec::new();
        {
            let mut w = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut lines);
            w.write(&one)?;
            w.finish()?;
        }
        let text = String::from_utf8(lines).context("JSON text of a nested column")?;
        let cells: Vec<Option<String>> = text
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line)?;
                Ok(v.get(f.name())
                    .filter(|x| !x.is_null())
                    .map(|x| x.to_string()))
            })
            .collect::<Result<_, serde_json::Error>>()
            .context("JSON text of a nested column")?;
        fields.push(Field::new(f.name(), DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(cells)));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, ListBuilder, StringBuilder};

    fn tags_batch(rows: &[Option<&[&str]>]) -> RecordBatch {
        let mut b = ListBuilder::new(StringBuilder::new());
        for r in rows {
            match r {
                Some(tags) => {
                    for t in *tags {
                        b.values().append_value(t);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        let tags: ArrayRef = Arc::new(b.finish());
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None][..rows.len()].to_vec()));
        RecordBatch::try_from_iter(vec![("id", ids), ("tags", tags)]).unwrap()
    }

    fn text(results: &[(SchemaRef, Vec<RecordBatch>)], format: Format) -> String {
        let mut out = Vec::new();
        write_results(results, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_writes_lists_as_json_and_an_empty_result_as_its_header() {
        let b = tags_batch(&[Some(&["a", "b,c"]), None]);
        let csv = text(&[(b.schema(), vec![b.clone()])], Format::Csv);
        assert_eq!(csv, "id,tags\n1,\"[\"\"a\"\",\"\"b,c\"\"]\"\n,\n");
        let empty = text(&[(b.schema(), vec![])], Format::Csv);
        assert_eq!(empty, "id,tags\n");
        let table = text(&[(b.schema(), vec![])], Format::Table);
        assert!(table.contains("| id | tags |"), "{table}");
    }

    #[test]
    fn json_keeps_nulls_and_is_one_document_for_several_statements() {
        let b = tags_batch(&[Some(&["a"]), None]);
        let one = text(&[(b.schema(), vec![b.clone()])], Format::Json);
        let v: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert_eq!(v[1]["id"], serde_json::Value::Null);
        assert_eq!(v[1]["tags"], serde_json::Value::Null);
        let two = text(
            &[(b.schema(), vec![b.clone()]), (b.schema(), vec![])],
            Format::Json,
        );
        let v: serde_json::Value =
            serde_json::from_str(&two).unwrap_or_else(|e| panic!("{e}: {two}"));
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1], serde_json::json!([]));
        let lines = text(&[(b.schema(), vec![b.clone()])], Format::Ndjson);
        assert_eq!(lines.lines().count(), 2);
        assert!(lines.lines().nth(1).unwrap().contains("\"id\":null"));
    }
}
