//! Stage **kpis** → `weekly_kpi` (formulas in `models::kpi`).
//!
//! For each week (Monday, UTC) touching `from..=to` (default: the run date's week) and
//! each student active in it (≥ 1 attempt up to the run date):
//! - `i_t`: θ delta between this week and the previous one, each θ an EAP of the week's
//!   first responses per question with the latest `all`-bank calibration on or before
//!   the run date held fixed (prior N(B, A²)); a week has a θ with ≥ [`MIN_WEEK_RESPONSES`]
//!   responses to calibrated items. Without θ in either week, the same formula on
//!   accuracy (`accuracy_delta`); without a previous week at all, null (`method` null).
//! - `a_t` from distinct sessions (attempts without a session id count one session per
//!   day); `e_t` from accuracy and mean time against the bank's median time per item
//!   over the look-back window; `r_t` from wrong answers followed by a right one in the
//!   same topic within the week (null without wrong answers).
//!
//! `s`, `p`, `sigma` belong to the churn and growth stages: every writer of `weekly_kpi`
//! updates its partition with [`Lake::update_partition`], carrying the others' columns
//! over, so re-running any of them never wipes the others' work.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{Float64Type, Int64Type};
use chrono::{Days, NaiveDate};
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, WEEKLY_KPI};
use lake::runs::{CalibrationRef, StageError, StageInput, day_str, latest_calibration, week_start};
use models::irt::{ItemParams, ScoringConfig, eap_score};
use models::kpi::{self, Measure};
use serde::Serialize;

const ATTEMPTS_SQL: &str = include_str!("../../../sql/kpis/attempts.sql");
const TIME_REF_SQL: &str = include_str!("../../../sql/kpis/time_ref.sql");

/// Fewest responses to calibrated items for a weekly θ.
pub const MIN_WEEK_RESPONSES: usize = 3;

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct KpisOutput {
    /// Run id.
    pub run_id: String,
    /// Weeks written.
    pub weeks: Vec<String>,
    /// Student-weeks written.
    pub rows: usize,
    /// Rows by method: theta_delta, accuracy_delta, none.
    pub methods: [usize; 3],
    /// Calibration the θs come from (none: accuracy only).
    pub calibration_run: Option<String>,
    /// Reference time per item (ms).
    pub t_ref_ms: Option<f64>,
}

/// One attempt as the KPIs see it.
struct Attempt {
    dt: String,
    question: String,
    topic: Option<String>,
    session: Option<String>,
    correct: bool,
    time_ms: Option<i64>,
}

/// The KPIs of one student-week.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    i_t: Option<f64>,
    a_t: f64,
    e_t: f64,
    r_t: Option<f64>,
    method: Option<&'static str>,
    n: usize,
}

/// θ of a week's attempts (first attempt per question, calibrated items only).
fn week_theta(
    attempts: &[&Attempt],
    cal: Option<&CalibrationRef>,
    cfg: &ScoringConfig,
) -> Option<Measure> {
    let cal = cal?;
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    let mut ys = Vec::new();
    for a in attempts {
        if !seen.insert(a.question.as_str()) {
            continue;
        }
        if let Some(&(pa, pb, pc)) = cal.items.get(&a.question) {
            items.push(ItemParams {
                a: pa,
                b: pb,
                c: pc,
            });
            ys.push(a.correct);
        }
    }
    if items.len() < MIN_WEEK_RESPONSES {
        return None;
    }
    eap_score(&items, &ys, cfg).map(|s| Measure {
        value: s.theta,
        se: s.se,
        n: s.n_responses,
    })
}

