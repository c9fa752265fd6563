//! What the reports read from the lake for one week (queries in `sql/reports/`).
//!
//! Everything is read once per stage run (one shard): the cohort-wide tables are small
//! (one row per student or per item), and per-student rows are looked up in maps while
//! rendering. Each `run_date`-partitioned source is the latest run on or before the
//! week's as-of day, so a report never shows data from after its week.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};
use chrono::{Days, NaiveDate};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::runs::{StageError, day_str, week_start};

const WEEK_KPIS_SQL: &str = include_str!("../../../sql/reports/week_kpis.sql");
const KPI_HISTORY_SQL: &str = include_str!("../../../sql/reports/kpi_history.sql");
const ABILITIES_SQL: &str = include_str!("../../../sql/reports/abilities.sql");
const FIT_HISTORY_SQL: &str = include_str!("../../../sql/reports/fit_history.sql");
const ITEM_PARAMS_SQL: &str = include_str!("../../../sql/reports/item_params.sql");
const EXCLUSIONS_SQL: &str = include_str!("../../../sql/reports/exclusions.sql");
const WEEK_ATTEMPTS_SQL: &str = include_str!("../../../sql/reports/week_attempts.sql");
const TOPIC_THETA_SQL: &str = include_str!("../../../sql/reports/topic_theta.sql");
const SEGMENTS_SQL: &str = include_str!("../../../sql/reports/segments.sql");
const GROWTH_GOAL_SQL: &str = include_str!("../../../sql/reports/growth_goal.sql");
const FORECASTS_SQL: &str = include_str!("../../../sql/reports/forecasts.sql");
const ANOMALIES_SQL: &str = include_str!("../../../sql/reports/anomalies.sql");
const COHORT_DAILY_SQL: &str = include_str!("../../../sql/reports/cohort_daily.sql");
const COHORT_THETA_DAILY_SQL: &str = include_str!("../../../sql/reports/cohort_theta_daily.sql");
const CHURN_KM_SQL: &str = include_str!("../../../sql/reports/churn_km.sql");
const LATEST_RUN_SQL: &str = include_str!("../../../sql/reports/latest_run.sql");

/// Weeks of history in the θ trend and the KPI sparklines (the report week included):
/// nine weeks cover the pipeline's 60-day look-back.
pub const HISTORY_WEEKS: u32 = 9;
/// Days of daily cohort history drawn before a forecast.
pub const FORECAST_HISTORY_DAYS: u64 = 28;

/// One calibration (`fit_meta` row).
#[derive(Debug, Clone, PartialEq)]
pub struct FitRow {
    /// Run date (partition).
    pub run_date: String,
    /// Bank (`all`, `subject:<id>`, `topic:<id>`).
    pub bank: String,
    /// Run id.
    pub run_id: String,
    /// IRT model.
    pub model: String,
    /// Students calibrated.
    pub n_students: i64,
    /// Items in the bank.
    pub n_items: i64,
    /// Responses used.
    pub n_responses: i64,
    /// Anchor items in the bank.
    pub n_anchors: i64,
    /// Final log-likelihood.
    pub loglik: Option<f64>,
    /// AIC.
    pub aic: Option<f64>,
    /// BIC.
    pub bic: Option<f64>,
    /// EM iterations.
    pub iterations: i64,
    /// Whether EM converged.
    pub converged: bool,
    /// Linking method (`none` when unlinked).
    pub linking_method: String,
    /// Linking constant A (θ* = Aθ + B).
    pub linking_a: Option<f64>,
    /// Linking constant B.
    pub linking_b: Option<f64>,
    /// Anchors the linking used.
    pub n_anchors_used: i64,
}

/// One student's KPIs of one week (`weekly_kpi` row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiRow {
    /// Improvement index.
    pub i_t: Option<f64>,
    /// Activity.
    pub a_t: Option<f64>,
    /// Efficiency.
    pub e_t: Option<f64>,
    /// Recovery.
    pub r_t: Option<f64>,
    /// Churn risk.
    pub s: Option<f64>,
    /// Goal probability.
    pub p: Option<f64>,
    /// Residual SD of the growth model.
    pub sigma: Option<f64>,
    /// `theta_delta` or `accuracy_delta`.
    pub method: Option<String>,
    /// Responses in the week.
    pub n_responses: i64,
}

