//! Stage **churn** → `weekly_kpi.s`, `churn_fit` (model: `models::survival`).
//!
//! # Cohort, event and time
//! Every student with at least one attempt on or before the run date (the whole history,
//! not the look-back window: tenure must start at the true first day). Per student:
//! the first and last active day (UTC days of attempts). The student **churned** (event)
//! when there was no activity for ≥ [`CHURN_GAP_DAYS`] days before the run date
//! (`run_date − last_day ≥ 14`, the days `last+1..=run_date` all empty); the event time
//! is `last_day − first_day` in days. Otherwise the student is right-censored at
//! `run_date − first_day`. A gap of 14 days or more *in the middle* of a history that
//! resumed later is not an event (the student came back).
//!
//! # Covariates (one row per student, over the whole history up to the run date)
//! - `sessions_per_week`: distinct sessions (attempts without a session id count one
//!   session per day) per week of follow-up — from the first day to the last active day
//!   for churned students, to the run date otherwise — with follow-up floored at one week;
//! - `accuracy`: share of correct attempts;
//! - `hints_per_item`: mean hints per attempt (missing hint counts are 0);
//! - `theta`: the student's θ in the `abilities` of bank `all` of the latest calibration
//!   on or before the run date. Students without a θ there get the **cohort mean θ**
//!   (mean over the cohort students that have one; the count is in the summary and in
//!   the `theta_imputed` diagnostic);
//! - `i_t`: the student's latest non-null `weekly_kpi.i_t` (weeks up to the run date's
//!   week); students without any get **0** (no measured improvement; counted in
//!   `it_missing`).
//!
//! A covariate that is constant over the cohort (e.g. θ without any calibration: every
//! student imputed) carries no information; it is **dropped** from the model and named
//! in the summary (`dropped_covariates`). The model standardises the covariates for the
//! iteration (`CoxConfig::standardize`); every coefficient is reported per unit of the raw
//! covariate (the means and SDs used are in the `mean:<term>` / `scale:<term>`
//! diagnostics, so per-SD effects are `estimate · scale`).
//!
//! # Model and score
//! Cox proportional hazards with Efron ties ([`models::survival::cox_ph`]) and the
//! Kaplan–Meier curve of the cohort ([`models::survival::kaplan_meier`], Greenwood SEs).
//! `s` = probability of churning within the next [`HORIZON_DAYS`] days for every student
//! active in the run date's week (last active day ≥ that Monday):
//! `event_probability(x, t, 14)` with tenure `t = run_date − first_day`. The Breslow-type
//! baseline hazard has no information beyond the last event time `L` (the model's docs:
//! the probability is 0 for t ≥ L), and `L` is at most the longest tenure − 14 (an event
//! is only seen 14 days after the last activity), so most active students have t ≥ L.
//! `t` is therefore **capped just below the last event time**, at `L − 0.5`
//! ([`T_CAP_BELOW_LAST_EVENT`]; with whole days the same as `L − 1`): such students
//! share the hazard of the last observed step and are ranked by their covariates, while
//! students with shorter tenures keep the baseline's tenure profile (newer students churn
//! more). The absolute level of `s` for capped tenures is a lower bound (no hazard is
//! extrapolated past `L`); the number of capped students and the cap are in the summary
//! and in the `t_cap_days` diagnostic.
//!
//! # Writes
//! - `weekly_kpi` partition of the run date's week: column `s` only, through
//!   [`Lake::update_partition`]; every other column (the KPIs, `p`, `sigma`, `run_id`,
//!   `updated_at`) is carried over exactly. Only students with a row get a value; rows of
//!   students not scored get null. Nothing is written when the week has no partition
//!   (run `kpis` first; said in `notes`).
//! - `churn_fit` partition of the run date (replaced whole), `run_id` and `fitted_at`
//!   from the run context, kinds:
//!   `coef` (term = covariate: estimate, se, z, p_value), `km` (term `survival`:
//!   time_days, estimate = Ŝ, se = Greenwood SE, n_risk, events), `baseline` (term
//!   `cumhaz`: time_days, estimate = cumulative hazard at the covariate means, R's
//!   `basehaz(fit)`), `diagnostic` (term = `concordance` (se = null), `loglik`,
//!   `loglik_null`, `lr_statistic` (p_value = its χ² p-value), `n`, `events`,
//!   `iterations`, `converged` (0/1), `possibly_infinite`, `fitted` (0/1),
//!   `theta_imputed`, `it_missing`, `t_cap_days`, `mean:<term>`, `scale:<term>`).
//!
//! # Degenerate input
//! Never a panic and never an error for data the model cannot use: no attempts → status
//! `no_students`, nothing written; fewer than [`MIN_STUDENTS`] students
//! (`too_few_students`), fewer than [`MIN_EVENTS`] events (`too_few_events`), no
//! non-constant covariate (`no_usable_covariates`) or a singular information matrix /
//! other refusal of the Cox model (`model_refused`) → only the `diagnostic` rows `n`,
//! `events`, `fitted` = 0 are written to `churn_fit`, `s` is left alone, and the summary
//! says why.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Float64Type};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, CHURN_FIT, WEEKLY_KPI};
use lake::runs::query;
use lake::runs::{StageError, StageInput, day_str, latest_calibration, week_start};
use models::survival::{
    Covariates, CoxConfig, CoxFit, KaplanMeier, SurvivalError, Ties, cox_ph, kaplan_meier,
};
use serde::Serialize;

