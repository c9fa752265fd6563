#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`meta`]: parsing of `question.meta` (tags, anchor flag, known parameters);
//! - `source`: connection, session, source schema check, paged reads;
//! - `tls`: TLS of the connection (libpq's `sslmode` on rustls);
//! - `questions`: the new `questions` table, merged with the lake's anchors;
//! - `attempts`: row mapping and one partition per day.

mod attempts;
mod error;
pub mod meta;
mod questions;
mod source;
mod tls;

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate, NaiveTime, Utc};
use lake::Lake;
use lake::catalog::{self, ATTEMPTS, QUESTIONS};
use serde::{Deserialize, Serialize};

pub use attempts::MIN_REJECTED_TO_FAIL;
pub use error::{ExportError, Result};
pub use source::{ATTEMPT_COLUMNS, DEFAULT_CONNECT_TIMEOUT, QUERY_TIMEOUT, QUESTION_COLUMNS};

/// Default rows per page (one round trip to the database).
pub const DEFAULT_PAGE_SIZE: u32 = 10_000;
/// Largest accepted page size.
pub const MAX_PAGE_SIZE: u32 = 100_000;
/// Default share of a day's rows that may be rejected before the stage fails.
pub const DEFAULT_MAX_REJECTED_SHARE: f64 = 0.05;
/// Longest window, in days (`to − from + 1`).
pub const MAX_WINDOW_DAYS: u64 = 366;
/// How many examples a count in the summary carries at most.
pub const MAX_EXAMPLES: usize = 10;

/// The event of the stage (JSON, as sent by the state machine or the CLI). Unknown
/// fields are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// The day the run is for (UTC); default today. The default window is the day before
    /// and this day.
    #[serde(default, deserialize_with = "lake::bounds::opt_date")]
    pub run_date: Option<NaiveDate>,
    /// First day to export (UTC, inclusive); default `run_date − 1`.
    #[serde(default, deserialize_with = "lake::bounds::opt_date")]
    pub from: Option<NaiveDate>,
    /// Last day to export (UTC, inclusive); default `run_date`.
    #[serde(default, deserialize_with = "lake::bounds::opt_date")]
    pub to: Option<NaiveDate>,
    /// Rows per page fetched from the database (1 to 100000); default 10000. Changes
    /// memory use and round trips, never the output.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// A day fails (`Fatal.InvalidInput`, not written) when more than this share of its
    /// rows, and more than 10 rows, are rejected; 0 to 1, default 0.05.
    #[serde(default)]
    pub max_rejected_share: Option<f64>,
}

/// The input with its defaults applied and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The day the run is for.
    pub run_date: NaiveDate,
    /// First day exported (inclusive).
    pub from: NaiveDate,
    /// Last day exported (inclusive).
    pub to: NaiveDate,
    /// Rows per page.
    pub page_size: u32,
    /// Largest share of a day's rows that may be rejected.
    pub max_rejected_share: f64,
}

impl ExportInput {
    /// Applies the defaults (today in UTC when `run_date` is absent) and checks the
    /// fields; the error names the field.
    pub fn window(&self) -> Result<Window> {
        self.window_on(Utc::now().date_naive())
    }

    /// [`ExportInput::window`] with `today` as the default run date.
    pub fn window_on(&self, today: NaiveDate) -> Result<Window> {
        let bad = |m: String| ExportError::InvalidInput(m);
        let run_date = self.run_date.unwrap_or(today);
        let from = match self.from {
            Some(d) => d,
            None => run_date
                .checked_sub_days(Days::new(1))
                .ok_or_else(|| bad(format!("run_date {run_date} is out of range")))?,
        };
        let to = self.to.unwrap_or(run_date);
        // Rows of the window become `dt` partitions: the window lies in the times a row
        // may carry (lake::bounds::row_time_window), never e.g. year 0001.
        let latest = today.checked_add_days(Days::new(1)).unwrap_or(today);
        for (field, d) in [("run_date", run_date), ("from", from), ("to", to)] {
            if d < lake::bounds::MIN_DATE || d > latest {
                return Err(bad(format!(
                    "{field} {d} is out of range: export days run from {} to {latest} (today + 1)",
                    lake::bounds::MIN_DATE
                )));
            }
        }
        if from > to {
            return Err(bad(format!("from ({from}) is after to ({to})")));
        }
        let days = (to - from).num_days() as u64 + 1;
        if days > MAX_WINDOW_DAYS {
            return Err(bad(format!(
                "the window from {from} to {to} covers {days} days, more than \
                 {MAX_WINDOW_DAYS}; export it in several runs"
            )));
        }
        let page_size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(bad(format!(
                "page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"
            )));
        }
        let share = self
            .max_rejected_share
            .unwrap_or(DEFAULT_MAX_REJECTED_SHARE);
        if !(0.0..=1.0).contains(&share) {
            // (NaN is in no range)
            return Err(bad(format!(
                "max_rejected_share must be between 0 and 1, got {share}"
            )));
        }
        Ok(Window {
            run_date,
            from,
            to,
            page_size,
            max_rejected_share: share,
        })
    }
}

