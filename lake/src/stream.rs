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
use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, PrimitiveArray, RecordBatch, StringArray,
};
use arrow::datatypes::{ArrowPrimitiveType, Date32Type};
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
    Ok(crate::runs::dataframe(ctx, sql, params)
        .await?
        .execute_stream()
        .await?)
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

/// The runs of consecutive rows with the same value in the column `key` of a stream (a
/// string or a date: a query sorted by that column gives one run per student, or per
/// day), pulled
/// one at a time with [`Runs::next`], so the caller may await between runs (e.g. write
/// a day before reading the next). A run is a list of slices of the stream's batches, in
/// stream order (a run may span several batches); only the current run and one batch
/// are held.
pub struct Runs {
    stream: SendableRecordBatchStream,
    key: usize,
    /// The run being gathered.
    group: Vec<RecordBatch>,
    /// Runs complete but not yet handed out (those a batch closed).
    ready: std::collections::VecDeque<Vec<RecordBatch>>,
    done: bool,
}

impl Runs {
    /// The runs of `stream` by the column `key` (`Utf8` or `Date32`).
    pub fn new(stream: SendableRecordBatchStream, key: usize) -> Self {
        Self {
            stream,
            key,
            group: Vec::new(),
            ready: std::collections::VecDeque::new(),
            done: false,
        }
    }

    /// The next run, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<RecordBatch>>, StageError> {
        loop {
            if let Some(run) = self.ready.pop_front() {
                return Ok(Some(run));
            }
            if self.done {
                return Ok((!self.group.is_empty()).then(|| std::mem::take(&mut self.group)));
            }
            match self.stream.next().await {
                None => self.done = true,
                Some(batch) => self.split(batch?)?,
            }
        }
    }

    /// Cuts `batch` into runs: each closes the gathered run when its key differs.
    fn split(&mut self, batch: RecordBatch) -> Result<(), StageError> {
        let ids = Key::of(&batch, self.key)?;
        let n = batch.num_rows();
        let mut start = 0;
        for r in 1..=n {
            if r < n && ids.same(r, &ids, start) {
                continue;
            }
            let same = match self.group.first() {
                Some(g) => Key::of(g, self.key)?.same(0, &ids, start),
                None => true,
            };
            if !same {
                self.ready.push_back(std::mem::take(&mut self.group));
            }
            self.group.push(batch.slice(start, r - start));
            start = r;
        }
        Ok(())
    }
}

/// The key column of [`Runs`]: text (student ids) or days (`dt`).
enum Key<'a> {
    Text(&'a StringArray),
    Day(&'a Date32Array),
}

impl<'a> Key<'a> {
    fn of(batch: &'a RecordBatch, i: usize) -> Result<Self, StageError> {
        match batch.columns().get(i).map(|c| c.data_type()) {
            Some(arrow::datatypes::DataType::Date32) => {
                Ok(Key::Day(primitives::<Date32Type>(batch, i)?))
            }
            _ => Ok(Key::Text(strings(batch, i)?)),
        }
    }

    /// Row `r` of `self` holds the key of row `s` of `other` (nulls equal each other).
    fn same(&self, r: usize, other: &Key<'_>, s: usize) -> bool {
        match (self, other) {
            (Key::Text(a), Key::Text(b)) => opt_str(a, r) == opt_str(b, s),
            (Key::Day(a), Key::Day(b)) => opt_value(*a, r) == opt_value(*b, s),
            _ => false,
        }
    }
}

/// Calls `f(student_id, rows)` once per run of consecutive rows with the same value in
/// the string column `key` of `stream` ([`Runs`]; a query sorted by that column gives
/// one run per student). Returns the number of rows read.
pub async fn for_each_student<F>(
    stream: SendableRecordBatchStream,
    key: usize,
    mut f: F,
) -> Result<usize, StageError>
where
    F: FnMut(&str, &[RecordBatch]) -> Result<(), StageError>,
{
    let mut runs = Runs::new(stream, key);
    let mut rows = 0;
    while let Some(run) = runs.next().await? {
        rows += run.iter().map(RecordBatch::num_rows).sum::<usize>();
        f(strings(&run[0], key)?.value(0), &run)?;
    }
    Ok(rows)
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