const STUDENTS_SQL: &str = include_str!("../../../sql/churn/students.sql");
const THETA_SQL: &str = include_str!("../../../sql/churn/theta.sql");
const LATEST_IT_SQL: &str = include_str!("../../../sql/churn/latest_it.sql");

/// Days without activity that make a churn.
pub const CHURN_GAP_DAYS: i64 = 14;
/// Horizon of the churn score `s` (days).
pub const HORIZON_DAYS: f64 = 14.0;
/// Tenures are capped this many days below the last event time `L` of the fit (see
/// the crate docs): with whole-day times, `min(t, L − 0.5)` scores every tenure ≥ L as
/// tenure L − 1, whose 14-day window still holds the last step of the baseline hazard.
pub const T_CAP_BELOW_LAST_EVENT: f64 = 0.5;
/// Fewest students for a Cox fit.
pub const MIN_STUDENTS: usize = 10;
/// Fewest churn events for a Cox fit.
pub const MIN_EVENTS: usize = 5;
/// Covariate names, in model order (before dropping constant ones).
pub const COVARIATES: [&str; 5] = [
    "sessions_per_week",
    "accuracy",
    "hints_per_item",
    "theta",
    "i_t",
];

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnOutput {
    /// Run id.
    pub run_id: String,
    /// Run date.
    pub run_date: String,
    /// `fitted`, `no_students`, `too_few_students`, `too_few_events`,
    /// `no_usable_covariates` or `model_refused`.
    pub status: String,
    /// Why the model was not fitted (degenerate input), if it was not.
    pub message: Option<String>,
    /// Students in the cohort.
    pub students: usize,
    /// Churned students (events).
    pub events: usize,
    /// Covariates in the model.
    pub covariates: Vec<String>,
    /// Covariates dropped because they are constant over the cohort.
    pub dropped_covariates: Vec<String>,
    /// The calibration run θ comes from (none: θ imputed for everyone).
    pub theta_run: Option<String>,
    /// Students without θ, given the cohort mean θ.
    pub theta_imputed: usize,
    /// Students without any I_t, given 0.
    pub it_missing: usize,
    /// Harrell's C of the fitted linear predictor.
    pub concordance: Option<f64>,
    /// Newton–Raphson converged.
    pub converged: Option<bool>,
    /// Iterations taken.
    pub iterations: Option<usize>,
    /// Monday of the week `s` is written to.
    pub week_start: String,
    /// Students active in that week (scored).
    pub scored: usize,
    /// `weekly_kpi` rows that received an `s`.
    pub s_written: usize,
    /// Scored students whose tenure was capped (see the crate docs).
    pub t_capped: usize,
    /// Rows written to `churn_fit`.
    pub churn_fit_rows: usize,
    /// Anything the operator should know.
    pub notes: Vec<String>,
    /// Wall time of the stage (ms).
    pub elapsed_ms: u64,
}

