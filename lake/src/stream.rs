//! Streaming a query's rows student by student, in bounded memory.
//!
//! A per-student stage asks DataFusion for its rows **sorted by student** (the sort
//! spills to disk past the session's memory pool, `lake::query`) and reads the result
//! as a stream of record batches ([`query_stream`]). [`for_each_student`] cuts the
//! stream into the runs of consecutive rows of one student and hands each run to the
//! stage as zero-copy slices of the batches, so the stage holds one batch and one
//! student's rows at a time, never the whole result, and borrows its strings (`&str`)
//! from the batches instead of copying them.
//!
//! Shared by the per-student stages (kpis, score_topics, features, segments, and
//! `kpis::weekly_thetas` for growth and reports).

use crate::runs::StageError;
use arrow::array::{Array, AsArray, BooleanArray, PrimitiveArray, RecordBatch, StringArray};
use arrow::datatypes::ArrowPrimitiveType;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::StreamExt;

/// Runs one SQL statement with positional parameters (`$1`, `$2`, …) and returns its
/// result as a stream of record batches (nothing is collected).
pub async fn query_stream(
    ctx: &SessionContext,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<SendableRecordBatchStream, StageError> {
    Ok(ctx
        .sql(sql)
        .await?
        .with_param_values(params)?
        .execute_stream()
        .await?)
}

/// The next batch of `stream`, `None` at its end.
pub async fn next_batch(
    stream: &mut SendableRecordBatchStream,
) -> Result<Option<RecordBatch>, StageError> {
    Ok(stream.next().await.transpose()?)
}

/// Calls `f` on every batch of `stream`, in order.
pub async fn for_each_batch<F>(
    mut stream: SendableRecordBatchStream,
    mut f: F,
) -> Result<(), StageError>
where
    F: FnMut(&RecordBatch) -> Result<(), StageError>,
{
    while let Some(batch) = stream.next().await {
        f(&batch?)?;
    }
    Ok(())
}

/// Calls `f(student_id, rows)` once per run of consecutive rows with the same value in
/// the string column `key` of `stream` (a query sorted by that column gives one run per
/// student). `rows` are slices of the stream's batches, in stream order, holding only
/// that student's rows (a run may span several batches). Returns the number of rows read.
pub async fn for_each_student<F>(
    mut stream: SendableRecordBatchStream,
    key: usize,
    mut f: F,
) -> Result<usize, StageError>
where
    F: FnMut(&str, &[RecordBatch]) -> Result<(), StageError>,
{
    let mut group: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let ids = strings(&batch, key)?;
        let n = batch.num_rows();
        rows += n;
        let mut start = 0;
        for r in 1..=n {
            if r < n && ids.value(r) == ids.value(start) {
                continue;
            }
            let same = match group.first() {
                Some(g) => strings(g, key)?.value(0) == ids.value(start),
                None => true,
            };
            if !same {
                flush(&mut group, key, &mut f)?;
            }
            group.push(batch.slice(start, r - start));
            start = r;
        }
    }
    flush(&mut group, key, &mut f)?;
    Ok(rows)
}

/// Hands the buffered run to `f` and empties the buffer.
fn flush<F>(group: &mut Vec<RecordBatch>, key: usize, f: &mut F) -> Result<(), StageError>
where
    F: FnMut(&str, &[RecordBatch]) -> Result<(), StageError>,
{
    if let Some(first) = group.first() {
        let ids = strings(first, key)?;
        f(ids.value(0), group)?;
    }
    group.clear();
    Ok(())
}

fn wrong_type(batch: &RecordBatch, i: usize, expected: &str) -> StageError {
    let got = batch
        .schema()
        .fields()
        .get(i)
        .map_or_else(|| "no column".to_string(), |f| f.data_type().to_string());
    StageError::Model(format!("query column {i}: expected {expected}, got {got}"))
}

/// Column `i` of `batch` as strings (`Utf8`); an error names the column otherwise.
pub fn strings(batch: &RecordBatch, i: usize) -> Result<&StringArray, StageError> {
    batch
        .columns()
        .get(i)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| wrong_type(batch, i, "Utf8"))
}

/// Column `i` of `batch` as booleans; an error names the column otherwise.
pub fn booleans(batch: &RecordBatch, i: usize) -> Result<&BooleanArray, StageError> {
    batch
        .columns()
        .get(i)
        .and_then(|c| c.as_boolean_opt())
        .ok_or_else(|| wrong_type(batch, i, "Boolean"))
}

/// Column `i` of `batch` as primitives of type `T`; an error names the column otherwise.
pub fn primitives<T: ArrowPrimitiveType>(
    batch: &RecordBatch,
    i: usize,
) -> Result<&PrimitiveArray<T>, StageError> {
    batch
        .columns()
        .get(i)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| wrong_type(batch, i, std::any::type_name::<T>()))
}

/// `Some(value)` of row `r` of a string column, `None` when null.
pub fn opt_str(a: &StringArray, r: usize) -> Option<&str> {
    (!a.is_null(r)).then(|| a.value(r))
}

/// `Some(value)` of row `r` of a primitive column, `None` when null.
pub fn opt_value<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, r: usize) -> Option<T::Native> {
    (!a.is_null(r)).then(|| a.value(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::memory::MemoryStream;

    fn batch(ids: &[&str], v: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("student_id", DataType::Utf8, false),
            Field::new("v", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids.to_vec())) as ArrayRef,
                Arc::new(Int64Array::from(v.to_vec())),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn runs_of_one_student_are_grouped_across_batches() {
        let batches = vec![
            batch(&["a", "a", "b"], &[1, 2, 3]),
            batch(&[], &[]),
            batch(&["b", "b"], &[4, 5]),
            batch(&["b", "c"], &[6, 7]),
            batch(&["d"], &[8]),
        ];
        let schema = batches[0].schema();
        let stream = Box::pin(MemoryStream::try_new(batches, schema, None).unwrap());
        let mut seen: Vec<(String, Vec<i64>, usize)> = Vec::new();
        let rows = for_each_student(stream, 0, |id, parts| {
            let mut v = Vec::new();
            for p in parts {
                assert!(strings(p, 0)?.iter().all(|s| s == Some(id)));
                v.extend(primitives::<arrow::datatypes::Int64Type>(p, 1)?.values());
            }
            seen.push((id.to_string(), v, parts.len()));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(rows, 8);
        assert_eq!(
            seen,
            vec![
                ("a".into(), vec![1, 2], 1),
                ("b".into(), vec![3, 4, 5, 6], 3),
                ("c".into(), vec![7], 1),
                ("d".into(), vec![8], 1),
            ]
        );
        let b = batch(&["a"], &[1]);
        assert!(strings(&b, 1).is_err() && strings(&b, 2).is_err() && booleans(&b, 0).is_err());
    }
}