/// An item of the calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    /// Item id.
    pub item_id: String,
    /// Discrimination.
    pub a: Option<f64>,
    /// Difficulty.
    pub b: Option<f64>,
    /// Guessing.
    pub c: Option<f64>,
    /// Why the item was not estimated.
    pub excluded_reason: Option<String>,
}

/// A student's θ in one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicTheta {
    /// Topic id.
    pub topic_id: String,
    /// θ.
    pub theta: f64,
    /// Posterior SD.
    pub se: f64,
    /// Responses.
    pub n_responses: i64,
}

/// One attempt of the report week.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempted {
    /// Question id.
    pub question_id: String,
    /// Subject (the attempt's, else the question's).
    pub subject_id: Option<String>,
    /// Right or wrong.
    pub correct: bool,
}

/// The growth model's goal.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// Goal θ.
    pub theta: f64,
    /// Monday of the target week.
    pub target_week: NaiveDate,
    /// Whether P was published (R-hat gate passed).
    pub published: bool,
}

/// One forecast day.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastPoint {
    /// Day.
    pub day: NaiveDate,
    /// Forecast.
    pub yhat: f64,
    /// Lower bound of the 80% interval.
    pub lo: f64,
    /// Upper bound of the 80% interval.
    pub hi: f64,
}

/// One in-sample anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Day.
    pub day: NaiveDate,
    /// Observed value.
    pub value: f64,
    /// Fitted value.
    pub expected: f64,
    /// |y − ŷ| / half-width of the 99% interval.
    pub score: f64,
}

/// One step of the Kaplan–Meier curve.
#[derive(Debug, Clone, PartialEq)]
pub struct KmPoint {
    /// Days since the first active day.
    pub time_days: f64,
    /// Ŝ(t).
    pub surv: f64,
    /// Greenwood SE.
    pub se: Option<f64>,
    /// At risk.
    pub n_risk: Option<i64>,
}

/// Run dates of the sources the week's reports use (latest on or before the as-of day).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// `student_topic_theta`.
    pub topics: Option<String>,
    /// `user_segment`.
    pub segments: Option<String>,
    /// `growth_fit`.
    pub growth: Option<String>,
    /// `forecasts` and `anomalies`.
    pub forecast: Option<String>,
    /// `churn_fit`.
    pub churn: Option<String>,
}

/// Everything the week's reports show.
#[derive(Debug, Clone, Default)]
pub struct WeekData {
    /// Monday of the report week.
    pub week: NaiveDate,
    /// Last day of data shown.
    pub as_of: NaiveDate,
    /// The calibration of bank `all` the θs come from.
    pub calibration: Option<FitRow>,
    /// Every calibration up to the as-of day, every bank, by run date.
    pub fit_history: Vec<FitRow>,
    /// Items of `calibration`.
    pub items: Vec<ItemRow>,
    /// Excluded items of the latest run date: (bank, reason, items).
    pub exclusions: Vec<(String, String, i64)>,
    /// θ, SE, responses of every student in `calibration`.
    pub abilities: HashMap<String, (f64, f64, i64)>,
    /// Every θ of `calibration`, sorted (percentiles).
    pub sorted_thetas: Vec<f64>,
    /// KPIs of the week by student (the students who get a report).
    pub week_kpis: BTreeMap<String, KpiRow>,
    /// Mondays of the history weeks, oldest first (the report week last).
    pub history_weeks: Vec<NaiveDate>,
    /// KPIs of the history weeks by student.
    pub kpi_history: HashMap<String, BTreeMap<NaiveDate, KpiRow>>,
    /// Weekly θ (week, θ, SE) by student, oldest first.
    pub weekly_theta: HashMap<String, Vec<(NaiveDate, f64, f64)>>,
    /// Topic θ by student.
    pub topic_theta: HashMap<String, Vec<TopicTheta>>,
    /// Segment label by student.
    pub segments: HashMap<String, String>,
    /// The growth goal.
    pub goal: Option<Goal>,
    /// Forecasts by series (`<subject>:<kind>`).
    pub forecasts: BTreeMap<String, Vec<ForecastPoint>>,
    /// Anomalies by series.
    pub anomalies: BTreeMap<String, Vec<Anomaly>>,
    /// Daily history of each forecast series before the forecast.
    pub history: BTreeMap<String, Vec<(NaiveDate, f64)>>,
    /// Kaplan–Meier curve of the latest churn run.
    pub km: Vec<KmPoint>,
    /// Churn diagnostics by term.
    pub churn_diag: HashMap<String, f64>,
    /// The week's attempts by student, in time order.
    pub attempts: HashMap<String, Vec<Attempted>>,
    /// Run dates used.
    pub sources: Sources,
}

