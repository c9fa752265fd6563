//! The attempts ingest ([`ingest_attempts`]): validation, duplicate and unknown-question
//! screening, and the merge into the `dt` partitions of `attempts`; its row type and
//! batch builder, shared with the PostgreSQL export.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{DateTime, NaiveDate, Utc};

use crate::catalog::ATTEMPTS;
use crate::columns::{Columns, TableBatch};
use crate::error::{LakeError, Result};
use crate::store::Lake;

use super::parse::{parse_correct, parse_nonneg_int, parse_timestamp};
use super::raw::{Problems, RawTable, parsed, read_raw, value};

/// What an attempts ingest did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AttemptsReport {
    /// The input file.
    pub file: String,
    /// Data rows read.
    pub rows_read: usize,
    /// New rows written to the lake.
    pub rows_written: usize,
    /// Rows dropped because their `attempt_id` was already seen (file or lake).
    pub duplicates_dropped: usize,
    /// Rows dropped because their question is not in `questions`.
    pub unknown_question_rows: usize,
    /// Up to 10 of those unknown question ids.
    pub unknown_question_examples: Vec<String>,
    /// `dt` partitions rewritten.
    pub partitions_written: Vec<String>,
}

/// A validated row of the `attempts` table (shared by ingest and the PostgreSQL export).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    /// Attempt id.
    pub attempt_id: String,
    /// Student id.
    pub student_id: String,
    /// Question id.
    pub question_id: String,
    /// Subject of the question, if known.
    pub subject_id: Option<String>,
    /// Topic of the question, if known.
    pub topic_id: Option<String>,
    /// Session id, if any.
    pub session_id: Option<String>,
    /// Whether the answer was right.
    pub correct: bool,
    /// Completion time, µs since the Unix epoch (UTC).
    pub completed_at: i64,
    /// Time spent on the answer, milliseconds (non-negative).
    pub time_spent_ms: Option<i64>,
    /// Hints used (non-negative).
    pub hints_used: Option<i64>,
}

const QUESTION_INDEX_SQL: &str = include_str!("../../../sql/lake/question_index.sql");
const ATTEMPT_IDS_SQL: &str = include_str!("../../../sql/lake/attempt_ids.sql");

/// The subject and topic of every question in the lake.
async fn question_index(lake: &Lake) -> Result<HashMap<String, (Option<String>, Option<String>)>> {
    let batches = lake.sql(QUESTION_INDEX_SQL).await?;
    let mut out = HashMap::new();
    for b in &batches {
        let c = Columns::of(b);
        let (q, s, t) = (
            c.strings("question_id")?,
            c.strings("subject_id")?,
            c.strings("topic_id")?,
        );
        for i in 0..b.num_rows() {
            let opt = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            out.insert(q.value(i).to_string(), (opt(s), opt(t)));
        }
    }
    Ok(out)
}