/// A count with up to [`MAX_EXAMPLES`] examples (messages naming the row).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Examples {
    /// How many.
    pub count: u64,
    /// The first few, as messages naming the question or attempt.
    pub examples: Vec<String>,
}

impl Examples {
    pub(crate) fn push(&mut self, message: String) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(message);
        }
    }
}

/// One `attempts` partition written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayWritten {
    /// The day (partition `dt`).
    pub dt: NaiveDate,
    /// Rows written.
    pub attempts: u64,
    /// Object key relative to the lake root.
    pub key: String,
    /// Object size in bytes.
    pub bytes: u64,
}

/// What the stage did (the JSON summary the state machine passes on). Contains no
/// wall-clock time, so two runs over the same source give the same summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportOutput {
    /// The run date.
    pub run_date: NaiveDate,
    /// First day of the window.
    pub from: NaiveDate,
    /// Last day of the window.
    pub to: NaiveDate,
    /// Attempts written (sum over `days`).
    pub attempts: u64,
    /// Attempt rows read from the source in the window.
    pub attempts_read: u64,
    /// Rows not written because their id already appeared that day.
    pub duplicates: u64,
    /// Rows not written because a required value is missing or invalid, or their
    /// question is unknown; examples name the attempt.
    pub rejected: Examples,
    /// `rejected.count` by reason (`missing_student_id`, `correct_not_0_1`,
    /// `unknown_question`, …).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Optional values (`time_spent_ms`, `hints_used`) that were negative or not an
    /// integer and were written as NULL.
    pub values_nulled: Examples,
    /// Partitions written, by day.
    pub days: Vec<DayWritten>,
    /// Days of the window without attempts: nothing was written for them.
    pub empty_days: Vec<NaiveDate>,
    /// Of `empty_days`, those whose partition in the lake still holds an earlier export.
    pub empty_days_kept: Vec<NaiveDate>,
    /// Questions in the `questions` table after the export.
    pub questions: u64,
    /// Anchors among them.
    pub anchors: u64,
    /// Anchors kept from the lake (tagged there, not or not validly in the source).
    pub anchors_kept_from_lake: u64,
    /// Questions of the lake that are no longer in the source (dropped).
    pub questions_removed: u64,
    /// Whether the `questions` object was (re)written; false when it was already equal.
    pub questions_written: bool,
    /// Problems in `question.meta` (and skipped question rows), with examples.
    pub meta_warnings: Examples,
    /// Rows per page.
    pub page_size: u32,
    /// Pages fetched (questions and attempts).
    pub pages: u64,
}

