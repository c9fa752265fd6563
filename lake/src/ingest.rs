//! Ingest of platform exports (CSV or Parquet) into `attempts` and `questions`.
//!
//! Validation happens entirely before the first write: a file with any bad row
//! (missing column, wrong type, `correct` not 0/1/true/false, unparseable timestamp,
//! corrupt Parquet) is refused with errors naming the file, row and column, and the
//! lake is left exactly as it was. Rows that are valid but redundant are dropped and
//! counted: an `attempt_id` seen before (in the file or already in the lake), and
//! attempts whose question is not in `questions` (reported with examples).
//!
//! Attempts are partitioned by `dt`, the UTC date of `completed_at`; each touched
//! partition is merged with what the lake already holds and rewritten atomically, all
//! of a file's days as one unit ([`Lake::update_partitions`]): every day is merged and
//! staged before the first is committed, so a failure while staging (a full disk)
//! leaves every day as it was, and a failure while committing is an error listing the
//! days committed and those not. A re-run of the same file converges: rows already in
//! the lake are dropped as duplicates.
//! Questions are upserted by `question_id` (the file wins) and the table rewritten.
//! A question whose tags contain `anchor` (any case) is an anchor; its `irt_a`,
//! `irt_b`, `irt_c` are its known parameters (`irt_c` defaults to 0) and must be
//! valid (a > 0, finite b, 0 ≤ c < 1).
//!
//! Timestamps: RFC 3339 (`2026-03-01T09:30:00Z`, `…+02:00`), PostgreSQL text
//! (`2026-03-01 09:30:00.123+00`), or without offset (read as UTC). Parquet
//! timestamp columns are taken as they are (no zone = UTC).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::array::RecordBatchReader;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListBuilder, RecordBatch,
    StringArray, StringBuilder, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::catalog::{self, ATTEMPTS, QUESTIONS};
use crate::error::{LakeError, Result};
use crate::store::Lake;

/// How many row errors are listed before the message says "and N more".
const MAX_LISTED_ERRORS: usize = 10;

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

/// What a questions ingest did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QuestionsReport {
    /// The input file.
    pub file: String,
    /// Data rows read.
    pub rows_read: usize,
    /// Questions new to the lake.
    pub inserted: usize,
    /// Questions that replaced an existing row.
    pub updated: usize,
    /// Anchors among the rows read.
    pub anchors: usize,
    /// Questions in the table after the ingest.
    pub total: usize,
}

/// Every column of an input file as strings (Parquet columns are cast), with the
/// file name and how to name a row in messages.
pub(crate) struct RawTable {
    pub(crate) file: String,
    csv: bool,
    names: Vec<String>,
    columns: Vec<StringArray>,
    pub(crate) rows: usize,
}

impl RawTable {
    pub(crate) fn column(&self, name: &str) -> Option<&StringArray> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| &self.columns[i])
    }

    /// Row `i` (0-based data row) as users see it.
    pub(crate) fn row_name(&self, i: usize) -> String {
        if self.csv {
            format!("row {} (line {})", i + 1, i + 2)
        } else {
            format!("row {}", i + 1)
        }
    }

    pub(crate) fn require(&self, cols: &[&str]) -> Result<()> {
        let missing: Vec<&str> = cols
            .iter()
            .copied()
            .filter(|c| self.column(c).is_none())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(LakeError::InvalidInput(format!(
                "{}: missing required column(s) {} (found: {})",
                self.file,
                missing.join(", "),
                self.names.join(", ")
            )))
        }
    }
}

/// Collects row errors and turns them into one message.
pub(crate) struct Problems {
    file: String,
    list: Vec<String>,
    count: usize,
}

impl Problems {
    pub(crate) fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            list: Vec::new(),
            count: 0,
        }
    }
    pub(crate) fn push(&mut self, msg: String) {
        self.count += 1;
        if self.list.len() < MAX_LISTED_ERRORS {
            self.list.push(msg);
        }
    }
    pub(crate) fn finish(self) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let more = self.count - self.list.len();
        let mut msg = format!(
            "{}: {} invalid value(s); nothing was written:\n  {}",
            self.file,
            self.count,
            self.list.join("\n  ")
        );
        if more > 0 {
            msg.push_str(&format!("\n  … and {more} more"));
        }
        Err(LakeError::InvalidInput(msg))
    }
}

