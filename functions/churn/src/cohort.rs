//! Reading the churn cohort: bucket counts, per-student rows of a bucket range, θ and
//! I_t; the event, time and covariates of each student are
//! `models::survival::churn_cohort`'s.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use chrono::{Datelike, NaiveDate};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::columns::Columns;
use lake::runs::{StageError, day_param, query, week_start};
use lake::shard::Shard;
use models::survival::{ChurnActivity, churn_cohort};

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
    models::survival::mean_of_known(students.iter().map(|s| thetas.get(&s.id).copied()))
}

/// Event, time and covariates per student (`models::survival::churn_cohort`); students
/// without θ get `theta_mean`, students without I_t get 0.
pub(crate) fn build_cohort(
    students: Vec<Student>,
    run_date: NaiveDate,
    thetas: &HashMap<String, f64>,
    its: &HashMap<String, f64>,
    theta_mean: f64,
) -> Cohort {
    let day = |d: NaiveDate| i64::from(d.num_days_from_ce());
    let activity: Vec<ChurnActivity> = students
        .iter()
        .map(|s| ChurnActivity {
            first_day: day(s.first),
            last_day: day(s.last),
            sessions: s.sessions,
            accuracy: s.accuracy,
            hints_per_item: s.hints_per_item,
        })
        .collect();
    let c = churn_cohort(
        &activity,
        day(run_date),
        CHURN_GAP_DAYS,
        |i| thetas.get(&students[i].id).copied(),
        |i| its.get(&students[i].id).copied(),
        theta_mean,
    );
    Cohort {
        students,
        time: c.time,
        event: c.event,
        x: c.x,
        theta_imputed: c.theta_imputed,
        it_missing: c.it_missing,
    }
}