async fn query(
    ctx: &SessionContext,
    sql: &str,
    params: &[&str],
) -> Result<Vec<RecordBatch>, StageError> {
    let params: Vec<ScalarValue> = params
        .iter()
        .map(|p| ScalarValue::Utf8(Some((*p).to_string())))
        .collect();
    Ok(lake::runs::query(ctx, sql, params).await?)
}

/// Typed access to the columns of a result batch (cast where the engine's type differs).
struct Cols<'a>(&'a RecordBatch);

impl Cols<'_> {
    fn cast(&self, i: usize, t: &DataType) -> Result<arrow::array::ArrayRef, StageError> {
        let c = self.0.column(i);
        if c.data_type() == t {
            Ok(c.clone())
        } else {
            Ok(arrow::compute::cast(c, t)?)
        }
    }
    fn strs(&self, i: usize) -> Result<Vec<Option<String>>, StageError> {
        let a = self.cast(i, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r).to_string()))
            .collect())
    }
    fn f64s(&self, i: usize) -> Result<Vec<Option<f64>>, StageError> {
        let a = self.cast(i, &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r)))
            .collect())
    }
    fn i64s(&self, i: usize) -> Result<Vec<Option<i64>>, StageError> {
        let a = self.cast(i, &DataType::Int64)?;
        let a = a.as_primitive::<Int64Type>();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r)))
            .collect())
    }
    fn bools(&self, i: usize) -> Result<Vec<Option<bool>>, StageError> {
        let a = self.cast(i, &DataType::Boolean)?;
        let a = a.as_boolean();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r)))
            .collect())
    }
    fn dates(&self, i: usize) -> Result<Vec<Option<NaiveDate>>, StageError> {
        let a = self.cast(i, &DataType::Date32)?;
        let a = a.as_primitive::<Date32Type>();
        Ok((0..a.len())
            .map(|r| {
                if a.is_null(r) {
                    None
                } else {
                    a.value_as_date(r)
                }
            })
            .collect())
    }
}

fn req<T>(v: Option<T>, what: &str) -> Result<T, StageError> {
    v.ok_or_else(|| StageError::InvalidInput(format!("unexpected null in {what}")))
}

fn parse_day(s: &str, what: &str) -> Result<NaiveDate, StageError> {
    s.parse()
        .map_err(|_| StageError::InvalidInput(format!("{what}: '{s}' is not a YYYY-MM-DD date")))
}