/// Reads a CSV (header row required) or Parquet file (by extension, else by magic bytes).
pub(crate) fn read_raw(path: &FsPath) -> Result<RawTable> {
    let file = path.display().to_string();
    let is_parquet = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq") => true,
        Some(e) if e.eq_ignore_ascii_case("csv") => false,
        _ => {
            let mut magic = [0u8; 4];
            use std::io::Read;
            let n = File::open(path)
                .and_then(|mut f| f.read(&mut magic))
                .map_err(|e| LakeError::InvalidInput(format!("{file}: cannot read: {e}")))?;
            n == 4 && &magic == b"PAR1"
        }
    };
    if is_parquet {
        read_parquet(path, file)
    } else {
        read_csv(path, file)
    }
}

fn read_csv(path: &FsPath, file: String) -> Result<RawTable> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .map_err(|e| LakeError::InvalidInput(format!("{file}: cannot read CSV: {e}")))?;
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| LakeError::InvalidInput(format!("{file}: cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut builders: Vec<StringBuilder> = names.iter().map(|_| StringBuilder::new()).collect();
    let mut rows = 0;
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| {
            LakeError::InvalidInput(format!("{file}: row {} (line {}): {e}", i + 1, i + 2))
        })?;
        for (b, v) in builders.iter_mut().zip(rec.iter()) {
            let v = v.trim();
            if v.is_empty() {
                b.append_null();
            } else {
                b.append_value(v);
            }
        }
        rows += 1;
    }
    Ok(RawTable {
        file,
        csv: true,
        names,
        columns: builders.into_iter().map(|mut b| b.finish()).collect(),
        rows,
    })
}

fn read_parquet(path: &FsPath, file: String) -> Result<RawTable> {
    let corrupt =
        |e: String| LakeError::InvalidInput(format!("{file}: not a readable Parquet file: {e}"));
    let f = File::open(path).map_err(|e| corrupt(e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| corrupt(e.to_string()))?
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    let schema = reader.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut parts: Vec<Vec<StringArray>> = names.iter().map(|_| Vec::new()).collect();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        rows += batch.num_rows();
        for (i, col) in batch.columns().iter().enumerate() {
            parts[i].push(to_strings(col).map_err(|e| {
                LakeError::InvalidInput(format!("{file}: column '{}': {e}", names[i]))
            })?);
        }
    }
    let columns = parts
        .into_iter()
        .map(|p| {
            let refs: Vec<&dyn Array> = p.iter().map(|a| a as &dyn Array).collect();
            if refs.is_empty() {
                Ok(StringArray::from(Vec::<Option<&str>>::new()))
            } else {
                Ok(arrow::compute::concat(&refs)?.as_string::<i32>().clone())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RawTable {
        file,
        csv: false,
        names,
        columns,
        rows,
    })
}

/// Casts any column to strings; lists become JSON arrays of their string values.
fn to_strings(col: &ArrayRef) -> std::result::Result<StringArray, String> {
    match col.data_type() {
        DataType::List(_) | DataType::LargeList(_) => {
            let mut b = StringBuilder::new();
            for i in 0..col.len() {
                if col.is_null(i) {
                    b.append_null();
                    continue;
                }
                let inner = match col.data_type() {
                    DataType::List(_) => col.as_list::<i32>().value(i),
                    _ => col.as_list::<i64>().value(i),
                };
                let inner = cast(&inner, &DataType::Utf8).map_err(|e| e.to_string())?;
                let s = inner.as_string::<i32>();
                let vals: Vec<&str> = (0..s.len())
                    .filter(|&j| !s.is_null(j))
                    .map(|j| s.value(j))
                    .collect();
                b.append_value(serde_json::to_string(&vals).map_err(|e| e.to_string())?);
            }
            Ok(b.finish())
        }
        _ => cast(col, &DataType::Utf8)
            .map(|a| a.as_string::<i32>().clone())
            .map_err(|e| format!("cannot read as text: {e}")),
    }
}

pub(crate) fn value(col: Option<&StringArray>, i: usize) -> Option<&str> {
    col.and_then(|c| if c.is_null(i) { None } else { Some(c.value(i)) })
}

/// Parses 0/1/true/false (also t/f, yes/no are refused: they are not in the contract).
pub fn parse_correct(s: &str) -> Option<bool> {
    let s = s.trim();
    let is = |words: [&str; 4]| words.iter().any(|w| s.eq_ignore_ascii_case(w));
    if is(["1", "true", "t", "1.0"]) {
        Some(true)
    } else if is(["0", "false", "f", "0.0"]) {
        Some(false)
    } else {
        None
    }
}

/// Parses a timestamp to UTC (see the module docs for the accepted forms).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

/// Parses a non-negative integer (`12`, also `12.0`); `None` for anything else,
/// negative values included.
pub fn parse_nonneg_int(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>()
        .ok()
        .or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.is_finite())
                .map(|f| f as i64)
        })
        .filter(|v| *v >= 0)
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

