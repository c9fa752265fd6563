//! Reading the churn cohort: bucket counts, per-student rows of a bucket range, θ and
//! I_t, and the event, time and covariates of each student (see the crate docs).

use std::collections::HashMap;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::columns::Columns;
use lake::runs::{StageError, day_param, query, week_start};
use lake::shard::Shard;

use crate::CHURN_GAP_DAYS;

const STUDENTS_SQL: &str = include_str!("../../../sql/churn/students.sql");
const BUCKETS_SQL: &str = include_str!("../../../sql/churn/bucket_students.sql");
const THETA_SQL: &str = include_str!("../../../sql/churn/theta.sql");
const LATEST_IT_SQL: &str = include_str!("../../../sql/churn/latest_it.sql");

/// The days the stage reads: the churn window `[start, run_date]` and the run date's
/// week (Monday).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub start: NaiveDate,
    pub run_date: NaiveDate,
    pub week: NaiveDate,
}

/// One student of the cohort: activity in the window (days, counts).
#[derive(Debug, Clone)]
pub(crate) struct Student {
    pub id: String,
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub sessions: f64,
    pub accuracy: f64,
    pub hints_per_item: f64,
}

/// The survival data of a set of students.
pub(crate) struct Cohort {
    pub students: Vec<Student>,
    pub time: Vec<f64>,
    pub event: Vec<bool>,
    /// Covariate rows in [`crate::COVARIATES`] order.
    pub x: Vec<[f64; 5]>,
    pub theta_imputed: usize,
    pub it_missing: usize,
}

fn utf8(s: String) -> ScalarValue {
    ScalarValue::Utf8(Some(s))
}

/// Cohort students per student bucket (index = bucket, [`lake::shard::STUDENT_BUCKETS`]
/// entries).
pub(crate) async fn bucket_counts(
    ctx: &SessionContext,
    w: &Window,
) -> Result<Vec<u64>, StageError> {
    let params = vec![day_param(w.start), day_param(w.run_date)];
    Ok(lake::shard::bucket_counts(ctx, BUCKETS_SQL, params).await?)
}

/// The students of `part` (a shard, or the fit sample) active in the window whose last
/// active day is on or after `active_since`, sorted by id.
pub(crate) async fn load_students(
    ctx: &SessionContext,
    w: &Window,
    part: Shard,
    active_since: NaiveDate,
) -> Result<Vec<Student>, StageError> {
    let [lo, hi] = part.sql_params();
    let params = vec![
        day_param(w.run_date),
        day_param(w.start),
        lo,
        hi,
        day_param(active_since),
    ];
    let mut out = Vec::new();
    for b in &query(ctx, STUDENTS_SQL, params).await? {
        let c = Columns::of(b);
        let s = |name: &str| -> Result<_, StageError> {
            Ok(arrow::compute::cast(c.column(name)?, &DataType::Utf8)?)
        };
        let n = |name: &str| -> Result<_, StageError> {
            Ok(arrow::compute::cast(c.column(name)?, &DataType::Int64)?)
        };
        let (id, first, last) = (s("student_id")?, s("first_day")?, s("last_day")?);
        let (sessions, attempts) = (n("sessions")?, n("attempts")?);
        let (correct, hints) = (n("correct")?, n("hints")?);
        let int = |a: &arrow::array::ArrayRef, r: usize| a.as_primitive::<Int64Type>().value(r);
        let (id, first, last) = (
            id.as_string::<i32>(),
            first.as_string::<i32>(),
            last.as_string::<i32>(),
        );
        for r in 0..b.num_rows() {
            let day = |a: &StringArray| {
                a.value(r).parse::<NaiveDate>().map_err(|e| {
                    StageError::InvalidInput(format!(
                        "attempts partition dt '{}' of student {} is not a date: {e}",
                        a.value(r),
                        id.value(r)
                    ))
                })
            };
            let n_attempts = int(&attempts, r).max(1) as f64;
            out.push(Student {
                id: id.value(r).to_string(),
                first: day(first)?,
                last: day(last)?,
                sessions: int(&sessions, r) as f64,
                accuracy: int(&correct, r) as f64 / n_attempts,
                hints_per_item: int(&hints, r) as f64 / n_attempts,
            });
        }
    }
    Ok(out)
}

/// θ of the students of `part` in the calibration run of `cal_run_date`.
pub(crate) async fn load_thetas(
    ctx: &SessionContext,
    cal_run_date: &str,
    part: Shard,
) -> Result<HashMap<String, f64>, StageError> {
    let [lo, hi] = part.sql_params();
    query_map(
        ctx,
        THETA_SQL,
        vec![utf8(cal_run_date.to_string()), lo, hi],
        "theta",
    )
    .await
}