fn week_row(
    this: &[&Attempt],
    prev: &[&Attempt],
    cal: Option<&CalibrationRef>,
    cfg: &ScoringConfig,
    t_ref: Option<f64>,
) -> Row {
    let correct = this.iter().filter(|a| a.correct).count();
    let acc = kpi::accuracy_measure(correct, this.len());
    let acc_prev = kpi::accuracy_measure(prev.iter().filter(|a| a.correct).count(), prev.len());
    let th = week_theta(this, cal, cfg);
    let th_prev = week_theta(prev, cal, cfg);
    let improvement = kpi::improvement_index(
        th.as_ref(),
        th_prev.as_ref(),
        acc.as_ref(),
        acc_prev.as_ref(),
    );
    let sessions: HashSet<String> = this
        .iter()
        .map(|a| a.session.clone().unwrap_or_else(|| format!("day:{}", a.dt)))
        .collect();
    let times: Vec<f64> = this
        .iter()
        .filter_map(|a| a.time_ms)
        .map(|t| t as f64)
        .collect();
    let t_mean = if times.is_empty() {
        f64::NAN
    } else {
        times.iter().sum::<f64>() / times.len() as f64
    };
    let accuracy = acc.map(|m| m.value).unwrap_or(0.0);
    let seq: Vec<(Option<&str>, bool)> = this
        .iter()
        .map(|a| (a.topic.as_deref(), a.correct))
        .collect();
    Row {
        i_t: improvement.map(|x| x.0),
        a_t: kpi::activity(sessions.len()),
        e_t: kpi::efficiency(accuracy, t_ref.unwrap_or(f64::NAN), t_mean),
        r_t: kpi::recovery_rate(&seq),
        method: improvement.map(|x| x.1.as_str()),
        n: this.len(),
    }
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<KpisOutput, StageError> {
    let mut input = input.clone();
    let run_date = input
        .run_date
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    input.run_date = Some(run_date);
    input.from = Some(input.from.unwrap_or(run_date));
    let rc = input.context("kpis")?;
    let ctx = lake.session()?;
    let cal = latest_calibration(&ctx, "all", rc.run_date).await?;
    let cfg = ScoringConfig {
        prior_mean: cal.as_ref().map_or(0.0, |c| c.latent_mean),
        prior_sd: cal.as_ref().map_or(1.0, |c| c.latent_sd),
        ..ScoringConfig::default()
    };
    let t_ref = {
        let b = ctx
            .sql(TIME_REF_SQL)
            .await?
            .with_param_values(vec![
                ScalarValue::Utf8(Some(day_str(rc.window_start(rc.run_date)))),
                ScalarValue::Utf8(Some(day_str(rc.run_date))),
            ])?
            .collect()
            .await?;
        b.first().and_then(|b| {
            let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Float64).ok()?;
            let c = c.as_primitive::<Float64Type>();
            (!c.is_null(0)).then(|| c.value(0))
        })
    };
    let mut out = KpisOutput {
        run_id: rc.run_id.clone(),
        weeks: Vec::new(),
        rows: 0,
        methods: [0; 3],
        calibration_run: cal.as_ref().map(|c| c.run_id.clone()),
        t_ref_ms: t_ref,
    };
    let last_day = rc.to.min(rc.run_date);
    let mut week = week_start(rc.from);
    while week <= last_day {
        let prev = week - Days::new(7);
        let week_end = (week + Days::new(6)).min(rc.run_date);
        let batches = ctx
            .sql(ATTEMPTS_SQL)
            .await?
            .with_param_values(vec![
                ScalarValue::Utf8(Some(day_str(prev))),
                ScalarValue::Utf8(Some(day_str(week_end))),
            ])?
            .collect()
            .await?;
        let rows = compute_week(&batches, week, cal.as_ref(), &cfg, t_ref);
        for r in rows.values() {
            out.methods[match r.method {
                Some("theta_delta") => 0,
                Some(_) => 1,
                None => 2,
            }] += 1;
        }
        if !rows.is_empty() {
            write_week(lake, week, &rc.run_id, rc.run_ts, rows.len(), &rows).await?;
            out.rows += rows.len();
            out.weeks.push(day_str(week));
        }
        week = week + Days::new(7);
    }
    Ok(out)
}

/// Per active student of `week`: the KPIs (students in sorted order).
fn compute_week(
    batches: &[RecordBatch],
    week: NaiveDate,
    cal: Option<&CalibrationRef>,
    cfg: &ScoringConfig,
    t_ref: Option<f64>,
) -> std::collections::BTreeMap<String, Row> {
    let week_str = day_str(week);
    let mut by_student: HashMap<String, (Vec<Attempt>, Vec<Attempt>)> = HashMap::new();
    for b in batches {
        let (st, dt, q, tp, ss, ok) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
            b.column(3).as_string::<i32>(),
            b.column(4).as_string::<i32>(),
            b.column(5).as_boolean(),
        );
        let tm = b.column(6).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let opt = |a: &StringArray| (!a.is_null(r)).then(|| a.value(r).to_string());
            let a = Attempt {
                dt: dt.value(r).to_string(),
                question: q.value(r).to_string(),
                topic: opt(tp),
                session: opt(ss),
                correct: ok.value(r),
                time_ms: (!tm.is_null(r)).then(|| tm.value(r)),
            };
            let e = by_student.entry(st.value(r).to_string()).or_default();
            if a.dt >= week_str {
                e.0.push(a);
            } else {
                e.1.push(a);
            }
        }
    }
    by_student
        .into_iter()
        .filter(|(_, (this, _))| !this.is_empty())
        .map(|(s, (this, prev))| {
            let this: Vec<&Attempt> = this.iter().collect();
            let prev: Vec<&Attempt> = prev.iter().collect();
            (s, week_row(&this, &prev, cal, cfg, t_ref))
        })
        .collect()
}