/// The subject and topic of every question in the lake.
async fn question_index(lake: &Lake) -> Result<HashMap<String, (Option<String>, Option<String>)>> {
    let batches = lake
        .sql("SELECT question_id, subject_id, topic_id FROM questions")
        .await?;
    let mut out = HashMap::new();
    for b in &batches {
        let q = b.column(0).as_string::<i32>();
        let s = b.column(1).as_string::<i32>();
        let t = b.column(2).as_string::<i32>();
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
        let need = |name: &str, c: Option<&StringArray>, problems: &mut Problems| {
            let v = value(c, i).map(str::to_string);
            if v.is_none() {
                problems.push(format!("{}, column '{name}': value is missing", rn()));
            }
            v
        };
        let attempt_id = need("attempt_id", c_id, &mut problems);
        let student_id = need("student_id", c_st, &mut problems);
        let question_id = need("question_id", c_q, &mut problems);
        let correct = match value(c_ok, i) {
            None => {
                problems.push(format!("{}, column 'correct': value is missing", rn()));
                None
            }
            Some(s) => {
                let v = parse_correct(s);
                if v.is_none() {
                    problems.push(format!(
                        "{}, column 'correct': expected 0/1/true/false, got '{s}'",
                        rn()
                    ));
                }
                v
            }
        };
        let completed_at = match value(c_ts, i) {
            None => {
                problems.push(format!("{}, column 'completed_at': value is missing", rn()));
                None
            }
            Some(s) => {
                let v = parse_timestamp(s);
                if v.is_none() {
                    problems.push(format!(
                        "{}, column 'completed_at': cannot parse timestamp '{s}' (use RFC 3339, e.g. 2026-03-01T09:30:00Z)",
                        rn()
                    ));
                }
                match v {
                    Some(t) if !time_window.contains(&t) => {
                        problems.push(format!(
                            "{}, column 'completed_at': '{s}' is outside {} .. {} (from 2000 to a day after now)",
                            rn(),
                            time_window.start().to_rfc3339(),
                            time_window.end().to_rfc3339()
                        ));
                        None
                    }
                    v => v,
                }
            }
        };
        let mut int = |name: &str, c: Option<&StringArray>| match value(c, i) {
            None => None,
            Some(s) => {
                let v = parse_nonneg_int(s);
                if v.is_none() {
                    problems.push(format!(
                        "{}, column '{name}': expected a non-negative integer, got '{s}'",
                        rn()
                    ));
                }
                v
            }
        };
        let time_spent_ms = int("time_spent_ms", c_time);
        let hints_used = int("hints_used", c_hint);
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
                let present: HashSet<&str> = current
                    .iter()
                    .flat_map(|b| {
                        let ids = b.column(0).as_string::<i32>();
                        (0..ids.len()).map(move |r| ids.value(r))
                    })
                    .collect();
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

/// Every `attempt_id` already in the lake.
async fn existing_attempt_ids(lake: &Lake) -> Result<HashSet<String>> {
    let batches = lake.sql("SELECT attempt_id FROM attempts").await?;
    let mut out = HashSet::new();
    for b in &batches {
        let a = b.column(0).as_string::<i32>();
        out.extend((0..a.len()).map(|i| a.value(i).to_string()));
    }
    Ok(out)
}

/// An `attempts` batch (the catalog's file schema) of `rows`, in order.
pub fn attempt_batch(rows: &[AttemptRow]) -> Result<RecordBatch> {
    let def = catalog::table(ATTEMPTS)?;
    let s = |f: &dyn Fn(&AttemptRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let cols: Vec<ArrayRef> = vec![
        s(&|r| Some(&r.attempt_id)),
        s(&|r| Some(&r.student_id)),
        s(&|r| Some(&r.question_id)),
        s(&|r| r.subject_id.as_deref()),
        s(&|r| r.topic_id.as_deref()),
        s(&|r| r.session_id.as_deref()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.correct))
                .collect::<BooleanArray>(),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.completed_at))
                .with_timezone("UTC"),
        ),
        Arc::new(rows.iter().map(|r| r.time_spent_ms).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.hints_used).collect::<Int64Array>()),
    ];
    Ok(RecordBatch::try_new(def.file_schema.clone(), cols)?)
}

