//! Attempts: source rows to lake rows, and one partition per UTC day, written as soon
//! as the day is complete (rows arrive ordered by `completed_at`).

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use lake::Lake;
use lake::catalog::{self, ATTEMPTS};
use lake::ingest::{AttemptRow, attempt_batch, parse_correct, parse_nonneg_int};
use tokio_postgres::Row;

use crate::error::{ExportError, Result};
use crate::source::{text, time};
use crate::{DayWritten, Examples};

/// Why a source row was not exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// UTC day of `completed_at`, when known.
    pub(crate) day: Option<NaiveDate>,
    /// Stable reason key (`missing_student_id`, `correct_not_0_1`, `unknown_question`, …).
    pub(crate) reason: &'static str,
    /// What was wrong, naming the attempt.
    pub(crate) message: String,
}

/// A converted row, with notes about optional values that were set to NULL.
pub(crate) struct Converted {
    pub(crate) day: NaiveDate,
    pub(crate) row: AttemptRow,
    pub(crate) nulled: Vec<String>,
}

/// Subject and topic of each question id of the exported bank.
pub(crate) type QuestionIndex = HashMap<String, (Option<String>, Option<String>)>;

/// Converts one row of `attempts.sql` (see the crate docs for the mapping).
pub(crate) fn convert(
    row: &Row,
    questions: &QuestionIndex,
) -> Result<Result<Converted, Rejection>> {
    let id = text(row, 0, "attempt.id")?;
    let student = text(row, 1, "attempt.student_id")?;
    let question = text(row, 2, "attempt.question_id")?;
    let correct = text(row, 3, "attempt.correct")?;
    let completed_at = time(row, 4, "attempt.completed_at")?;
    let time_spent = text(row, 5, "attempt.time_spent_ms")?;
    let hints = text(row, 6, "attempt.hints_used")?;
    let session = text(row, 7, "attempt.session_id")?;
    Ok(convert_values(
        id,
        student,
        question,
        correct,
        completed_at,
        time_spent,
        hints,
        session,
        questions,
    ))
}

/// The mapping of one attempt, on plain values (unit-tested without a database).
#[allow(clippy::too_many_arguments)]
pub(crate) fn convert_values(
    id: Option<String>,
    student: Option<String>,
    question: Option<String>,
    correct: Option<String>,
    completed_at: Option<DateTime<Utc>>,
    time_spent: Option<String>,
    hints: Option<String>,
    session: Option<String>,
    questions: &QuestionIndex,
) -> Result<Converted, Rejection> {
    let day = completed_at.map(|t| t.date_naive());
    let reject = |reason: &'static str, message: String| Rejection {
        day,
        reason,
        message,
    };
    let Some(id) = id else {
        return Err(reject(
            "missing_attempt_id",
            "an attempt with a NULL id".to_string(),
        ));
    };
    let Some(student_id) = student else {
        return Err(reject(
            "missing_student_id",
            format!("attempt {id}: student_id is NULL"),
        ));
    };
    let Some(question_id) = question else {
        return Err(reject(
            "missing_question_id",
            format!("attempt {id}: question_id is NULL"),
        ));
    };
    let correct = match correct {
        None => {
            return Err(reject(
                "missing_correct",
                format!("attempt {id}: correct is NULL"),
            ));
        }
        Some(c) => match parse_correct(&c) {
            Some(v) => v,
            None => {
                return Err(reject(
                    "correct_not_0_1",
                    format!("attempt {id}: correct is '{c}', expected 0/1 or true/false"),
                ));
            }
        },
    };
    let Some(completed_at) = completed_at else {
        return Err(reject(
            "missing_completed_at",
            format!("attempt {id}: completed_at is NULL"),
        ));
    };
    let Some((subject_id, topic_id)) = questions.get(&question_id) else {
        return Err(reject(
            "unknown_question",
            format!("attempt {id}: question {question_id} is not in the question table"),
        ));
    };
    let mut nulled = Vec::new();
    let mut count = |name: &str, v: Option<String>| match v {
        None => None,
        Some(s) => {
            let n = parse_nonneg_int(&s);
            if n.is_none() {
                nulled.push(format!(
                    "attempt {id}: {name} '{s}' is not a non-negative integer: set to NULL"
                ));
            }
            n
        }
    };
    let time_spent_ms = count("time_spent_ms", time_spent);
    let hints_used = count("hints_used", hints);
    Ok(Converted {
        day: completed_at.date_naive(),
        row: AttemptRow {
            attempt_id: id,
            student_id,
            question_id,
            subject_id: subject_id.clone(),
            topic_id: topic_id.clone(),
            session_id: session,
            correct,
            completed_at: completed_at.timestamp_micros(),
            time_spent_ms,
            hints_used,
        },
        nulled,
    })
}