/// One student of the cohort.
#[derive(Debug, Clone)]
struct Student {
    id: String,
    first: NaiveDate,
    last: NaiveDate,
    sessions: f64,
    accuracy: f64,
    hints_per_item: f64,
}

/// The survival data of the cohort.
struct Cohort {
    students: Vec<Student>,
    time: Vec<f64>,
    event: Vec<bool>,
    /// Covariate rows in [`COVARIATES`] order.
    x: Vec<[f64; 5]>,
    theta_imputed: usize,
    it_missing: usize,
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<ChurnOutput, StageError> {
    let started = Instant::now();
    let rc = input.context("churn")?;
    let ctx = lake.session()?;
    let week = week_start(rc.run_date);
    let mut out = ChurnOutput {
        run_id: rc.run_id.clone(),
        run_date: day_str(rc.run_date),
        status: "fitted".into(),
        message: None,
        students: 0,
        events: 0,
        covariates: Vec::new(),
        dropped_covariates: Vec::new(),
        theta_run: None,
        theta_imputed: 0,
        it_missing: 0,
        concordance: None,
        converged: None,
        iterations: None,
        week_start: day_str(week),
        scored: 0,
        s_written: 0,
        t_capped: 0,
        churn_fit_rows: 0,
        notes: Vec::new(),
        elapsed_ms: 0,
    };
    let students = load_students(&ctx, rc.run_date).await?;
    if students.is_empty() {
        out.status = "no_students".into();
        out.message = Some(format!(
            "no attempts on or before {}: nothing written",
            out.run_date
        ));
        out.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(out);
    }
    let cal = latest_calibration(&ctx, "all", rc.run_date).await?;
    let thetas = match &cal {
        Some(c) => {
            query_map(
                &ctx,
                THETA_SQL,
                vec![ScalarValue::Utf8(Some(c.run_date.clone()))],
            )
            .await?
        }
        None => HashMap::new(),
    };
    out.theta_run = cal.as_ref().map(|c| c.run_id.clone());
    let its = query_map(
        &ctx,
        LATEST_IT_SQL,
        vec![ScalarValue::Utf8(Some(day_str(week)))],
    )
    .await?;
    let cohort = build_cohort(students, rc.run_date, &thetas, &its);
    out.students = cohort.students.len();
    out.events = cohort.event.iter().filter(|&&e| e).count();
    out.theta_imputed = cohort.theta_imputed;
    out.it_missing = cohort.it_missing;
    if cal.is_none() {
        out.notes.push(
            "no calibration of bank all on or before the run date: θ is imputed for every student"
                .into(),
        );
    } else if cohort.theta_imputed > 0 {
        out.notes.push(format!(
            "{} students without θ got the cohort mean θ",
            cohort.theta_imputed
        ));
    }
    if cohort.it_missing > 0 {
        out.notes.push(format!(
            "{} students without any I_t got 0",
            cohort.it_missing
        ));
    }

    // Degenerate input: diagnostics only.
    let used: Vec<usize> = (0..COVARIATES.len())
        .filter(|&j| !is_constant(cohort.x.iter().map(|r| r[j])))
        .collect();
    out.covariates = used.iter().map(|&j| COVARIATES[j].to_string()).collect();
    out.dropped_covariates = (0..COVARIATES.len())
        .filter(|j| !used.contains(j))
        .map(|j| COVARIATES[j].to_string())
        .collect();
    let refusal = if out.students < MIN_STUDENTS {
        Some((
            "too_few_students",
            format!(
                "{} students: the Cox model needs at least {MIN_STUDENTS}",
                out.students
            ),
        ))
    } else if out.events < MIN_EVENTS {
        Some((
            "too_few_events",
            format!(
                "{} churn events (no activity for {CHURN_GAP_DAYS} days): the Cox model needs at least {MIN_EVENTS}",
                out.events
            ),
        ))
    } else if used.is_empty() {
        Some((
            "no_usable_covariates",
            "every covariate is constant over the cohort".to_string(),
        ))
    } else {
        None
    };
    let fit = match refusal {
        Some(r) => Err(r),
        None => {
            let rows: Vec<Vec<f64>> = cohort
                .x
                .iter()
                .map(|r| used.iter().map(|&j| r[j]).collect())
                .collect();
            let x = Covariates::from_rows(&rows).map_err(StageError::model)?;
            let config = CoxConfig {
                ties: Ties::Efron,
                standardize: true,
                ..CoxConfig::default()
            };
            match cox_ph(&cohort.time, &cohort.event, &x, &config) {
                Ok(f) => Ok(f),
                Err(
                    e @ (SurvivalError::SingularInformation { .. }
                    | SurvivalError::ConstantCovariate { .. }
                    | SurvivalError::TooFewSubjects { .. }
                    | SurvivalError::NoEvents),
                ) => Err(("model_refused", e.to_string())),
                Err(e) => return Err(StageError::model(e)),
            }
        }
    };
    let fitted_at = rc.run_ts;
    let mut rows = FitRows::default();
    let fit = match fit {
        Ok(f) => f,
        Err((status, message)) => {
            tracing::warn!(status, %message, "churn model not fitted");
            out.status = status.into();
            out.message = Some(format!(
                "{message}; only diagnostics written, s left unchanged"
            ));
            rows.diag("n", out.students as f64);
            rows.diag("events", out.events as f64);
            rows.diag("fitted", 0.0);
            out.churn_fit_rows = write_fit(lake, &rc.run_id, fitted_at, rc.run_date, &rows).await?;
            out.elapsed_ms = started.elapsed().as_millis() as u64;
            return Ok(out);
        }
    };
    out.concordance = Some(fit.concordance.value);
    out.converged = Some(fit.converged);
    out.iterations = Some(fit.iterations);
    if !fit.converged {
        out.notes
            .push("Newton–Raphson did not converge within its iteration budget".into());
    }
    if !fit.possibly_infinite.is_empty() {
        out.notes.push(format!(
            "coefficients possibly infinite (monotone likelihood): {:?}",
            fit.possibly_infinite
                .iter()
                .map(|&j| COVARIATES[used[j]])
                .collect::<Vec<_>>()
        ));
    }
    let km = kaplan_meier(&cohort.time, &cohort.event).map_err(StageError::model)?;

    // Scores of the students active in the run date's week.
    let last_event = fit.baseline.last_event_time().unwrap_or(0.0);
    let t_cap = last_event - T_CAP_BELOW_LAST_EVENT;
    let mut scores: HashMap<String, f64> = HashMap::new();
    for (i, s) in cohort.students.iter().enumerate() {
        if s.last < week {
            continue;
        }
        let t = (rc.run_date - s.first).num_days() as f64;
        if t > t_cap {
            out.t_capped += 1;
        }
        let x: Vec<f64> = used.iter().map(|&j| cohort.x[i][j]).collect();
        let p = fit
            .event_probability(&x, t.min(t_cap), HORIZON_DAYS)
            .map_err(StageError::model)?;
        scores.insert(s.id.clone(), p);
    }
    out.scored = scores.len();
    out.s_written = write_scores(lake, week, &scores).await?;
    if out.s_written == 0 {
        out.notes.push(format!(
            "no weekly_kpi rows for the week of {} to put s in: run kpis for that week first",
            out.week_start
        ));
    }

    fit_rows(&mut rows, &fit, &km, &used, &out, t_cap);
    out.churn_fit_rows = write_fit(lake, &rc.run_id, fitted_at, rc.run_date, &rows).await?;
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        students = out.students,
        events = out.events,
        scored = out.scored,
        elapsed_ms = out.elapsed_ms,
        "churn fitted"
    );
    Ok(out)
}