/// A validated row of the `questions` table (shared by ingest, anchors and the
/// PostgreSQL export).
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionRow {
    /// Question id.
    pub question_id: String,
    /// Subject id.
    pub subject_id: Option<String>,
    /// Topic id.
    pub topic_id: Option<String>,
    /// Tags, in source order.
    pub tags: Vec<String>,
    /// Known discrimination (anchors).
    pub irt_a: Option<f64>,
    /// Known difficulty (anchors).
    pub irt_b: Option<f64>,
    /// Known guessing (anchors).
    pub irt_c: Option<f64>,
    /// Whether the question is an anchor of the scale.
    pub is_anchor: bool,
}

/// Every question in the lake's `questions` table, by id (empty if never written).
pub async fn read_questions(lake: &Lake) -> Result<BTreeMap<String, QuestionRow>> {
    let mut rows = BTreeMap::new();
    for b in lake.read_partition(QUESTIONS, &[]).await? {
        for r in question_rows(&b) {
            rows.insert(r.question_id.clone(), r);
        }
    }
    Ok(rows)
}

/// Splits a tags cell: a JSON array (`["anchor","algebra"]`) or a list separated by
/// `|`, `;` or `,`.
pub fn parse_tags(s: &str) -> Vec<String> {
    let s = s.trim();
    if s.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(s)
    {
        return v
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }
    s.split(['|', ';', ','])
        .map(|t| t.trim().trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Ingests a questions file (CSV or Parquet) into the `questions` table.
///
/// Required column: `question_id`; optional: `subject_id, topic_id, tags, irt_a, irt_b,
/// irt_c, is_anchor`. A question is an anchor when its tags contain `anchor` or
/// `is_anchor` is true; an anchor needs valid known parameters.
pub async fn ingest_questions(lake: &Lake, path: &FsPath) -> Result<QuestionsReport> {
    let raw = read_raw(path)?;
    raw.require(&["question_id"])?;
    let col = |n: &str| raw.column(n);
    let (c_q, c_s, c_t, c_tags, c_a, c_b, c_c, c_anchor) = (
        col("question_id"),
        col("subject_id"),
        col("topic_id"),
        col("tags"),
        col("irt_a"),
        col("irt_b"),
        col("irt_c"),
        col("is_anchor"),
    );
    let mut problems = Problems::new(&raw.file);
    let mut first_row: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(raw.rows);
    for i in 0..raw.rows {
        let rn = raw.row_name(i);
        let Some(qid) = value(c_q, i) else {
            problems.push(format!("{rn}, column 'question_id': value is missing"));
            continue;
        };
        if let Some(prev) = first_row.insert(qid.to_string(), i) {
            problems.push(format!(
                "{rn}, column 'question_id': '{qid}' already appears on {}",
                raw.row_name(prev)
            ));
            continue;
        }
        let mut num = |name: &str, c: Option<&StringArray>| match value(c, i) {
            None => None,
            Some(s) => match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    problems.push(format!(
                        "{rn}, column '{name}': expected a number, got '{s}'"
                    ));
                    None
                }
            },
        };
        let (irt_a, irt_b, irt_c) = (num("irt_a", c_a), num("irt_b", c_b), num("irt_c", c_c));
        let tags = value(c_tags, i).map(parse_tags).unwrap_or_default();
        let flag = match value(c_anchor, i) {
            None => false,
            Some(s) => match parse_correct(s) {
                Some(v) => v,
                None => {
                    problems.push(format!(
                        "{rn}, column 'is_anchor': expected 0/1/true/false, got '{s}'"
                    ));
                    false
                }
            },
        };
        let is_anchor = flag || tags.iter().any(|t| t.eq_ignore_ascii_case("anchor"));
        if is_anchor {
            match (irt_a, irt_b) {
                (Some(a), Some(_)) if a > 0.0 => {}
                (Some(a), Some(_)) => problems.push(format!(
                    "{rn}, column 'irt_a': anchor '{qid}' needs irt_a > 0, got {a}"
                )),
                _ => problems.push(format!(
                    "{rn}: anchor '{qid}' needs known parameters irt_a and irt_b"
                )),
            }
            if let Some(c) = irt_c
                && !(0.0..1.0).contains(&c)
            {
                problems.push(format!(
                    "{rn}, column 'irt_c': anchor '{qid}' needs 0 <= irt_c < 1, got {c}"
                ));
            }
        }
        rows.push(QuestionRow {
            question_id: qid.to_string(),
            subject_id: value(c_s, i).map(str::to_string),
            topic_id: value(c_t, i).map(str::to_string),
            tags,
            irt_a,
            irt_b,
            irt_c: if is_anchor {
                Some(irt_c.unwrap_or(0.0))
            } else {
                irt_c
            },
            is_anchor,
        });
    }
    problems.finish()?;

    let mut merged = read_questions(lake).await?;
    let mut report = QuestionsReport {
        file: raw.file.clone(),
        rows_read: raw.rows,
        anchors: rows.iter().filter(|r| r.is_anchor).count(),
        ..Default::default()
    };
    let before = merged.clone();
    for r in rows {
        match merged.insert(r.question_id.clone(), r) {
            None => report.inserted += 1,
            Some(_) => report.updated += 1,
        }
    }
    report.total = merged.len();
    if merged != before {
        let batch = question_batch(&merged.into_values().collect::<Vec<_>>())?;
        lake.write_partition(QUESTIONS, &[], &[batch]).await?;
    }
    Ok(report)
}