/// Ingests an attempts file (CSV or Parquet) into the `attempts` table.
///
/// Required columns: `attempt_id, student_id, question_id, correct, completed_at`;
/// optional: `session_id, time_spent_ms, hints_used, subject_id, topic_id` (subject and
/// topic default to the question's). See the module docs for validation.
pub async fn ingest_attempts(lake: &Lake, path: &FsPath) -> Result<AttemptsReport> {
    let raw = read_raw(path)?;
    raw.require(&[
        "attempt_id",
        "student_id",
        "question_id",
        "correct",
        "completed_at",
    ])?;
    let rows = parse_rows(&raw)?;

    let questions = question_index(lake).await?;
    if questions.is_empty() && !rows.is_empty() {
        return Err(LakeError::InvalidInput(format!(
            "{}: the lake has no questions yet; ingest questions first (irtlake ingest questions FILE)",
            raw.file
        )));
    }
    let existing_ids = existing_attempt_ids(lake).await?;
    let mut report = AttemptsReport {
        file: raw.file.clone(),
        rows_read: raw.rows,
        ..Default::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_dt: BTreeMap<String, Vec<AttemptRow>> = BTreeMap::new();
    for mut r in rows {
        if existing_ids.contains(&r.attempt_id) || !seen.insert(r.attempt_id.clone()) {
            report.duplicates_dropped += 1;
            continue;
        }
        let Some((subj, topic)) = questions.get(&r.question_id) else {
            *unknown.entry(r.question_id.clone()).or_default() += 1;
            continue;
        };
        if r.subject_id.is_none() {
            r.subject_id = subj.clone();
        }
        if r.topic_id.is_none() {
            r.topic_id = topic.clone();
        }
        let dt = DateTime::from_timestamp_micros(r.completed_at)
            .map(|t| t.date_naive())
            .unwrap_or(NaiveDate::MIN)
            .format("%Y-%m-%d")
            .to_string();
        by_dt.entry(dt).or_default().push(r);
    }
    report.unknown_question_rows = unknown.values().sum();
    report.unknown_question_examples = unknown.keys().take(10).cloned().collect();
    if report.unknown_question_rows > 0 {
        tracing::warn!(
            file = %raw.file,
            rows = report.unknown_question_rows,
            examples = ?report.unknown_question_examples,
            "attempts for questions not in the lake were skipped"
        );
    }
    // Every day is merged and staged before the first is committed (see the module docs).
    let dts: Vec<String> = by_dt.keys().cloned().collect();
    let new_rows: Vec<Vec<AttemptRow>> = by_dt.into_values().collect();
    let values: Vec<[(&str, &str); 1]> = dts.iter().map(|d| [("dt", d.as_str())]).collect();
    let parts: Vec<&[(&str, &str)]> = values.iter().map(|v| &v[..]).collect();
    let mut added = vec![0usize; dts.len()];
    let written = lake
        .update_partitions(ATTEMPTS, &parts, |i, mut current| {
            // Rows the partition already holds (written by a concurrent ingest since the
            // duplicate check) are not added twice.
            let add: Vec<AttemptRow> = {
                let mut present: HashSet<&str> = HashSet::new();
                for b in current.iter() {
                    let ids = Columns::of(b).strings("attempt_id")?;
                    present.extend((0..ids.len()).map(|r| ids.value(r)));
                }
                new_rows[i]
                    .iter()
                    .filter(|r| !present.contains(r.attempt_id.as_str()))
                    .cloned()
                    .collect()
            };
            added[i] = add.len();
            if add.is_empty() {
                return Ok(None);
            }
            current.push(attempt_batch(&add)?);
            Ok(Some(current))
        })
        .await?;
    for (i, dt) in dts.into_iter().enumerate() {
        report.duplicates_dropped += new_rows[i].len() - added[i];
        if written[i].is_some() {
            report.rows_written += added[i];
            report.partitions_written.push(dt);
        }
    }
    Ok(report)
}

/// The rows of an attempts file, each value parsed and checked (ids present, `correct`
/// 0/1/true/false, `completed_at` RFC 3339 within [`crate::bounds::row_time_window`],
/// counts non-negative); every problem found is reported at once, naming file, row and
/// column, and then nothing is returned.
fn parse_rows(raw: &RawTable) -> Result<Vec<AttemptRow>> {
    let col = |n: &str| raw.column(n);
    let (c_id, c_st, c_q, c_ok, c_ts) = (
        col("attempt_id"),
        col("student_id"),
        col("question_id"),
        col("correct"),
        col("completed_at"),
    );
    let (c_sess, c_time, c_hint, c_subj, c_top) = (
        col("session_id"),
        col("time_spent_ms"),
        col("hints_used"),
        col("subject_id"),
        col("topic_id"),
    );
    let mut problems = Problems::new(&raw.file);
    let mut rows = Vec::with_capacity(raw.rows);
    // A time outside this window would become a `dt=0001-…` or `dt=2999-…` partition.
    let time_window = crate::bounds::row_time_window(Utc::now());
    for i in 0..raw.rows {
        let rn = || raw.row_name(i);
        let text = |s: &str| Ok::<_, String>(s.to_string());
        let count = |s: &str| {
            parse_nonneg_int(s).ok_or_else(|| format!("expected a non-negative integer, got '{s}'"))
        };
        let attempt_id = parsed(&mut problems, &rn, "attempt_id", value(c_id, i), true, text);
        let student_id = parsed(&mut problems, &rn, "student_id", value(c_st, i), true, text);
        let question_id = parsed(&mut problems, &rn, "question_id", value(c_q, i), true, text);
        let correct = parsed(&mut problems, &rn, "correct", value(c_ok, i), true, |s| {
            parse_correct(s).ok_or_else(|| format!("expected 0/1/true/false, got '{s}'"))
        });
        let completed_at = parsed(
            &mut problems,
            &rn,
            "completed_at",
            value(c_ts, i),
            true,
            |s| {
                let t = parse_timestamp(s).ok_or_else(|| {
                    format!(
                        "cannot parse timestamp '{s}' (use RFC 3339, e.g. 2026-03-01T09:30:00Z)"
                    )
                })?;
                if time_window.contains(&t) {
                    Ok(t)
                } else {
                    Err(format!(
                        "'{s}' is outside {} .. {} (from 2000 to a day after now)",
                        time_window.start().to_rfc3339(),
                        time_window.end().to_rfc3339()
                    ))
                }
            },
        );
        let time_spent_ms = parsed(
            &mut problems,
            &rn,
            "time_spent_ms",
            value(c_time, i),
            false,
            count,
        );
        let hints_used = parsed(
            &mut problems,
            &rn,
            "hints_used",
            value(c_hint, i),
            false,
            count,
        );
        if let (Some(attempt_id), Some(student_id), Some(question_id), Some(correct), Some(ts)) =
            (attempt_id, student_id, question_id, correct, completed_at)
        {
            rows.push(AttemptRow {
                attempt_id,
                student_id,
                question_id,
                subject_id: value(c_subj, i).map(str::to_string),
                topic_id: value(c_top, i).map(str::to_string),
                session_id: value(c_sess, i).map(str::to_string),
                correct,
                completed_at: ts.timestamp_micros(),
                time_spent_ms,
                hints_used,
            });
        }
    }
    problems.finish()?;
    Ok(rows)
}

/// Every `attempt_id` already in the lake.
async fn existing_attempt_ids(lake: &Lake) -> Result<HashSet<String>> {
    let batches = lake.sql(ATTEMPT_IDS_SQL).await?;
    let mut out = HashSet::new();
    for b in &batches {
        let a = Columns::of(b).strings("attempt_id")?;
        out.extend((0..a.len()).map(|i| a.value(i).to_string()));
    }
    Ok(out)
}

/// An `attempts` batch (the catalog's file schema) of `rows`, in order.
pub fn attempt_batch(rows: &[AttemptRow]) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&AttemptRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    TableBatch::new(ATTEMPTS, rows.len())?
        .set("attempt_id", s(&|r| Some(&r.attempt_id)))?
        .set("student_id", s(&|r| Some(&r.student_id)))?
        .set("question_id", s(&|r| Some(&r.question_id)))?
        .set("subject_id", s(&|r| r.subject_id.as_deref()))?
        .set("topic_id", s(&|r| r.topic_id.as_deref()))?
        .set("session_id", s(&|r| r.session_id.as_deref()))?
        .bools("correct", rows.iter().map(|r| Some(r.correct)).collect())?
        .set(
            "completed_at",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.completed_at))
                    .with_timezone("UTC"),
            ),
        )?
        .i64s(
            "time_spent_ms",
            rows.iter().map(|r| r.time_spent_ms).collect(),
        )?
        .i64s("hints_used", rows.iter().map(|r| r.hints_used).collect())?
        .finish()
}
