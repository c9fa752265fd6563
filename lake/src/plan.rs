//! The shard plan of a pipeline run (stage `plan`): into how many student shards the
//! per-student stages (score_topics, features, kpis, churn, growth, segments, reports)
//! are split, as the items `[{shard, shards}, ...]` of the state machine's Distributed
//! Maps (infra/README.md).
//!
//! The count is the run's input when given (1 to [`MAX_SHARDS`]); otherwise it is read
//! from the lake:
//!
//! ```text
//! N = clamp(ceil(students / students_per_shard), 1, MAX_SHARDS)
//! ```
//!
//! where `students` is the number of distinct students with at least one attempt in the
//! `lookback_days` days ending on the run date (default 60, the window of the
//! per-student stages), and `students_per_shard` the target shard size (default
//! [`DEFAULT_STUDENTS_PER_SHARD`], bounds [`MIN_STUDENTS_PER_SHARD`] ..=
//! [`MAX_STUDENTS_PER_SHARD`]). A shard of `1/N` of the buckets then holds about
//! `students / N ≤ students_per_shard` students (up to sampling, see
//! [`crate::shard::Shard`]). The count query (`sql/plan/students.sql`) reads one
//! column of the window's attempts; its aggregation holds one entry per student and
//! spills beyond the session's memory pool.

use chrono::{NaiveDate, Utc};

use serde::{Deserialize, Serialize};

use crate::runs::{StageError, day_param, day_str, query};
use crate::shard::{MAX_SHARDS, Shard};

const STUDENTS_SQL: &str = include_str!("../../sql/plan/students.sql");

/// Target students per shard when the input gives none: a shard of 25,000 students
/// keeps each per-student stage well inside a 2–3 GB function (infra/README.md).
pub const DEFAULT_STUDENTS_PER_SHARD: u64 = 25_000;
/// Smallest `students_per_shard` accepted (smaller shards only add invocations).
pub const MIN_STUDENTS_PER_SHARD: u64 = 100;
/// Largest `students_per_shard` accepted.
pub const MAX_STUDENTS_PER_SHARD: u64 = 10_000_000;
/// Days of attempts counted when the input gives none: the stages' default window.
pub use crate::runs::DEFAULT_LOOKBACK_DAYS;

/// The event of the `plan` stage. `null` fields take their defaults (the state machine
/// passes `null` for what the execution's input leaves out).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// The day the run is for (UTC), `YYYY-MM-DD`. Default: today.
    #[serde(default, deserialize_with = "crate::bounds::opt_date")]
    pub run_date: Option<NaiveDate>,
    /// The shard count, 1 to [`MAX_SHARDS`]; when given the lake is not read.
    #[serde(default)]
    pub shards: Option<u32>,
    /// Target students per shard, [`MIN_STUDENTS_PER_SHARD`] ..= [`MAX_STUDENTS_PER_SHARD`].
    #[serde(default)]
    pub students_per_shard: Option<u64>,
    /// Days of attempts counted, 1 to [`crate::bounds::MAX_LOOKBACK_DAYS`]. Default 60.
    #[serde(default)]
    pub lookback_days: Option<u32>,
}

/// One item of the Distributed Maps: shard `shard` of `shards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShardItem {
    /// This shard, `0 .. shards`.
    pub shard: u32,
    /// The run's shard count.
    pub shards: u32,
}

/// The summary of the `plan` stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanOutput {
    /// The run date.
    pub run_date: String,
    /// Students with attempts in the window; `None` when the input gave the count.
    pub students: Option<u64>,
    /// The target shard size used.
    pub students_per_shard: u64,
    /// Days of attempts counted.
    pub lookback_days: u32,
    /// The shard count N.
    pub shard_count: u32,
    /// `input` (the count was given) or `lake` (counted).
    pub source: &'static str,
    /// `[{shard: 0, shards: N}, …, {shard: N−1, shards: N}]`.
    pub shards: Vec<ShardItem>,
}

/// `clamp(ceil(students / students_per_shard), 1, MAX_SHARDS)`; `students_per_shard`
/// of 0 is read as 1.
pub fn shard_count(students: u64, students_per_shard: u64) -> u32 {
    let n = students.div_ceil(students_per_shard.max(1));
    u32::try_from(n.clamp(1, u64::from(MAX_SHARDS))).unwrap_or(MAX_SHARDS)
}

/// The items of `n` shards.
pub fn shard_items(n: u32) -> Vec<ShardItem> {
    (0..n).map(|shard| ShardItem { shard, shards: n }).collect()
}