/// Runs the export for the input's window from the database at `database_url` into
/// `lake`. See the crate docs for the mapping, the window and the errors.
pub async fn run(lake: &Lake, database_url: &str, input: &ExportInput) -> Result<ExportOutput> {
    let w = input.window()?;
    let started = std::time::Instant::now();
    let mut source = source::Source::connect(database_url).await?;
    let target = source.target.clone();
    tracing::info!(%target, from = %w.from, to = %w.to, page_size = w.page_size, "export starts");
    let tx = source.snapshot().await?;
    source::check_schema(&tx, &target).await?;

    // Questions: read all (the bank), merge with the lake's anchors, write if changed.
    let lake_questions = lake::ingest::read_questions(lake).await?;
    let bank = questions::read_bank(&tx, &target, w.page_size, &lake_questions).await?;
    let new_rows: Vec<_> = bank.rows.values().cloned().collect();
    let old_rows: Vec<_> = lake_questions.into_values().collect();
    let questions_written = !new_rows.is_empty() && new_rows != old_rows;
    if questions_written {
        let batch = lake::ingest::question_batch(&new_rows)?;
        lake.write_partition(QUESTIONS, &[], &[batch]).await?;
    }
    let index: attempts::QuestionIndex = bank
        .rows
        .values()
        .map(|q| {
            (
                q.question_id.clone(),
                (q.subject_id.clone(), q.topic_id.clone()),
            )
        })
        .collect::<HashMap<_, _>>();

    // Attempts: stream the window in pages, one partition per UTC day.
    let start = w.from.and_time(NaiveTime::MIN).and_utc();
    let end =
        w.to.checked_add_days(Days::new(1))
            .ok_or_else(|| ExportError::InvalidInput(format!("to ({}) is out of range", w.to)))?
            .and_time(NaiveTime::MIN)
            .and_utc();
    let mut writer = attempts::DayWriter::new(lake, w.max_rejected_share);
    let mut pages = source::Pages::open(
        &tx,
        source::ATTEMPTS_SQL,
        &[&start, &end],
        w.page_size,
        format!("attempts from {target}"),
    )
    .await?;
    while let Some(page) = pages.next().await? {
        for row in &page {
            writer.push(attempts::convert(row, &index)?).await?;
        }
        writer.compact()?;
    }
    writer.finish_day().await?;
    let attempt_pages = pages.fetched;
    drop(pages);
    source::within(
        || format!("ending the transaction on {target}"),
        tx.commit(),
    )
    .await?;

    let mut empty_days = Vec::new();
    let mut empty_days_kept = Vec::new();
    let written: Vec<NaiveDate> = writer.written.iter().map(|d| d.dt).collect();
    let def = catalog::table(ATTEMPTS)?;
    for day in w.from.iter_days().take_while(|d| *d <= w.to) {
        if written.contains(&day) {
            continue;
        }
        empty_days.push(day);
        let dt = day.format("%Y-%m-%d").to_string();
        let key = lake.partition_key(def, &[("dt", dt.as_str())])?;
        let folder = key.rsplit_once('/').map_or(key.as_str(), |(f, _)| f);
        if !lake.list(folder).await?.is_empty() {
            tracing::warn!(
                dt,
                "the source has no attempts for this day; the lake's earlier export of it was kept"
            );
            empty_days_kept.push(day);
        }
    }
    if writer.rejected.count > 0 {
        tracing::warn!(
            rejected = writer.rejected.count,
            by_reason = ?writer.rejected_by_reason,
            examples = ?writer.rejected.examples,
            "attempts rejected (not written)"
        );
    }
    let out = ExportOutput {
        run_date: w.run_date,
        from: w.from,
        to: w.to,
        attempts: writer.written.iter().map(|d| d.attempts).sum(),
        attempts_read: writer.read,
        duplicates: writer.duplicates,
        rejected: writer.rejected,
        rejected_by_reason: writer.rejected_by_reason,
        values_nulled: writer.nulled,
        days: writer.written,
        empty_days,
        empty_days_kept,
        questions: new_rows.len() as u64,
        anchors: new_rows.iter().filter(|q| q.is_anchor).count() as u64,
        anchors_kept_from_lake: bank.anchors_kept_from_lake,
        questions_removed: bank.removed,
        questions_written,
        meta_warnings: bank.warnings,
        page_size: w.page_size,
        pages: bank.pages + attempt_pages,
    };
    tracing::info!(
        attempts = out.attempts,
        days = out.days.len(),
        questions = out.questions,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "export done"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn default_window_is_yesterday_and_today() {
        let w = ExportInput::default()
            .window_on(d("2026-03-05"))
            .map_err(|e| e.to_string())
            .expect("valid");
        assert_eq!(
            (w.run_date, w.from, w.to),
            (d("2026-03-05"), d("2026-03-04"), d("2026-03-05"))
        );
        assert_eq!(w.page_size, DEFAULT_PAGE_SIZE);
        let w = ExportInput {
            run_date: Some(d("2026-03-01")),
            ..Default::default()
        }
        .window_on(d("2030-01-01"))
        .map_err(|e| e.to_string())
        .expect("valid");
        assert_eq!((w.from, w.to), (d("2026-02-28"), d("2026-03-01")));
    }

    #[test]
    fn bad_fields_are_named() {
        let today = d("2026-03-05");
        let cases = [
            (
                ExportInput {
                    from: Some(d("2026-03-06")),
                    ..Default::default()
                },
                "from (2026-03-06) is after to (2026-03-05)",
            ),
            (
                ExportInput {
                    page_size: Some(0),
                    ..Default::default()
                },
                "page_size",
            ),
            (
                ExportInput {
                    max_rejected_share: Some(1.5),
                    ..Default::default()
                },
                "max_rejected_share",
            ),
            (
                ExportInput {
                    from: Some(d("2024-01-01")),
                    ..Default::default()
                },
                "more than 366",
            ),
            (
                ExportInput {
                    from: Some(d("0001-01-01")),
                    to: Some(d("0001-01-02")),
                    ..Default::default()
                },
                "from 0001-01-01 is out of range",
            ),
            (
                ExportInput {
                    to: Some(d("2026-03-07")),
                    ..Default::default()
                },
                "to 2026-03-07 is out of range",
            ),
            (
                ExportInput {
                    max_rejected_share: Some(f64::NAN),
                    ..Default::default()
                },
                "max_rejected_share",
            ),
        ];
        for (input, needle) in cases {
            let e = input
                .window_on(today)
                .err()
                .map(|e| (e.error_name(), e.to_string()));
            let (name, msg) = e.unwrap_or_default();
            assert_eq!(name, "Fatal.InvalidInput", "{needle}");
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn the_event_refuses_unknown_fields() {
        let ok: std::result::Result<ExportInput, _> =
            serde_json::from_str(r#"{"run_date": "2026-03-05", "page_size": 10}"#);
        assert!(ok.is_ok());
        let bad: std::result::Result<ExportInput, _> =
            serde_json::from_str(r#"{"run_date": "2026-03-05", "pagesize": 10}"#);
        assert!(bad.is_err_and(|e| e.to_string().contains("pagesize")));
    }
}
