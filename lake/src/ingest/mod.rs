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
//! of a file's days as one unit ([`Lake::update_partitions`](crate::store::Lake::update_partitions)): every day is merged and
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
//!
//! `raw` reads an input file into string columns and collects row errors, `parse`
//! holds the cell parsers, `attempts` and `questions` the two ingests with their rows
//! and batches, `anchors` the marking of anchors ([`set_anchors`]).

mod anchors;
mod attempts;
mod parse;
mod questions;
mod raw;

pub use anchors::{AnchorUpdate, set_anchors};
pub use attempts::{AttemptRow, AttemptsReport, attempt_batch, ingest_attempts};
pub use parse::{parse_correct, parse_nonneg_int, parse_tags, parse_timestamp};
pub use questions::{
    QuestionRow, QuestionsReport, ingest_questions, question_batch, question_rows, read_questions,
};
pub(crate) use raw::{Problems, read_raw, value};