impl PlanInput {
    /// Checks the fields' ranges; the error names the field.
    fn check(&self) -> Result<(), StageError> {
        let bad = |m: String| Err(StageError::InvalidInput(m));
        if let Some(n) = self.shards
            && let Err(e) = Shard::new(0, n)
        {
            return bad(e);
        }
        if let Some(s) = self.students_per_shard
            && !(MIN_STUDENTS_PER_SHARD..=MAX_STUDENTS_PER_SHARD).contains(&s)
        {
            return bad(format!(
                "students_per_shard must be in {MIN_STUDENTS_PER_SHARD}..={MAX_STUDENTS_PER_SHARD}, got {s}"
            ));
        }
        if let Some(d) = self.lookback_days
            && !(1..=crate::bounds::MAX_LOOKBACK_DAYS).contains(&d)
        {
            return bad(format!(
                "lookback_days must be in 1..={}, got {d}",
                crate::bounds::MAX_LOOKBACK_DAYS
            ));
        }
        if let Some(d) = self.run_date {
            crate::bounds::check_date("run_date", d).map_err(StageError::InvalidInput)?;
        }
        Ok(())
    }
}

/// Runs the `plan` stage: the shard items of the run (see the module docs). Reads only
/// `attempts` (one column of the window), and only when the input gives no count.
pub async fn plan_shards(lake: &crate::Lake, input: &PlanInput) -> Result<PlanOutput, StageError> {
    input.check()?;
    let run_date = input.run_date.unwrap_or_else(|| Utc::now().date_naive());
    let per_shard = input
        .students_per_shard
        .unwrap_or(DEFAULT_STUDENTS_PER_SHARD);
    let lookback_days = input.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS);
    let (students, n, source) = match input.shards {
        Some(n) => (None, n, "input"),
        None => {
            let students = count_students(lake, run_date, lookback_days).await?;
            (Some(students), shard_count(students, per_shard), "lake")
        }
    };
    tracing::info!(?students, shard_count = n, source, "shard plan");
    Ok(PlanOutput {
        run_date: day_str(run_date),
        students,
        students_per_shard: per_shard,
        lookback_days,
        shard_count: n,
        source,
        shards: shard_items(n),
    })
}

/// Distinct students with attempts in the `lookback_days` days ending on `run_date`.
async fn count_students(
    lake: &crate::Lake,
    run_date: NaiveDate,
    lookback_days: u32,
) -> Result<u64, StageError> {
    let window = crate::runs::StageInput {
        run_date: Some(run_date),
        lookback_days: Some(lookback_days),
        ..Default::default()
    }
    .context("plan")?;
    let first = window.window_start(run_date);
    let ctx = lake.session()?;
    let batches = query(
        &ctx,
        STUDENTS_SQL,
        vec![day_param(first), day_param(run_date)],
    )
    .await?;
    let count = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            arrow::array::AsArray::as_primitive_opt::<arrow::datatypes::Int64Type>(b.column(0))
                .map(|c| c.value(0))
        })
        .unwrap_or(0);
    Ok(u64::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_count_is_the_ceiling_of_students_over_the_shard_size_within_1_and_max() {
        assert_eq!(shard_count(0, 25_000), 1, "an empty platform is one shard");
        assert_eq!(shard_count(1, 25_000), 1);
        assert_eq!(shard_count(25_000, 25_000), 1);
        assert_eq!(shard_count(25_001, 25_000), 2);
        assert_eq!(shard_count(100_000, 25_000), 4);
        assert_eq!(shard_count(1_000_000, 25_000), 40);
        assert_eq!(shard_count(u64::MAX, 100), MAX_SHARDS, "capped");
        assert_eq!(shard_count(1_024 * 100 + 1, 100), MAX_SHARDS);
        assert_eq!(shard_count(10, 0), 10, "a size of 0 reads as 1");
        let items = shard_items(3);
        assert_eq!(items.len(), 3);
        assert!(
            items
                .iter()
                .enumerate()
                .all(|(i, it)| it.shard as usize == i && it.shards == 3)
        );
    }

    #[test]
    fn out_of_range_fields_are_refused_naming_the_field() {
        let refused = |i: PlanInput, needle: &str| {
            let e = i.check().unwrap_err();
            assert_eq!(e.error_name(), "Fatal.InvalidInput");
            assert!(e.to_string().contains(needle), "{e}");
        };
        refused(
            PlanInput {
                shards: Some(0),
                ..Default::default()
            },
            "shards",
        );
        refused(
            PlanInput {
                shards: Some(MAX_SHARDS + 1),
                ..Default::default()
            },
            "shards",
        );
        refused(
            PlanInput {
                students_per_shard: Some(99),
                ..Default::default()
            },
            "students_per_shard",
        );
        refused(
            PlanInput {
                lookback_days: Some(0),
                ..Default::default()
            },
            "lookback_days",
        );
        assert!(
            PlanInput {
                shards: Some(MAX_SHARDS),
                ..Default::default()
            }
            .check()
            .is_ok()
        );
    }
}