/// A `(student_id, value)` query as a map (null values left out).
async fn query_map(
    ctx: &SessionContext,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<HashMap<String, f64>, StageError> {
    let mut m = HashMap::new();
    for b in query(ctx, sql, params).await? {
        let ids = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let ids = ids.as_string::<i32>();
        let v = arrow::compute::cast(b.column(1), &DataType::Float64)?;
        let v = v.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            if !v.is_null(r) && v.value(r).is_finite() {
                m.insert(ids.value(r).to_string(), v.value(r));
            }
        }
    }
    Ok(m)
}

async fn load_students(
    ctx: &SessionContext,
    run_date: NaiveDate,
) -> Result<Vec<Student>, StageError> {
    let batches = query(
        ctx,
        STUDENTS_SQL,
        vec![ScalarValue::Utf8(Some(day_str(run_date)))],
    )
    .await?;
    let mut out = Vec::new();
    for b in &batches {
        let s = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8);
        let f = |i: usize| arrow::compute::cast(b.column(i), &DataType::Float64);
        let (id, first, last) = (s(0)?, s(1)?, s(2)?);
        let (sessions, accuracy, hints) = (f(3)?, f(5)?, f(6)?);
        let (id, first, last) = (
            id.as_string::<i32>(),
            first.as_string::<i32>(),
            last.as_string::<i32>(),
        );
        let (sessions, accuracy, hints) = (
            sessions.as_primitive::<Float64Type>(),
            accuracy.as_primitive::<Float64Type>(),
            hints.as_primitive::<Float64Type>(),
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
            out.push(Student {
                id: id.value(r).to_string(),
                first: day(first)?,
                last: day(last)?,
                sessions: sessions.value(r),
                accuracy: accuracy.value(r),
                hints_per_item: hints.value(r),
            });
        }
    }
    Ok(out)
}