/// The rows of a `questions` batch (the catalog's file schema).
pub fn question_rows(b: &RecordBatch) -> Vec<QuestionRow> {
    let s = |i: usize| b.column(i).as_string::<i32>();
    let f = |i: usize| b.column(i).as_primitive::<arrow::datatypes::Float64Type>();
    let (q, subj, top, tags, a, bb, c, anc) = (
        s(0),
        s(1),
        s(2),
        b.column(3).as_list::<i32>(),
        f(4),
        f(5),
        f(6),
        b.column(7).as_boolean(),
    );
    let opt_s = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    let opt_f = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    (0..b.num_rows())
        .map(|i| QuestionRow {
            question_id: q.value(i).to_string(),
            subject_id: opt_s(subj, i),
            topic_id: opt_s(top, i),
            tags: if tags.is_null(i) {
                Vec::new()
            } else {
                let v = tags.value(i);
                let v = v.as_string::<i32>();
                (0..v.len()).map(|j| v.value(j).to_string()).collect()
            },
            irt_a: opt_f(a, i),
            irt_b: opt_f(bb, i),
            irt_c: opt_f(c, i),
            is_anchor: anc.value(i),
        })
        .collect()
}

/// A `questions` batch (the catalog's file schema) of `rows`, in order.
pub fn question_batch(rows: &[QuestionRow]) -> Result<RecordBatch> {
    let def = catalog::table(QUESTIONS)?;
    let mut tags = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for t in &r.tags {
            tags.values().append_value(t);
        }
        tags.append(true);
    }
    let tags = tags.finish();
    let field = match def.file_schema.field_with_name("tags")?.data_type() {
        DataType::List(f) => f.clone(),
        _ => unreachable!("catalog declares tags as a list"),
    };
    let tags = arrow::array::ListArray::new(
        field,
        tags.offsets().clone(),
        tags.values().clone(),
        tags.nulls().cloned(),
    );
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            rows.iter()
                .map(|r| Some(r.question_id.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.subject_id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.topic_id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(tags),
        Arc::new(rows.iter().map(|r| r.irt_a).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.irt_b).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.irt_c).collect::<Float64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.is_anchor))
                .collect::<BooleanArray>(),
        ),
    ];
    Ok(RecordBatch::try_new(def.file_schema.clone(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_correct_timestamps_and_tags() {
        assert_eq!(parse_correct("1"), Some(true));
        assert_eq!(parse_correct("FALSE"), Some(false));
        assert_eq!(parse_correct("2"), None);
        assert_eq!(parse_correct("yes"), None);
        let t = parse_timestamp("2026-03-01T09:30:00Z").unwrap();
        assert_eq!(parse_timestamp("2026-03-01 09:30:00+00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-03-01 11:30:00+02:00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-03-01 09:30:00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-03-01T09:30:00.000").unwrap(), t);
        assert!(parse_timestamp("01/03/2026").is_none());
        assert_eq!(parse_tags("[\"anchor\", \"alg\"]"), vec!["anchor", "alg"]);
        assert_eq!(parse_tags("anchor|alg"), vec!["anchor", "alg"]);
        assert!(parse_tags("").is_empty());
    }
}

/// What [`set_anchors`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AnchorUpdate {
    /// Questions newly tagged (or re-tagged) as anchors with the given parameters.
    pub tagged: usize,
    /// Existing anchors kept as they were.
    pub kept: usize,
    /// Existing anchors whose tag was removed (`replace`).
    pub untagged: usize,
}

/// Marks questions as anchors with known parameters `(question_id, a, b, c)`: the tag
/// `anchor` is added, `irt_a/irt_b/irt_c` set and `is_anchor` true. Existing anchors
/// not in the list are kept, unless `replace` (then their tag, flag and parameters are
/// removed). Unknown question ids are refused and nothing is written.
pub async fn set_anchors(
    lake: &Lake,
    anchors: &[(String, f64, f64, f64)],
    replace: bool,
) -> Result<AnchorUpdate> {
    let mut rows = read_questions(lake).await?;
    let wanted: HashMap<&str, (f64, f64, f64)> = anchors
        .iter()
        .map(|(q, a, b, c)| (q.as_str(), (*a, *b, *c)))
        .collect();
    let unknown: Vec<&str> = wanted
        .keys()
        .copied()
        .filter(|q| !rows.contains_key(*q))
        .collect();
    if !unknown.is_empty() {
        return Err(LakeError::InvalidInput(format!(
            "anchors for questions not in the lake: {}",
            unknown.join(", ")
        )));
    }
    let mut update = AnchorUpdate::default();
    for (id, row) in rows.iter_mut() {
        if let Some(&(a, b, c)) = wanted.get(id.as_str()) {
            if !row.tags.iter().any(|t| t.eq_ignore_ascii_case("anchor")) {
                row.tags.push("anchor".into());
            }
            (row.irt_a, row.irt_b, row.irt_c, row.is_anchor) = (Some(a), Some(b), Some(c), true);
            update.tagged += 1;
        } else if row.is_anchor {
            if replace {
                row.tags.retain(|t| !t.eq_ignore_ascii_case("anchor"));
                (row.irt_a, row.irt_b, row.irt_c, row.is_anchor) = (None, None, None, false);
                update.untagged += 1;
            } else {
                update.kept += 1;
            }
        }
    }
    let batch = question_batch(&rows.into_values().collect::<Vec<_>>())?;
    lake.write_partition(QUESTIONS, &[], &[batch]).await?;
    Ok(update)
}