/// The rule that stops a broken source from silently emptying the lake: a day fails
/// when more than `max_share` of its rows, and more than [`MIN_REJECTED_TO_FAIL`] rows,
/// are rejected.
pub const MIN_REJECTED_TO_FAIL: u64 = 10;

/// Collects the rows of the current day and writes each day as one partition.
pub(crate) struct DayWriter<'l> {
    lake: &'l Lake,
    max_share: f64,
    day: Option<NaiveDate>,
    /// Rows of the day not yet turned into a batch.
    rows: Vec<AttemptRow>,
    /// Batches of the day (one per page).
    batches: Vec<RecordBatch>,
    /// Ids of the day, to drop duplicates.
    ids: HashSet<String>,
    read_in_day: u64,
    rejected_in_day: BTreeMap<&'static str, u64>,
    /// The day's first rejections (the error when too many of the day are rejected).
    rejected_examples_in_day: Vec<String>,
    /// Partitions written.
    pub(crate) written: Vec<DayWritten>,
    /// Rows read from the source.
    pub(crate) read: u64,
    /// Duplicate ids dropped.
    pub(crate) duplicates: u64,
    /// Rejected rows by reason.
    pub(crate) rejected_by_reason: BTreeMap<String, u64>,
    /// Rejections with examples.
    pub(crate) rejected: Examples,
    /// Optional values set to NULL, with examples.
    pub(crate) nulled: Examples,
}

impl<'l> DayWriter<'l> {
    pub(crate) fn new(lake: &'l Lake, max_share: f64) -> Self {
        Self {
            lake,
            max_share,
            day: None,
            rows: Vec::new(),
            batches: Vec::new(),
            ids: HashSet::new(),
            read_in_day: 0,
            rejected_in_day: BTreeMap::new(),
            rejected_examples_in_day: Vec::new(),
            written: Vec::new(),
            read: 0,
            duplicates: 0,
            rejected_by_reason: BTreeMap::new(),
            rejected: Examples::default(),
            nulled: Examples::default(),
        }
    }

    /// Takes one converted (or rejected) row. Rows must come in `completed_at` order;
    /// a rejected row counts towards its own day (or the current one if it has none).
    pub(crate) async fn push(&mut self, item: Result<Converted, Rejection>) -> Result<()> {
        self.read += 1;
        let day = match &item {
            Ok(c) => Some(c.day),
            Err(r) => r.day,
        };
        if let Some(day) = day
            && self.day != Some(day)
        {
            self.finish_day().await?;
            self.day = Some(day);
        }
        match item {
            Err(r) => {
                self.read_in_day += 1;
                *self.rejected_in_day.entry(r.reason).or_default() += 1;
                *self
                    .rejected_by_reason
                    .entry(r.reason.to_string())
                    .or_default() += 1;
                if self.rejected_examples_in_day.len() < 10 {
                    self.rejected_examples_in_day.push(r.message.clone());
                }
                self.rejected.push(r.message);
            }
            Ok(c) => {
                self.read_in_day += 1;
                for n in c.nulled {
                    self.nulled.push(n);
                }
                if !self.ids.insert(c.row.attempt_id.clone()) {
                    self.duplicates += 1;
                    return Ok(());
                }
                self.rows.push(c.row);
            }
        }
        Ok(())
    }

    /// Turns the rows held so far into a batch (called after each page, so memory holds
    /// the day as Arrow arrays rather than as row structs).
    pub(crate) fn compact(&mut self) -> Result<()> {
        if !self.rows.is_empty() {
            self.batches.push(attempt_batch(&self.rows)?);
            self.rows.clear();
        }
        Ok(())
    }

    /// Writes the current day (if it has rows) as one partition object, replacing what
    /// an earlier run wrote there. The day's batches are concatenated first, so the
    /// object's bytes do not depend on the page size.
    pub(crate) async fn finish_day(&mut self) -> Result<()> {
        self.compact()?;
        let Some(day) = self.day.take() else {
            self.reset_day();
            return Ok(());
        };
        let rejected: u64 = self.rejected_in_day.values().sum();
        if rejected > MIN_REJECTED_TO_FAIL
            && rejected as f64 > self.max_share * self.read_in_day as f64
        {
            let reasons: Vec<String> = self
                .rejected_in_day
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            return Err(ExportError::InvalidInput(format!(
                "source: {rejected} of {} attempts of {day} were rejected ({}; more than \
                 max_rejected_share = {}); examples:\n  {}\nthe day was not written",
                self.read_in_day,
                reasons.join(", "),
                self.max_share,
                self.rejected_examples_in_day.join("\n  ")
            )));
        }
        let batches = std::mem::take(&mut self.batches);
        self.reset_day();
        if batches.is_empty() {
            return Ok(());
        }
        let schema = catalog::table(ATTEMPTS)?.file_schema.clone();
        let batch = arrow::compute::concat_batches(&schema, &batches)?;
        drop(batches);
        let dt = day.format("%Y-%m-%d").to_string();
        let summary = self
            .lake
            .write_partition(ATTEMPTS, &[("dt", dt.as_str())], &[batch])
            .await?;
        tracing::info!(dt, rows = summary.rows, bytes = summary.bytes, key = %summary.key, "wrote attempts partition");
        self.written.push(DayWritten {
            dt: day,
            attempts: summary.rows as u64,
            key: summary.key,
            bytes: summary.bytes as u64,
        });
        Ok(())
    }