/// Event, time and covariates per student (see the crate docs).
fn build_cohort(
    students: Vec<Student>,
    run_date: NaiveDate,
    thetas: &HashMap<String, f64>,
    its: &HashMap<String, f64>,
) -> Cohort {
    let known: Vec<f64> = students
        .iter()
        .filter_map(|s| thetas.get(&s.id).copied())
        .collect();
    let theta_mean = if known.is_empty() {
        0.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
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

/// Whether the values are all (numerically) equal.
fn is_constant(values: impl Iterator<Item = f64>) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    // Covariates are finite; with no values at all, hi − lo = −∞ counts as constant.
    hi - lo <= 1e-12 * (1.0 + lo.abs().max(hi.abs()))
}

/// Rows of `churn_fit` under construction.
#[derive(Default)]
struct FitRows {
    kind: Vec<&'static str>,
    term: Vec<String>,
    time_days: Vec<Option<f64>>,
    estimate: Vec<Option<f64>>,
    se: Vec<Option<f64>>,
    z: Vec<Option<f64>>,
    p_value: Vec<Option<f64>>,
    n_risk: Vec<Option<i64>>,
    events: Vec<Option<i64>>,
}

impl FitRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: &'static str,
        term: impl Into<String>,
        time_days: Option<f64>,
        estimate: Option<f64>,
        se: Option<f64>,
        z: Option<f64>,
        p_value: Option<f64>,
        n_risk: Option<i64>,
        events: Option<i64>,
    ) {
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        self.kind.push(kind);
        self.term.push(term.into());
        self.time_days.push(time_days);
        self.estimate.push(finite(estimate));
        self.se.push(finite(se));
        self.z.push(finite(z));
        self.p_value.push(finite(p_value));
        self.n_risk.push(n_risk);
        self.events.push(events);
    }

    fn diag(&mut self, term: impl Into<String>, value: f64) {
        self.push(
            "diagnostic",
            term,
            None,
            Some(value),
            None,
            None,
            None,
            None,
            None,
        );
    }

    fn len(&self) -> usize {
        self.kind.len()
    }
}