/// The latest I_t in the window of the students of `part`.
pub(crate) async fn load_its(
    ctx: &SessionContext,
    w: &Window,
    part: Shard,
) -> Result<HashMap<String, f64>, StageError> {
    let [lo, hi] = part.sql_params();
    let params = vec![day_param(w.week), day_param(week_start(w.start)), lo, hi];
    query_map(ctx, LATEST_IT_SQL, params, "i_t").await
}

/// A query's `student_id` and `value` columns as a map (null and non-finite values left
/// out).
async fn query_map(
    ctx: &SessionContext,
    sql: &str,
    params: Vec<ScalarValue>,
    value: &str,
) -> Result<HashMap<String, f64>, StageError> {
    let mut m = HashMap::new();
    for b in query(ctx, sql, params).await? {
        let c = Columns::of(&b);
        let ids = arrow::compute::cast(c.column("student_id")?, &DataType::Utf8)?;
        let ids = ids.as_string::<i32>();
        let v = arrow::compute::cast(c.column(value)?, &DataType::Float64)?;
        let v = v.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            if !v.is_null(r) && v.value(r).is_finite() {
                m.insert(ids.value(r).to_string(), v.value(r));
            }
        }
    }
    Ok(m)
}

/// Mean θ of the students that have one (0 when none does): the value given to the
/// students without a θ.
pub(crate) fn theta_mean(students: &[Student], thetas: &HashMap<String, f64>) -> f64 {
    let known: Vec<f64> = students
        .iter()
        .filter_map(|s| thetas.get(&s.id).copied())
        .collect();
    if known.is_empty() {
        0.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    }
}

/// Event, time and covariates per student (see the crate docs); students without θ get
/// `theta_mean`, students without I_t get 0.
pub(crate) fn build_cohort(
    students: Vec<Student>,
    run_date: NaiveDate,
    thetas: &HashMap<String, f64>,
    its: &HashMap<String, f64>,
    theta_mean: f64,
) -> Cohort {
    let (mut time, mut event, mut x) = (Vec::new(), Vec::new(), Vec::new());
    let (mut theta_imputed, mut it_missing) = (0, 0);
    for s in &students {
        let churned = (run_date - s.last).num_days() >= CHURN_GAP_DAYS;
        let end = if churned { s.last } else { run_date };
        let t = (end - s.first).num_days().max(0) as f64;
        let weeks = ((end - s.first).num_days() + 1).max(7) as f64 / 7.0;
        let theta = thetas.get(&s.id).copied().unwrap_or_else(|| {
            theta_imputed += 1;
            theta_mean
        });
        let it = its.get(&s.id).copied().unwrap_or_else(|| {
            it_missing += 1;
            0.0
        });
        time.push(t);
        event.push(churned);
        x.push([s.sessions / weeks, s.accuracy, s.hints_per_item, theta, it]);
    }
    Cohort {
        students,
        time,
        event,
        x,
        theta_imputed,
        it_missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn student(id: &str, first: &str, last: &str, sessions: f64) -> Student {
        Student {
            id: id.into(),
            first: d(first),
            last: d(last),
            sessions,
            accuracy: 0.5,
            hints_per_item: 0.1,
        }
    }

    #[test]
    fn events_times_and_imputation_follow_the_docs() {
        let run = d("2026-02-01");
        let students = vec![
            // last active 14 days before the run date: churned, time = last − first
            student("a", "2026-01-05", "2026-01-18", 4.0),
            // last active 13 days before: censored at run − first
            student("b", "2026-01-05", "2026-01-19", 4.0),
            // single day, 3 days ago: censored at 0, follow-up floored at one week
            student("c", "2026-01-29", "2026-01-29", 1.0),
        ];
        let thetas = HashMap::from([("a".to_string(), 1.0), ("b".to_string(), 2.0)]);
        let its = HashMap::from([("b".to_string(), 0.3)]);
        let mean = theta_mean(&students, &thetas);
        assert_eq!(mean, 1.5);
        assert_eq!(theta_mean(&students, &HashMap::new()), 0.0);
        let c = build_cohort(students, run, &thetas, &its, mean);
        assert_eq!(c.event, vec![true, false, false]);
        assert_eq!(c.time, vec![13.0, 27.0, 3.0]);
        // a: 4 sessions over 14 days of follow-up; b: over 28 days; c: floored at 7 days
        assert_eq!(c.x[0][0], 2.0);
        assert_eq!(c.x[1][0], 1.0);
        assert_eq!(c.x[2][0], 1.0);
        assert_eq!((c.x[2][3], c.theta_imputed), (1.5, 1));
        assert_eq!((c.x[0][4], c.x[1][4], c.it_missing), (0.0, 0.3, 2));
    }
}