    fn reset_day(&mut self) {
        self.ids.clear();
        self.read_in_day = 0;
        self.rejected_in_day.clear();
        self.rejected_examples_in_day.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn index() -> QuestionIndex {
        let mut q = QuestionIndex::new();
        q.insert("7".into(), (s("exam1"), s("topicA")));
        q.insert("8".into(), (None, None));
        q
    }

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        id: Option<String>,
        st: Option<String>,
        q: Option<String>,
        c: Option<String>,
        t: Option<DateTime<Utc>>,
        ms: Option<String>,
        h: Option<String>,
        sess: Option<String>,
    ) -> Result<Converted, Rejection> {
        convert_values(id, st, q, c, t, ms, h, sess, &index())
    }

    #[test]
    fn maps_a_full_row_and_partitions_by_utc_day() {
        let c = conv(
            s("42"),
            s("s1"),
            s("7"),
            s("true"),
            at("2026-03-02T01:30:00+02:00"),
            s("1500"),
            s("0"),
            s("x"),
        )
        .map_err(|r| r.message)
        .expect("valid row");
        assert_eq!(c.day, NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"));
        assert_eq!(c.row.subject_id.as_deref(), Some("exam1"));
        assert_eq!(c.row.topic_id.as_deref(), Some("topicA"));
        assert!(c.row.correct);
        assert_eq!(c.row.time_spent_ms, Some(1500));
        assert_eq!(c.row.hints_used, Some(0));
        assert!(c.nulled.is_empty());
        let expected = at("2026-03-01T23:30:00Z").map(|t| t.timestamp_micros());
        assert_eq!(Some(c.row.completed_at), expected);
    }

    #[test]
    fn nulls_in_optional_columns_stay_null_and_bad_counts_become_null() {
        let c = conv(
            s("1"),
            s("s1"),
            s("8"),
            s("0"),
            at("2026-03-02T00:00:00Z"),
            None,
            s("-2"),
            None,
        )
        .map_err(|r| r.message)
        .expect("valid row");
        assert!(!c.row.correct);
        assert_eq!(c.row.time_spent_ms, None);
        assert_eq!(c.row.hints_used, None);
        assert_eq!(c.row.session_id, None);
        assert_eq!(c.row.subject_id, None);
        assert_eq!(c.nulled.len(), 1);
        assert!(c.nulled[0].contains("hints_used '-2'"), "{:?}", c.nulled);
        assert_eq!(c.day, NaiveDate::from_ymd_opt(2026, 3, 2).expect("date"));
    }

    #[test]
    fn rejections_name_the_attempt_and_the_reason() {
        let t = at("2026-03-02T10:00:00Z");
        let cases = [
            (
                conv(None, s("s"), s("7"), s("1"), t, None, None, None),
                "missing_attempt_id",
            ),
            (
                conv(s("5"), None, s("7"), s("1"), t, None, None, None),
                "missing_student_id",
            ),
            (
                conv(s("5"), s("s"), None, s("1"), t, None, None, None),
                "missing_question_id",
            ),
            (
                conv(s("5"), s("s"), s("7"), None, t, None, None, None),
                "missing_correct",
            ),
            (
                conv(s("5"), s("s"), s("7"), s("2"), t, None, None, None),
                "correct_not_0_1",
            ),
            (
                conv(s("5"), s("s"), s("7"), s("yes"), t, None, None, None),
                "correct_not_0_1",
            ),
            (
                conv(s("5"), s("s"), s("7"), s("1"), None, None, None, None),
                "missing_completed_at",
            ),
            (
                conv(s("5"), s("s"), s("99"), s("1"), t, None, None, None),
                "unknown_question",
            ),
        ];
        for (got, reason) in cases {
            let r = match got {
                Err(r) => r,
                Ok(_) => panic!("expected a rejection for {reason}"),
            };
            assert_eq!(r.reason, reason);
            if reason != "missing_attempt_id" {
                assert!(r.message.starts_with("attempt 5:"), "{}", r.message);
            }
        }
    }
}