/// Reads what the reports of the week `week` (Monday) need, as of the day `as_of`
/// (inside that week).
pub async fn load(lake: &Lake, week: NaiveDate, as_of: NaiveDate) -> Result<WeekData, StageError> {
    let ctx = lake.session()?;
    let as_of_s = day_str(as_of);
    let week_s = day_str(week);
    let mut d = WeekData {
        week,
        as_of,
        ..Default::default()
    };

    // Latest runs of the run_date-partitioned sources.
    for b in query(&ctx, LATEST_RUN_SQL, &[&as_of_s]).await? {
        let c = Cols(&b);
        for (t, r) in c.strs(0)?.into_iter().zip(c.strs(1)?) {
            match t.as_deref() {
                Some("student_topic_theta") => d.sources.topics = r,
                Some("user_segment") => d.sources.segments = r,
                Some("growth_fit") => d.sources.growth = r,
                Some("forecasts") => d.sources.forecast = r,
                Some("churn_fit") => d.sources.churn = r,
                _ => {}
            }
        }
    }

    // Calibrations: history, the latest of bank `all`, its items and exclusions.
    for b in query(&ctx, FIT_HISTORY_SQL, &[&as_of_s]).await? {
        let c = Cols(&b);
        let (rd, bank, run_id, model) = (c.strs(0)?, c.strs(1)?, c.strs(2)?, c.strs(3)?);
        let (ns, ni, nr, na) = (c.i64s(4)?, c.i64s(5)?, c.i64s(6)?, c.i64s(7)?);
        let (ll, aic, bic, it) = (c.f64s(8)?, c.f64s(9)?, c.f64s(10)?, c.i64s(11)?);
        let (conv, lm, la, lb, nau) = (
            c.bools(12)?,
            c.strs(13)?,
            c.f64s(14)?,
            c.f64s(15)?,
            c.i64s(16)?,
        );
        for r in 0..b.num_rows() {
            d.fit_history.push(FitRow {
                run_date: req(rd[r].clone(), "fit_meta.run_date")?,
                bank: req(bank[r].clone(), "fit_meta.bank")?,
                run_id: req(run_id[r].clone(), "fit_meta.run_id")?,
                model: model[r].clone().unwrap_or_default(),
                n_students: ns[r].unwrap_or(0),
                n_items: ni[r].unwrap_or(0),
                n_responses: nr[r].unwrap_or(0),
                n_anchors: na[r].unwrap_or(0),
                loglik: ll[r],
                aic: aic[r],
                bic: bic[r],
                iterations: it[r].unwrap_or(0),
                converged: conv[r].unwrap_or(false),
                linking_method: lm[r].clone().unwrap_or_else(|| "none".into()),
                linking_a: la[r],
                linking_b: lb[r],
                n_anchors_used: nau[r].unwrap_or(0),
            });
        }
    }
    d.calibration = d
        .fit_history
        .iter()
        .rev()
        .find(|f| f.bank == "all")
        .cloned();
    if let Some(cal) = &d.calibration {
        for b in query(&ctx, ITEM_PARAMS_SQL, &[&cal.run_date, "all"]).await? {
            let c = Cols(&b);
            let (id, a, bb, cc, ex) = (c.strs(0)?, c.f64s(1)?, c.f64s(2)?, c.f64s(3)?, c.strs(4)?);
            for r in 0..b.num_rows() {
                d.items.push(ItemRow {
                    item_id: req(id[r].clone(), "item_params.item_id")?,
                    a: a[r],
                    b: bb[r],
                    c: cc[r],
                    excluded_reason: ex[r].clone(),
                });
            }
        }
        for b in query(&ctx, ABILITIES_SQL, &[&cal.run_date]).await? {
            let c = Cols(&b);
            let (id, th, se, n) = (c.strs(0)?, c.f64s(1)?, c.f64s(2)?, c.i64s(3)?);
            for r in 0..b.num_rows() {
                if let (Some(id), Some(th), Some(se)) = (id[r].clone(), th[r], se[r]) {
                    d.abilities.insert(id, (th, se, n[r].unwrap_or(0)));
                }
            }
        }
        d.sorted_thetas = d
            .abilities
            .values()
            .map(|v| v.0)
            .filter(|t| t.is_finite())
            .collect();
        d.sorted_thetas.sort_by(f64::total_cmp);
    }
    if let Some(last) = d.fit_history.last().map(|f| f.run_date.clone()) {
        for b in query(&ctx, EXCLUSIONS_SQL, &[&last]).await? {
            let c = Cols(&b);
            let (bank, reason, n) = (c.strs(0)?, c.strs(1)?, c.i64s(2)?);
            for r in 0..b.num_rows() {
                d.exclusions.push((
                    bank[r].clone().unwrap_or_default(),
                    reason[r].clone().unwrap_or_default(),
                    n[r].unwrap_or(0),
                ));
            }
        }
    }

    // KPIs: the week, and the history weeks.
    let first_week = week - Days::new(7 * u64::from(HISTORY_WEEKS - 1));
    d.history_weeks = (0..HISTORY_WEEKS)
        .map(|k| first_week + Days::new(7 * u64::from(k)))
        .collect();
    for b in query(&ctx, KPI_HISTORY_SQL, &[&day_str(first_week), &week_s]).await? {
        let c = Cols(&b);
        let (id, wk) = (c.strs(0)?, c.strs(1)?);
        let (i, a, e, r_, s, p) = (
            c.f64s(2)?,
            c.f64s(3)?,
            c.f64s(4)?,
            c.f64s(5)?,
            c.f64s(6)?,
            c.f64s(7)?,
        );
        for r in 0..b.num_rows() {
            let (Some(id), Some(wk)) = (id[r].clone(), wk[r].as_deref()) else {
                continue;
            };
            let wk = parse_day(wk, "weekly_kpi.week_start")?;
            d.kpi_history.entry(id).or_default().insert(
                wk,
                KpiRow {
                    i_t: i[r],
                    a_t: a[r],
                    e_t: e[r],
                    r_t: r_[r],
                    s: s[r],
                    p: p[r],
                    ..Default::default()
                },
            );
        }
    }
    for b in query(&ctx, WEEK_KPIS_SQL, &[&week_s]).await? {
        let c = Cols(&b);
        let id = c.strs(0)?;
        let (i, a, e, r_, s, p, sg) = (
            c.f64s(1)?,
            c.f64s(2)?,
            c.f64s(3)?,
            c.f64s(4)?,
            c.f64s(5)?,
            c.f64s(6)?,
            c.f64s(7)?,
        );
        let (m, n) = (c.strs(8)?, c.i64s(9)?);
        for r in 0..b.num_rows() {
            let Some(id) = id[r].clone() else { continue };
            d.week_kpis.insert(
                id,
                KpiRow {
                    i_t: i[r],
                    a_t: a[r],
                    e_t: e[r],
                    r_t: r_[r],
                    s: s[r],
                    p: p[r],
                    sigma: sg[r],
                    method: m[r].clone(),
                    n_responses: n[r].unwrap_or(0),
                },
            );
        }
    }

    // Weekly θ: the kpis stage's definition (EAP of each week's first responses with
    // the calibration held fixed).
    for w in kpis::weekly_thetas(lake, as_of, HISTORY_WEEKS, lake::shard::Shard::WHOLE).await? {
        d.weekly_theta.entry(w.student_id).or_default().push((
            w.week_start,
            w.theta.value,
            w.theta.se,
        ));
    }
    for v in d.weekly_theta.values_mut() {
        v.sort_by_key(|x| x.0);
    }

    // The week's attempts.
    for b in query(&ctx, WEEK_ATTEMPTS_SQL, &[&week_s, &as_of_s]).await? {
        let c = Cols(&b);
        let (id, q, subj, ok) = (c.strs(0)?, c.strs(1)?, c.strs(2)?, c.bools(3)?);
        for r in 0..b.num_rows() {
            let (Some(id), Some(q), Some(ok)) = (id[r].clone(), q[r].clone(), ok[r]) else {
                continue;
            };
            d.attempts.entry(id).or_default().push(Attempted {
                question_id: q,
                subject_id: subj[r].clone(),
                correct: ok,
            });
        }
    }

    if let Some(run) = d.sources.topics.clone() {
        for b in query(&ctx, TOPIC_THETA_SQL, &[&run]).await? {
            let c = Cols(&b);
            let (id, t, th, se, n) = (c.strs(0)?, c.strs(1)?, c.f64s(2)?, c.f64s(3)?, c.i64s(4)?);
            for r in 0..b.num_rows() {
                let (Some(id), Some(t), Some(th)) = (id[r].clone(), t[r].clone(), th[r]) else {
                    continue;
                };
                d.topic_theta.entry(id).or_default().push(TopicTheta {
                    topic_id: t,
                    theta: th,
                    se: se[r].unwrap_or(f64::NAN),
                    n_responses: n[r].unwrap_or(0),
                });
            }
        }
    }
    if let Some(run) = d.sources.segments.clone() {
        for b in query(&ctx, SEGMENTS_SQL, &[&run]).await? {
            let c = Cols(&b);
            for (id, l) in c.strs(0)?.into_iter().zip(c.strs(1)?) {
                if let (Some(id), Some(l)) = (id, l) {
                    d.segments.insert(id, l);
                }
            }
        }
    }
    if let Some(run) = d.sources.growth.clone() {
        let mut diag = HashMap::new();
        for b in query(&ctx, GROWTH_GOAL_SQL, &[&run]).await? {
            let c = Cols(&b);
            for (t, v) in c.strs(0)?.into_iter().zip(c.f64s(1)?) {
                if let (Some(t), Some(v)) = (t, v) {
                    diag.insert(t, v);
                }
            }
        }
        if let (Some(&goal), Some(&target)) = (diag.get("goal"), diag.get("target_week")) {
            let base = week_start(parse_day(&run, "growth_fit.run_date")?);
            let weeks = target.round().clamp(0.0, 520.0) as u64;
            d.goal = Some(Goal {
                theta: goal,
                target_week: base + Days::new(7 * weeks),
                published: diag.get("p_published").is_some_and(|p| *p > 0.5),
            });
        }
    }
    if let Some(run) = d.sources.forecast.clone() {
        for b in query(&ctx, FORECASTS_SQL, &[&run]).await? {
            let c = Cols(&b);
            let (s, ds, y, lo, hi) = (c.strs(0)?, c.dates(1)?, c.f64s(2)?, c.f64s(3)?, c.f64s(4)?);
            for r in 0..b.num_rows() {
                if let (Some(s), Some(day), Some(yhat), Some(lo), Some(hi)) =
                    (s[r].clone(), ds[r], y[r], lo[r], hi[r])
                {
                    d.forecasts
                        .entry(s)
                        .or_default()
                        .push(ForecastPoint { day, yhat, lo, hi });
                }
            }
        }
        for b in query(&ctx, ANOMALIES_SQL, &[&run]).await? {
            let c = Cols(&b);
            let (s, ds, v, e, sc) = (c.strs(0)?, c.dates(1)?, c.f64s(2)?, c.f64s(3)?, c.f64s(4)?);
            for r in 0..b.num_rows() {
                if let (Some(s), Some(day), Some(value), Some(expected), Some(score)) =
                    (s[r].clone(), ds[r], v[r], e[r], sc[r])
                {
                    d.anomalies.entry(s).or_default().push(Anomaly {
                        day,
                        value,
                        expected,
                        score,
                    });
                }
            }
        }
        // The series' history up to the forecast's run date.
        let end = parse_day(&run, "forecasts.run_date")?;
        let start = end - Days::new(FORECAST_HISTORY_DAYS - 1);
        let (start_s, end_s) = (day_str(start), day_str(end));
        for b in query(&ctx, COHORT_DAILY_SQL, &[&start_s, &end_s]).await? {
            let c = Cols(&b);
            let (dt, subj, act, it) = (c.strs(0)?, c.strs(1)?, c.f64s(2)?, c.f64s(3)?);
            for r in 0..b.num_rows() {
                let (Some(dt), Some(subj)) = (dt[r].as_deref(), subj[r].as_deref()) else {
                    continue;
                };
                let day = parse_day(dt, "attempts.dt")?;
                if let Some(a) = act[r] {
                    d.history
                        .entry(format!("{subj}:active_students"))
                        .or_default()
                        .push((day, a));
                }
                if let Some(i) = it[r] {
                    d.history
                        .entry(format!("{subj}:mean_i_t"))
                        .or_default()
                        .push((day, i));
                }
            }
        }
        for b in query(&ctx, COHORT_THETA_DAILY_SQL, &[&start_s, &end_s]).await? {
            let c = Cols(&b);
            let (dt, subj, th) = (c.strs(0)?, c.strs(1)?, c.f64s(2)?);
            for r in 0..b.num_rows() {
                if let (Some(dt), Some(subj), Some(th)) =
                    (dt[r].as_deref(), subj[r].as_deref(), th[r])
                {
                    let day = parse_day(dt, "features_topic_daily.dt")?;
                    d.history
                        .entry(format!("{subj}:mean_theta"))
                        .or_default()
                        .push((day, th));
                }
            }
        }
    }
    if let Some(run) = d.sources.churn.clone() {
        for b in query(&ctx, CHURN_KM_SQL, &[&run]).await? {
            let c = Cols(&b);
            let (kind, term, t, est, se, nr) = (
                c.strs(0)?,
                c.strs(1)?,
                c.f64s(2)?,
                c.f64s(3)?,
                c.f64s(4)?,
                c.i64s(5)?,
            );
            for r in 0..b.num_rows() {
                match (kind[r].as_deref(), term[r].clone(), t[r], est[r]) {
                    (Some("km"), _, Some(t), Some(s)) => d.km.push(KmPoint {
                        time_days: t,
                        surv: s,
                        se: se[r],
                        n_risk: nr[r],
                    }),
                    (Some("diagnostic"), Some(term), _, Some(v)) => {
                        d.churn_diag.insert(term, v);
                    }
                    _ => {}
                }
            }
        }
        d.km.sort_by(|a, b| a.time_days.total_cmp(&b.time_days));
    }
    Ok(d)
}