fn fit_rows(
    rows: &mut FitRows,
    fit: &CoxFit,
    km: &KaplanMeier,
    used: &[usize],
    out: &ChurnOutput,
    t_cap: f64,
) {
    for (k, &j) in used.iter().enumerate() {
        rows.push(
            "coef",
            COVARIATES[j],
            None,
            Some(fit.coefficients[k]),
            Some(fit.se[k]),
            Some(fit.z[k]),
            Some(fit.p_values[k]),
            None,
            None,
        );
    }
    for r in &km.rows {
        rows.push(
            "km",
            "survival",
            Some(r.time),
            Some(r.surv),
            Some(r.se),
            None,
            None,
            Some(r.n_risk as i64),
            Some(r.events as i64),
        );
    }
    for (t, h) in fit.baseline.times.iter().zip(&fit.baseline.cumhaz_centered) {
        rows.push(
            "baseline",
            "cumhaz",
            Some(*t),
            Some(*h),
            None,
            None,
            None,
            None,
            None,
        );
    }
    rows.diag("concordance", fit.concordance.value);
    rows.diag("loglik", fit.loglik);
    rows.diag("loglik_null", fit.loglik_null);
    rows.push(
        "diagnostic",
        "lr_statistic",
        None,
        Some(fit.lr_statistic()),
        None,
        None,
        Some(fit.lr_p_value()),
        None,
        None,
    );
    rows.diag("n", fit.n as f64);
    rows.diag("events", fit.events as f64);
    rows.diag("iterations", fit.iterations as f64);
    rows.diag("converged", f64::from(u8::from(fit.converged)));
    rows.diag("possibly_infinite", fit.possibly_infinite.len() as f64);
    rows.diag("fitted", 1.0);
    rows.diag("theta_imputed", out.theta_imputed as f64);
    rows.diag("it_missing", out.it_missing as f64);
    rows.diag("t_cap_days", t_cap);
    for (k, &j) in used.iter().enumerate() {
        rows.diag(format!("mean:{}", COVARIATES[j]), fit.means[k]);
        rows.diag(format!("scale:{}", COVARIATES[j]), fit.scales[k]);
    }
}

/// Replaces the `churn_fit` partition of the run date; returns the rows written.
async fn write_fit(
    lake: &Lake,
    run_id: &str,
    fitted_at: i64,
    run_date: NaiveDate,
    rows: &FitRows,
) -> Result<usize, StageError> {
    let def = catalog::table(CHURN_FIT)?;
    let n = rows.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(StringArray::from(rows.kind.clone())),
        Arc::new(StringArray::from_iter_values(&rows.term)),
        Arc::new(Float64Array::from(rows.time_days.clone())),
        Arc::new(Float64Array::from(rows.estimate.clone())),
        Arc::new(Float64Array::from(rows.se.clone())),
        Arc::new(Float64Array::from(rows.z.clone())),
        Arc::new(Float64Array::from(rows.p_value.clone())),
        Arc::new(Int64Array::from(rows.n_risk.clone())),
        Arc::new(Int64Array::from(rows.events.clone())),
        Arc::new(TimestampMicrosecondArray::from(vec![fitted_at; n]).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(def.file_schema.clone(), cols)?;
    lake.write_partition(CHURN_FIT, &[("run_date", &day_str(run_date))], &[batch])
        .await?;
    Ok(n)
}

/// Puts `s` into the week's `weekly_kpi` rows, keeping every other column; returns the
/// rows that got a value. Writes nothing when the partition does not exist.
async fn write_scores(
    lake: &Lake,
    week: NaiveDate,
    scores: &HashMap<String, f64>,
) -> Result<usize, StageError> {
    let values: HashMap<String, Vec<Option<f64>>> = scores
        .iter()
        .map(|(k, v)| (k.clone(), vec![Some(*v)]))
        .collect();
    let week_s = day_str(week);
    Ok(lake
        .set_float_columns(
            WEEKLY_KPI,
            &[("week_start", &week_s)],
            "student_id",
            &["s"],
            &values,
        )
        .await?)
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
        let c = build_cohort(students, run, &thetas, &its);
        assert_eq!(c.event, vec![true, false, false]);
        assert_eq!(c.time, vec![13.0, 27.0, 3.0]);
        // a: 4 sessions over 14 days of follow-up; b: over 28 days; c: floored at 7 days
        assert_eq!(c.x[0][0], 2.0);
        assert_eq!(c.x[1][0], 1.0);
        assert_eq!(c.x[2][0], 1.0);
        assert_eq!((c.x[2][3], c.theta_imputed), (1.5, 1));
        assert_eq!((c.x[0][4], c.x[1][4], c.it_missing), (0.0, 0.3, 2));
        assert!(is_constant([1.0, 1.0, 1.0].into_iter()));
        assert!(!is_constant([1.0, 1.0 + 1e-6].into_iter()));
    }
}