/// Writes one week's KPI columns, keeping `s`, `p`, `sigma` that other stages wrote.
async fn write_week(
    lake: &Lake,
    week: NaiveDate,
    run_id: &str,
    run_ts: i64,
    n: usize,
    rows: &std::collections::BTreeMap<String, Row>,
) -> Result<(), StageError> {
    let def = catalog::table(WEEKLY_KPI)?;
    let week_s = day_str(week);
    lake.update_partition(WEEKLY_KPI, &[("week_start", &week_s)], |existing| {
        let mut keep: HashMap<String, [Option<f64>; 3]> = HashMap::new();
        for b in &existing {
            let st = b.column(1).as_string::<i32>();
            let f = |i: usize| b.column(i).as_primitive::<Float64Type>().clone();
            let (s, p, sigma) = (f(6), f(7), f(8));
            for r in 0..b.num_rows() {
                let v = |a: &Float64Array| (!a.is_null(r)).then(|| a.value(r));
                keep.insert(st.value(r).to_string(), [v(&s), v(&p), v(&sigma)]);
            }
        }
        let other = |k: &str, i: usize| keep.get(k).and_then(|v| v[i]);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![run_id; n])),
            Arc::new(StringArray::from_iter_values(rows.keys())),
            Arc::new(rows.values().map(|r| r.i_t).collect::<Float64Array>()),
            Arc::new(Float64Array::from_iter_values(rows.values().map(|r| r.a_t))),
            Arc::new(Float64Array::from_iter_values(rows.values().map(|r| r.e_t))),
            Arc::new(rows.values().map(|r| r.r_t).collect::<Float64Array>()),
            Arc::new(rows.keys().map(|k| other(k, 0)).collect::<Float64Array>()),
            Arc::new(rows.keys().map(|k| other(k, 1)).collect::<Float64Array>()),
            Arc::new(rows.keys().map(|k| other(k, 2)).collect::<Float64Array>()),
            Arc::new(rows.values().map(|r| r.method).collect::<StringArray>()),
            Arc::new(Int64Array::from_iter_values(
                rows.values().map(|r| r.n as i64),
            )),
            Arc::new(TimestampMicrosecondArray::from(vec![run_ts; n]).with_timezone("UTC")),
        ];
        Ok(vec![RecordBatch::try_new(def.file_schema.clone(), cols)?])
    })
    .await?;
    Ok(())
}

/// A student's θ in one week (EAP of the week's first responses per question, fixed
/// parameters of the latest `all`-bank calibration; see the crate docs).
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyTheta {
    /// Student id.
    pub student_id: String,
    /// Monday of the week.
    pub week_start: NaiveDate,
    /// θ (logits, anchor scale), its posterior SD, responses behind it.
    pub theta: Measure,
}

/// Every student's weekly θ over the `weeks` weeks ending with the run date's week
/// (only student-weeks with a θ: ≥ [`MIN_WEEK_RESPONSES`] calibrated responses), sorted
/// by student and week, of the students of `shard` only. Empty without a calibration.
/// Used by the growth and reports stages.
pub async fn weekly_thetas(
    lake: &Lake,
    run_date: NaiveDate,
    weeks: u32,
    shard: lake::shard::Shard,
) -> Result<Vec<WeeklyTheta>, StageError> {
    let ctx = lake.session()?;
    let Some(cal) = latest_calibration(&ctx, "all", run_date).await? else {
        return Ok(Vec::new());
    };
    let cfg = ScoringConfig {
        prior_mean: cal.latent_mean,
        prior_sd: cal.latent_sd,
        ..ScoringConfig::default()
    };
    let last_week = week_start(run_date);
    let first_week = last_week - Days::new(7 * u64::from(weeks.max(1) - 1));
    let batches = ctx
        .sql(ATTEMPTS_SQL)
        .await?
        .with_param_values(vec![
            ScalarValue::Utf8(Some(day_str(first_week))),
            ScalarValue::Utf8(Some(day_str(run_date))),
        ])?
        .collect()
        .await?;
    let mut groups: std::collections::BTreeMap<(String, NaiveDate), Vec<Attempt>> =
        Default::default();
    for b in &batches {
        let (st, dt, q, ok) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
            b.column(5).as_boolean(),
        );
        for r in 0..b.num_rows() {
            let Ok(d) = dt.value(r).parse::<NaiveDate>() else {
                continue;
            };
            if !shard.contains(st.value(r)) {
                continue;
            }
            groups
                .entry((st.value(r).to_string(), week_start(d)))
                .or_default()
                .push(Attempt {
                    dt: dt.value(r).to_string(),
                    question: q.value(r).to_string(),
                    topic: None,
                    session: None,
                    correct: ok.value(r),
                    time_ms: None,
                });
        }
    }
    Ok(groups
        .into_iter()
        .filter_map(|((student_id, week), attempts)| {
            let refs: Vec<&Attempt> = attempts.iter().collect();
            week_theta(&refs, Some(&cal), &cfg).map(|theta| WeeklyTheta {
                student_id,
                week_start: week,
                theta,
            })
        })
        .collect())
}
