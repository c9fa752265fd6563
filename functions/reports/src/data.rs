//! What the reports read from the lake for one week and one shard of students
//! (queries in `sql/reports/`).
//!
//! Per-student rows (KPIs, θ, weekly θ, topic θ, segment, the week's attempts) are read
//! for the shard's students only: every per-student query has the predicate
//! `student_bucket(student_id, 0) >= $lo AND student_bucket(student_id, 0) < $hi`
//! ([`Shard::sql_params`]) in the `WHERE` of its scan, so the rows of other shards are
//! dropped while the Parquet files are read, before any sort. They are looked up in maps
//! while rendering.
//!
//! What a report shows of the whole cohort is read as aggregates ([`CohortStats`]):
//! counts in SQL (`GROUP BY`), and distributions (count, mean, median, histogram) and
//! percentile ranks by streaming the cohort's values **sorted** through accumulators of
//! fixed size ([`sorted_series`]): the sort runs in the session's bounded, spilling
//! memory pool, the stage holds one batch at a time. Sums are taken in ascending order,
//! as the reports always did, so they do not depend on how the lake's files are split
//! (a SQL `avg` merges partial sums in arrival order) and a run gives the same bytes
//! whatever the shard count. The other sources are small (one row per item, run, day or
//! series). Each `run_date`-partitioned source is the latest run on or before the
//! week's as-of day, so a report never shows data from after its week.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};
use chrono::{Days, NaiveDate};
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use lake::Lake;
use lake::catalog;
use lake::memo::Memo;
use lake::runs::{StageError, day_param, day_str, query, week_start};
use lake::shard::Shard;

use crate::charts::Histogram;

const KPI_HISTORY_SQL: &str = include_str!("../../../sql/reports/kpi_history.sql");
const ABILITIES_SQL: &str = include_str!("../../../sql/reports/abilities.sql");
const FIT_HISTORY_SQL: &str = include_str!("../../../sql/reports/fit_history.sql");
const ITEM_PARAMS_SQL: &str = include_str!("../../../sql/reports/item_params.sql");
const EXCLUSIONS_SQL: &str = include_str!("../../../sql/reports/exclusions.sql");
const ANCHOR_DRIFT_SQL: &str = include_str!("../../../sql/reports/anchor_drift.sql");
const MISFIT_SQL: &str = include_str!("../../../sql/reports/misfit.sql");
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
const COHORT_THETAS_SQL: &str = include_str!("../../../sql/reports/cohort_thetas.sql");
const COHORT_KPIS_SQL: &str = include_str!("../../../sql/reports/cohort_kpis.sql");
const COHORT_ACTIVE_SQL: &str = include_str!("../../../sql/reports/cohort_active.sql");
const COHORT_SEGMENTS_SQL: &str = include_str!("../../../sql/reports/cohort_segments.sql");

/// Weeks of history in the θ trend and the KPI sparklines (the report week included):
/// nine weeks cover the pipeline's 60-day look-back.
pub const HISTORY_WEEKS: u32 = 9;
/// Days of daily cohort history drawn before a forecast (more when an anomaly of the
/// run is older: the history then starts at the earliest anomaly).
pub const FORECAST_HISTORY_DAYS: u64 = 28;

/// Equal-width bins of a cohort histogram: `[lo, hi]` in steps of `width` (values
/// outside are counted in the end bins, see [`crate::charts::histogram`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bins {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Bin width.
    pub width: f64,
}

/// Bins of the cohort's θ histogram (θ scale).
pub const THETA_BINS: Bins = Bins {
    lo: -4.0,
    hi: 4.0,
    width: 0.5,
};

/// The KPI distributions of the cohort report: `weekly_kpi` column and its bins
/// (I_t is a difference in [−1, 1]; the others are shares in [0, 1]).
pub const COHORT_KPIS: [(&str, Bins); 6] = [
    (
        "i_t",
        Bins {
            lo: -1.0,
            hi: 1.0,
            width: 0.125,
        },
    ),
    ("a_t", SHARE_BINS),
    ("e_t", SHARE_BINS),
    ("r_t", SHARE_BINS),
    ("s", SHARE_BINS),
    ("p", SHARE_BINS),
];

const SHARE_BINS: Bins = Bins {
    lo: 0.0,
    hi: 1.0,
    width: 0.1,
};

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
    /// The growth model behind `p`: `bayes_theta` or `glmm_accuracy`.
    pub p_model: Option<String>,
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

/// Count, mean, median and histogram of the finite values of one quantity over the
/// cohort.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DistStats {
    /// Number of values.
    pub n: usize,
    /// Mean: the sum in ascending order of the values, over `n` (none when `n` = 0).
    pub mean: Option<f64>,
    /// Median: the middle value, or the mean of the two middle ones (none when `n` = 0).
    pub median: Option<f64>,
    /// Bin centres and counts (see [`Bins`]).
    pub hist: Vec<(f64, usize)>,
}

impl DistStats {
    /// The summary of the finite values of `values`, held in memory (as the stage
    /// computes it from the cohort's sorted stream): for tests and fixtures.
    pub fn of_values(values: &[f64], bins: Bins) -> DistStats {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let mut acc = SortedSummary::new(v.len(), bins);
        for x in v {
            acc.push(x);
        }
        acc.finish().unwrap_or_default()
    }
}

/// What the reports show of the whole cohort (all shards), as aggregates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CohortStats {
    /// Students with KPIs in the report week (distinct students of its `weekly_kpi`).
    pub students_active: usize,
    /// θ of the students of the calibration (finite θ with an SE), on [`THETA_BINS`].
    pub theta: DistStats,
    /// The week's KPI distributions by column ([`COHORT_KPIS`]). Read for the cohort
    /// report only (empty otherwise).
    pub kpis: BTreeMap<String, DistStats>,
    /// Students by segment label of the segments run. Read for the cohort report only.
    pub segments: BTreeMap<String, usize>,
}

/// Everything the week's reports show: the rows of one shard's students, and the
/// cohort as aggregates.
#[derive(Debug, Clone, Default)]
pub struct WeekData {
    /// Monday of the report week.
    pub week: NaiveDate,
    /// Last day of data shown.
    pub as_of: NaiveDate,
    /// The students whose rows were read (the per-student maps below hold no others).
    pub shard: Shard,
    /// The calibration of bank `all` the θs come from.
    pub calibration: Option<FitRow>,
    /// Every calibration up to the as-of day, every bank, by run date.
    pub fit_history: Vec<FitRow>,
    /// Items of `calibration`.
    pub items: Vec<ItemRow>,
    /// Excluded items of the latest run date: (bank, reason, items).
    pub exclusions: Vec<(String, String, i64)>,
    /// Drift screen history of the anchors ever flagged up to the as-of day (cohort
    /// report only), by bank, anchor and run date.
    pub anchor_drift: Vec<DriftRow>,
    /// Misfitting items of every calibration up to the as-of day (cohort report only),
    /// by bank and run date.
    pub misfit: Vec<MisfitRow>,
    /// θ, SE, responses of the shard's students in `calibration`.
    pub abilities: HashMap<String, (f64, f64, i64)>,
    /// For each of the shard's students with a finite θ: how many θs of the cohort
    /// (`cohort.theta`, `n` in all) are below theirs and how many are at most theirs
    /// (the percentile rank, see [`crate::view::percentile_rank`]).
    pub theta_ranks: HashMap<String, (usize, usize)>,
    /// KPIs of the week by student (the shard's students who get a report).
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
    /// The whole cohort, as aggregates.
    pub cohort: CohortStats,
    /// Run dates used.
    pub sources: Sources,
}

fn text(s: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(s.to_string()))
}

/// `params` followed by the shard's bucket range (`$lo`, `$hi`).
fn sharded(mut params: Vec<ScalarValue>, shard: Shard) -> Vec<ScalarValue> {
    params.extend(shard.sql_params());
    params
}

/// Typed access to the columns of a result batch by their SQL names (cast where the
/// engine's type differs); a missing name is an error naming it ([`lake::columns::Columns`]).
struct Cols<'a>(&'a RecordBatch);

impl Cols<'_> {
    fn cast(&self, name: &str, t: &DataType) -> Result<arrow::array::ArrayRef, StageError> {
        let c = lake::columns::Columns::of(self.0).column(name)?;
        if c.data_type() == t {
            Ok(c.clone())
        } else {
            Ok(arrow::compute::cast(c, t)?)
        }
    }
    fn strs(&self, name: &str) -> Result<Vec<Option<String>>, StageError> {
        let a = self.cast(name, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r).to_string()))
            .collect())
    }
    fn f64s(&self, name: &str) -> Result<Vec<Option<f64>>, StageError> {
        let a = self.cast(name, &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r)))
            .collect())
    }
    fn i64s(&self, name: &str) -> Result<Vec<Option<i64>>, StageError> {
        let a = self.cast(name, &DataType::Int64)?;
        let a = a.as_primitive::<Int64Type>();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r)))
            .collect())
    }
    fn bools(&self, name: &str) -> Result<Vec<Option<bool>>, StageError> {
        let a = self.cast(name, &DataType::Boolean)?;
        let a = a.as_boolean();
        Ok((0..a.len())
            .map(|r| (!a.is_null(r)).then(|| a.value(r)))
            .collect())
    }
    fn dates(&self, name: &str) -> Result<Vec<Option<NaiveDate>>, StageError> {
        let a = self.cast(name, &DataType::Date32)?;
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

/// What every shard's reports of a week read the same (the cohort's and the runs'
/// tables, no student's rows), read once per process and week ([`lake::memo`]): the
/// later shards a process serves take the first one's.
struct CohortReads {
    sources: Sources,
    fit_history: Vec<FitRow>,
    /// The latest calibration of bank `all` in `fit_history`.
    calibration: Option<FitRow>,
    students_active: usize,
    /// The items of the latest calibration of bank `all`.
    items: Vec<ItemRow>,
    exclusions: Vec<(String, String, i64)>,
    series: SeriesData,
    goal: Option<Goal>,
    churn: Option<(Vec<KmPoint>, HashMap<String, f64>)>,
}

/// The cohort reads of the latest week this process reported (one entry).
static COHORT_READS: Memo<tokio::sync::OnceCell<CohortReads>> = Memo::new();

/// The catalog tables [`CohortReads`] reads (`attempts`, `questions`, `weekly_kpi` and
/// `features_topic_daily` are behind the series' daily history). Each must be among
/// the reports function's Terraform reads: the memo lists them (a test checks it).
pub const COHORT_INPUTS: [&str; 12] = [
    catalog::FIT_META,
    catalog::ITEM_PARAMS,
    catalog::STUDENT_TOPIC_THETA,
    catalog::USER_SEGMENT,
    catalog::GROWTH_FIT,
    catalog::FORECASTS,
    catalog::ANOMALIES,
    catalog::CHURN_FIT,
    catalog::ATTEMPTS,
    catalog::QUESTIONS,
    catalog::WEEKLY_KPI,
    catalog::FEATURES_TOPIC_DAILY,
];

/// Reads [`CohortReads`]: first what depends on no other read, then what the latest
/// calibration and the sources name, each group at once (on S3 each query waits for
/// listings and GETs; locally the queries share the CPUs).
async fn cohort_reads(
    ctx: &SessionContext,
    week: NaiveDate,
    as_of: NaiveDate,
) -> Result<CohortReads, StageError> {
    let (sources, fit_history, students_active) = futures::try_join!(
        timed("latest_sources", latest_sources(ctx, as_of)),
        timed("fit_history", fit_history(ctx, as_of)),
        timed("students_active", students_active(ctx, week)),
    )?;
    let calibration = fit_history.iter().rev().find(|f| f.bank == "all").cloned();
    let last_run = fit_history.last().map(|f| f.run_date.as_str());
    let (items, exclusions, series, goal, churn) = futures::try_join!(
        async {
            match &calibration {
                Some(cal) => timed("item_params", item_params(ctx, &cal.run_date)).await,
                None => Ok(Vec::new()),
            }
        },
        async {
            match last_run {
                Some(run_date) => timed("exclusions", exclusions(ctx, run_date)).await,
                None => Ok(Vec::new()),
            }
        },
        async {
            match &sources.forecast {
                Some(run) => timed("forecasts", forecasts(ctx, run)).await,
                None => Ok(SeriesData::default()),
            }
        },
        async {
            match &sources.growth {
                Some(run) => timed("growth_goal", growth_goal(ctx, run)).await,
                None => Ok(None),
            }
        },
        async {
            match &sources.churn {
                Some(run) => timed("churn_km", churn_km(ctx, run)).await.map(Some),
                None => Ok(None),
            }
        },
    )?;
    Ok(CohortReads {
        sources,
        fit_history,
        calibration,
        students_active,
        items,
        exclusions,
        series,
        goal,
        churn,
    })
}

/// Awaits one read of [`load`] and logs its wall time (debug level), so the slow
/// read of a shard shows in its log.
async fn timed<T>(
    what: &'static str,
    read: impl Future<Output = Result<T, StageError>>,
) -> Result<T, StageError> {
    let started = std::time::Instant::now();
    let out = read.await;
    tracing::debug!(
        read = what,
        ms = started.elapsed().as_millis() as u64,
        "reports: read"
    );
    out
}

/// Reads what the reports of the week `week` (Monday) need, as of the day `as_of`
/// (inside that week), for the students of `shard`; with `cohort_report`, also the
/// cohort aggregates only the cohort report shows (KPI distributions, segment sizes,
/// misfit, anchor drift). What every shard reads the same ([`CohortReads`]) is read
/// once per process and week.
pub async fn load(
    lake: &Lake,
    week: NaiveDate,
    as_of: NaiveDate,
    shard: Shard,
    cohort_report: bool,
) -> Result<WeekData, StageError> {
    let ctx = lake.session()?;
    let ctx = &ctx;
    let history_weeks = history_weeks(week);
    let (shared, _) = COHORT_READS
        .run_work(
            lake,
            "reports",
            &[day_str(week), day_str(as_of)],
            &COHORT_INPUTS,
        )
        .await?;
    // First the cohort's reads and the shard's that depend on none of them, all at once.
    let (cohort, misfit, anchor_drift, kpi_history, weekly_theta, attempts) = futures::try_join!(
        shared.get_or_try_init(|| cohort_reads(ctx, week, as_of)),
        async {
            if cohort_report {
                timed("misfit", misfit(ctx, as_of)).await
            } else {
                Ok(Vec::new())
            }
        },
        async {
            if cohort_report {
                timed("anchor_drift", anchor_drift(ctx, as_of)).await
            } else {
                Ok(Vec::new())
            }
        },
        timed("kpi_history", kpi_history(ctx, &history_weeks, shard)),
        timed("weekly_theta", weekly_theta(ctx, as_of, shard)),
        timed("week_attempts", week_attempts(ctx, week, as_of, shard)),
    )?;
    let calibration = cohort.calibration.clone();
    let sources = &cohort.sources;
    // Then the shard's rows of the calibration and the sources they name.
    let (calibrated, cohort_kpis, topic_theta, segments) = futures::try_join!(
        async {
            let Some(cal) = &calibration else {
                return Ok(Calibrated::default());
            };
            let abilities = timed("abilities", abilities(ctx, &cal.run_date, shard)).await?;
            let (theta, theta_ranks) = timed(
                "cohort_thetas",
                cohort_thetas(ctx, &cal.run_date, &abilities),
            )
            .await?;
            Ok(Calibrated {
                abilities,
                theta,
                theta_ranks,
            })
        },
        async {
            if cohort_report {
                timed("cohort_kpis", cohort_kpis(ctx, week)).await
            } else {
                Ok(BTreeMap::new())
            }
        },
        async {
            match &sources.topics {
                Some(run) => timed("topic_theta", topic_theta(ctx, run, shard)).await,
                None => Ok(HashMap::new()),
            }
        },
        async {
            match &sources.segments {
                Some(run) => {
                    let sizes = async {
                        if cohort_report {
                            timed("segment_sizes", segment_sizes(ctx, run)).await
                        } else {
                            Ok(BTreeMap::new())
                        }
                    };
                    futures::try_join!(timed("segments", segments(ctx, run, shard)), sizes)
                }
                None => Ok((HashMap::new(), BTreeMap::new())),
            }
        },
    )?;
    // The report week is the last history week: its rows are the week's KPIs.
    let week_kpis = kpi_history
        .iter()
        .filter_map(|(id, weeks)| weeks.get(&week).map(|k| (id.clone(), k.clone())))
        .collect();
    let (km, churn_diag) = cohort.churn.clone().unwrap_or_default();
    let (segments, segment_sizes) = segments;
    Ok(WeekData {
        week,
        as_of,
        shard,
        calibration,
        fit_history: cohort.fit_history.clone(),
        items: cohort.items.clone(),
        exclusions: cohort.exclusions.clone(),
        anchor_drift,
        misfit,
        abilities: calibrated.abilities,
        theta_ranks: calibrated.theta_ranks,
        week_kpis,
        history_weeks,
        kpi_history,
        weekly_theta,
        topic_theta,
        segments,
        goal: cohort.goal.clone(),
        forecasts: cohort.series.forecasts.clone(),
        anomalies: cohort.series.anomalies.clone(),
        history: cohort.series.history.clone(),
        km,
        churn_diag,
        attempts,
        cohort: CohortStats {
            students_active: cohort.students_active,
            theta: calibrated.theta,
            kpis: cohort_kpis,
            segments: segment_sizes,
        },
        sources: cohort.sources.clone(),
    })
}

/// What [`load`] reads of the report's calibration for a shard: the shard's abilities,
/// the cohort's θ distribution and each student's rank in it.
#[derive(Default)]
struct Calibrated {
    abilities: HashMap<String, (f64, f64, i64)>,
    theta: DistStats,
    theta_ranks: HashMap<String, (usize, usize)>,
}

/// The cohort series of a forecast run: forecasts and anomalies by series, and each
/// series' daily history.
#[derive(Default)]
struct SeriesData {
    forecasts: BTreeMap<String, Vec<ForecastPoint>>,
    anomalies: BTreeMap<String, Vec<Anomaly>>,
    history: BTreeMap<String, Vec<(NaiveDate, f64)>>,
}

/// Latest runs of the run_date-partitioned sources on or before `as_of`.
async fn latest_sources(ctx: &SessionContext, as_of: NaiveDate) -> Result<Sources, StageError> {
    let mut s = Sources::default();
    for b in query(ctx, LATEST_RUN_SQL, vec![day_param(as_of)]).await? {
        let c = Cols(&b);
        for (t, r) in c.strs("tbl")?.into_iter().zip(c.strs("run_date")?) {
            match t.as_deref() {
                Some("student_topic_theta") => s.topics = r,
                Some("user_segment") => s.segments = r,
                Some("growth_fit") => s.growth = r,
                Some("forecasts") => s.forecast = r,
                Some("churn_fit") => s.churn = r,
                _ => {}
            }
        }
    }
    Ok(s)
}

/// Every calibration up to `as_of`, every bank, by run date.
async fn fit_history(ctx: &SessionContext, as_of: NaiveDate) -> Result<Vec<FitRow>, StageError> {
    let mut out = Vec::new();
    for b in query(ctx, FIT_HISTORY_SQL, vec![day_param(as_of)]).await? {
        let c = Cols(&b);
        let (rd, bank, run_id, model) = (
            c.strs("run_date")?,
            c.strs("bank")?,
            c.strs("run_id")?,
            c.strs("model")?,
        );
        let (ns, ni, nr, na) = (
            c.i64s("n_students")?,
            c.i64s("n_items")?,
            c.i64s("n_responses")?,
            c.i64s("n_anchors")?,
        );
        let (ll, aic, bic, it) = (
            c.f64s("loglik")?,
            c.f64s("aic")?,
            c.f64s("bic")?,
            c.i64s("iterations")?,
        );
        let (conv, lm, la, lb, nau) = (
            c.bools("converged")?,
            c.strs("linking_method")?,
            c.f64s("linking_a")?,
            c.f64s("linking_b")?,
            c.i64s("n_anchors_used")?,
        );
        for r in 0..b.num_rows() {
            out.push(FitRow {
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
    Ok(out)
}

/// Items of the calibration of bank `all` of `run_date`, excluded items too.
async fn item_params(ctx: &SessionContext, run_date: &str) -> Result<Vec<ItemRow>, StageError> {
    let mut out = Vec::new();
    for b in query(ctx, ITEM_PARAMS_SQL, vec![text(run_date), text("all")]).await? {
        let c = Cols(&b);
        let (id, a, bb, cc, ex) = (
            c.strs("item_id")?,
            c.f64s("a")?,
            c.f64s("b")?,
            c.f64s("c")?,
            c.strs("excluded_reason")?,
        );
        for r in 0..b.num_rows() {
            out.push(ItemRow {
                item_id: req(id[r].clone(), "item_params.item_id")?,
                a: a[r],
                b: bb[r],
                c: cc[r],
                excluded_reason: ex[r].clone(),
            });
        }
    }
    Ok(out)
}

/// θ, SE and responses of the shard's students in the calibration of `run_date`.
async fn abilities(
    ctx: &SessionContext,
    run_date: &str,
    shard: Shard,
) -> Result<HashMap<String, (f64, f64, i64)>, StageError> {
    let mut out = HashMap::new();
    for b in query(ctx, ABILITIES_SQL, sharded(vec![text(run_date)], shard)).await? {
        let c = Cols(&b);
        let (id, th, se, n) = (
            c.strs("student_id")?,
            c.f64s("theta")?,
            c.f64s("se")?,
            c.i64s("n_responses")?,
        );
        for r in 0..b.num_rows() {
            if let (Some(id), Some(th), Some(se)) = (id[r].clone(), th[r], se[r]) {
                out.insert(id, (th, se, n[r].unwrap_or(0)));
            }
        }
    }
    Ok(out)
}

/// The cohort's θ distribution in the calibration of `run_date`, and the rank counts
/// of the shard's θs (`abilities`) in it, from one ascending stream of the cohort's θs.
async fn cohort_thetas(
    ctx: &SessionContext,
    run_date: &str,
    abilities: &HashMap<String, (f64, f64, i64)>,
) -> Result<(DistStats, HashMap<String, (usize, usize)>), StageError> {
    let mut ranks = RankCounter::new(abilities.iter().map(|(id, a)| (a.0, id.as_str())));
    let mut dists = sorted_series(
        ctx,
        COHORT_THETAS_SQL,
        vec![text(run_date)],
        |_| THETA_BINS,
        |_, v| ranks.push(v),
    )
    .await?;
    let theta = dists.remove("theta").unwrap_or_default();
    Ok((theta, ranks.finish()))
}

/// Excluded items of each bank's calibration of `run_date`: (bank, reason, items).
async fn exclusions(
    ctx: &SessionContext,
    run_date: &str,
) -> Result<Vec<(String, String, i64)>, StageError> {
    let mut out = Vec::new();
    for b in query(ctx, EXCLUSIONS_SQL, vec![text(run_date)]).await? {
        let c = Cols(&b);
        let (bank, reason, n) = (
            c.strs("bank")?,
            c.strs("excluded_reason")?,
            c.i64s("items")?,
        );
        for r in 0..b.num_rows() {
            out.push((
                bank[r].clone().unwrap_or_default(),
                reason[r].clone().unwrap_or_default(),
                n[r].unwrap_or(0),
            ));
        }
    }
    Ok(out)
}

/// One anchor in one calibration's drift screen (`anchor_drift`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRow {
    /// Full bank id.
    pub bank: String,
    /// Anchor question.
    pub item_id: String,
    /// Calibration run date.
    pub run_date: String,
    /// b on the anchor scale minus the known b, θ units.
    pub diff_b: f64,
    /// Robust z of that difference.
    pub z_b: f64,
    /// Whether the screen flagged it in that run.
    pub flagged: bool,
    /// The recent period's b shift (anchor scale, θ units) when the time-split test
    /// flagged it in that run.
    pub recent_shift_b: Option<f64>,
}

/// A misfitting item of a calibration (`item_params`).
#[derive(Debug, Clone, PartialEq)]
pub struct MisfitRow {
    /// Full bank id.
    pub bank: String,
    /// Calibration run date.
    pub run_date: String,
    /// Question.
    pub item_id: String,
    /// S-X², its df and p (when the bank has them).
    pub s_x2: Option<(f64, i64, f64)>,
    /// Infit mean square.
    pub infit: Option<f64>,
    /// Outfit mean square.
    pub outfit: Option<f64>,
}

/// Drift screen rows of the anchors flagged at least once up to `as_of`.
async fn anchor_drift(ctx: &SessionContext, as_of: NaiveDate) -> Result<Vec<DriftRow>, StageError> {
    let mut out = Vec::new();
    for b in query(ctx, ANCHOR_DRIFT_SQL, vec![text(&as_of.to_string())]).await? {
        let c = Cols(&b);
        let (bank, item, run, db, zb, flagged, recent) = (
            c.strs("bank")?,
            c.strs("item_id")?,
            c.strs("run_date")?,
            c.f64s("diff_b")?,
            c.f64s("z_b")?,
            c.bools("flagged")?,
            c.f64s("recent_shift_b")?,
        );
        for r in 0..b.num_rows() {
            out.push(DriftRow {
                bank: bank[r].clone().unwrap_or_default(),
                item_id: item[r].clone().unwrap_or_default(),
                run_date: run[r].clone().unwrap_or_default(),
                diff_b: db[r].unwrap_or(f64::NAN),
                z_b: zb[r].unwrap_or(f64::NAN),
                flagged: flagged[r].unwrap_or(false),
                recent_shift_b: recent[r],
            });
        }
    }
    Ok(out)
}

/// Misfitting items of every calibration up to `as_of` (see `sql/reports/misfit.sql`).
async fn misfit(ctx: &SessionContext, as_of: NaiveDate) -> Result<Vec<MisfitRow>, StageError> {
    let mut out = Vec::new();
    for b in query(ctx, MISFIT_SQL, vec![text(&as_of.to_string())]).await? {
        let c = Cols(&b);
        let (bank, run, item, sx, df, p, infit, outfit) = (
            c.strs("bank")?,
            c.strs("run_date")?,
            c.strs("item_id")?,
            c.f64s("s_x2")?,
            c.i64s("df_s_x2")?,
            c.f64s("p_s_x2")?,
            c.f64s("infit")?,
            c.f64s("outfit")?,
        );
        for r in 0..b.num_rows() {
            out.push(MisfitRow {
                bank: bank[r].clone().unwrap_or_default(),
                run_date: run[r].clone().unwrap_or_default(),
                item_id: item[r].clone().unwrap_or_default(),
                s_x2: match (sx[r], df[r], p[r]) {
                    (Some(s), Some(d), Some(p)) => Some((s, d, p)),
                    _ => None,
                },
                infit: infit[r],
                outfit: outfit[r],
            });
        }
    }
    Ok(out)
}

/// Mondays of the [`HISTORY_WEEKS`] weeks ending with `week`, oldest first.
fn history_weeks(week: NaiveDate) -> Vec<NaiveDate> {
    let first = week - Days::new(7 * u64::from(HISTORY_WEEKS - 1));
    (0..HISTORY_WEEKS)
        .map(|k| first + Days::new(7 * u64::from(k)))
        .collect()
}

/// KPIs of the history weeks of the shard's students (sparklines; the last week is the
/// report week, whose rows are what each report shows).
async fn kpi_history(
    ctx: &SessionContext,
    weeks: &[NaiveDate],
    shard: Shard,
) -> Result<HashMap<String, BTreeMap<NaiveDate, KpiRow>>, StageError> {
    let (Some(first), Some(last)) = (weeks.first(), weeks.last()) else {
        return Ok(HashMap::new());
    };
    let params = sharded(vec![day_param(*first), day_param(*last)], shard);
    let mut out: HashMap<String, BTreeMap<NaiveDate, KpiRow>> = HashMap::new();
    for b in query(ctx, KPI_HISTORY_SQL, params).await? {
        let c = Cols(&b);
        let (id, wk) = (c.strs("student_id")?, c.dates("week_start")?);
        let (i, a, e, r_, s, p, sg) = (
            c.f64s("i_t")?,
            c.f64s("a_t")?,
            c.f64s("e_t")?,
            c.f64s("r_t")?,
            c.f64s("s")?,
            c.f64s("p")?,
            c.f64s("sigma")?,
        );
        let (m, n, pm) = (
            c.strs("method")?,
            c.i64s("n_responses")?,
            c.strs("p_model")?,
        );
        for r in 0..b.num_rows() {
            let (Some(id), Some(wk)) = (id[r].clone(), wk[r]) else {
                continue;
            };
            out.entry(id).or_default().insert(
                wk,
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
                    p_model: pm[r].clone(),
                },
            );
        }
    }
    Ok(out)
}

/// Students with KPIs in the report week, all shards.
async fn students_active(ctx: &SessionContext, week: NaiveDate) -> Result<usize, StageError> {
    let mut n = 0;
    for b in query(ctx, COHORT_ACTIVE_SQL, vec![day_param(week)]).await? {
        if let Some(Some(v)) = Cols(&b).i64s("students")?.first() {
            n = usize::try_from(*v).unwrap_or(0);
        }
    }
    Ok(n)
}

/// The week's KPI distributions over the cohort, by column ([`COHORT_KPIS`]); every
/// KPI is present (`n` = 0 when no student has it).
async fn cohort_kpis(
    ctx: &SessionContext,
    week: NaiveDate,
) -> Result<BTreeMap<String, DistStats>, StageError> {
    let bins = |series: &str| {
        COHORT_KPIS
            .iter()
            .find(|(k, _)| *k == series)
            .map_or(SHARE_BINS, |(_, b)| *b)
    };
    let mut dists =
        sorted_series(ctx, COHORT_KPIS_SQL, vec![day_param(week)], bins, |_, _| {}).await?;
    for (k, _) in COHORT_KPIS {
        dists.entry(k.to_string()).or_default();
    }
    Ok(dists)
}

/// Weekly θ (the kpis stage's definition: EAP of each week's first responses with the
/// calibration held fixed) of the shard's students over the history weeks.
async fn weekly_theta(
    ctx: &SessionContext,
    as_of: NaiveDate,
    shard: Shard,
) -> Result<HashMap<String, Vec<(NaiveDate, f64, f64)>>, StageError> {
    let mut out: HashMap<String, Vec<(NaiveDate, f64, f64)>> = HashMap::new();
    for w in kpis::weekly_thetas(ctx, as_of, HISTORY_WEEKS, shard).await? {
        out.entry(w.student_id)
            .or_default()
            .push((w.week_start, w.theta.value, w.theta.se));
    }
    for v in out.values_mut() {
        v.sort_by_key(|x| x.0);
    }
    Ok(out)
}

/// The attempts of the report week up to `as_of` of the shard's students, in time order.
async fn week_attempts(
    ctx: &SessionContext,
    week: NaiveDate,
    as_of: NaiveDate,
    shard: Shard,
) -> Result<HashMap<String, Vec<Attempted>>, StageError> {
    let mut out: HashMap<String, Vec<Attempted>> = HashMap::new();
    let params = sharded(vec![day_param(week), day_param(as_of)], shard);
    for b in query(ctx, WEEK_ATTEMPTS_SQL, params).await? {
        let c = Cols(&b);
        let (id, q, subj, ok) = (
            c.strs("student_id")?,
            c.strs("question_id")?,
            c.strs("subject_id")?,
            c.bools("correct")?,
        );
        for r in 0..b.num_rows() {
            let (Some(id), Some(q), Some(ok)) = (id[r].clone(), q[r].clone(), ok[r]) else {
                continue;
            };
            out.entry(id).or_default().push(Attempted {
                question_id: q,
                subject_id: subj[r].clone(),
                correct: ok,
            });
        }
    }
    Ok(out)
}

/// Topic θ of the shard's students in the score_topics run `run`.
async fn topic_theta(
    ctx: &SessionContext,
    run: &str,
    shard: Shard,
) -> Result<HashMap<String, Vec<TopicTheta>>, StageError> {
    let mut out: HashMap<String, Vec<TopicTheta>> = HashMap::new();
    for b in query(ctx, TOPIC_THETA_SQL, sharded(vec![text(run)], shard)).await? {
        let c = Cols(&b);
        let (id, t, th, se, n) = (
            c.strs("student_id")?,
            c.strs("topic_id")?,
            c.f64s("theta")?,
            c.f64s("se")?,
            c.i64s("n_responses")?,
        );
        for r in 0..b.num_rows() {
            let (Some(id), Some(t), Some(th)) = (id[r].clone(), t[r].clone(), th[r]) else {
                continue;
            };
            out.entry(id).or_default().push(TopicTheta {
                topic_id: t,
                theta: th,
                se: se[r].unwrap_or(f64::NAN),
                n_responses: n[r].unwrap_or(0),
            });
        }
    }
    Ok(out)
}

/// Segment label of the shard's students in the segments run `run`.
async fn segments(
    ctx: &SessionContext,
    run: &str,
    shard: Shard,
) -> Result<HashMap<String, String>, StageError> {
    let mut out = HashMap::new();
    for b in query(ctx, SEGMENTS_SQL, sharded(vec![text(run)], shard)).await? {
        let c = Cols(&b);
        for (id, l) in c
            .strs("student_id")?
            .into_iter()
            .zip(c.strs("segment_label")?)
        {
            if let (Some(id), Some(l)) = (id, l) {
                out.insert(id, l);
            }
        }
    }
    Ok(out)
}

/// Students per segment label in the segments run `run`, all shards.
async fn segment_sizes(
    ctx: &SessionContext,
    run: &str,
) -> Result<BTreeMap<String, usize>, StageError> {
    let mut out = BTreeMap::new();
    for b in query(ctx, COHORT_SEGMENTS_SQL, vec![text(run)]).await? {
        let c = Cols(&b);
        for (l, n) in c
            .strs("segment_label")?
            .into_iter()
            .zip(c.i64s("students")?)
        {
            if let (Some(l), Some(n)) = (l, n) {
                out.insert(l, usize::try_from(n).unwrap_or(0));
            }
        }
    }
    Ok(out)
}

/// The goal of the growth run `run`.
async fn growth_goal(ctx: &SessionContext, run: &str) -> Result<Option<Goal>, StageError> {
    let mut diag = HashMap::new();
    for b in query(ctx, GROWTH_GOAL_SQL, vec![text(run)]).await? {
        let c = Cols(&b);
        for (t, v) in c.strs("term")?.into_iter().zip(c.f64s("estimate")?) {
            if let (Some(t), Some(v)) = (t, v) {
                diag.insert(t, v);
            }
        }
    }
    let (Some(&goal), Some(&target)) = (diag.get("goal"), diag.get("target_week")) else {
        return Ok(None);
    };
    let base = week_start(parse_day(run, "growth_fit.run_date")?);
    let weeks = target.round().clamp(0.0, 520.0) as u64;
    Ok(Some(Goal {
        theta: goal,
        target_week: base + Days::new(7 * weeks),
        published: diag.get("p_published").is_some_and(|p| *p > 0.5),
    }))
}

/// Forecasts, anomalies and the series' daily history of the forecast run `run`.
async fn forecasts(ctx: &SessionContext, run: &str) -> Result<SeriesData, StageError> {
    let mut d = SeriesData::default();
    for b in query(ctx, FORECASTS_SQL, vec![text(run)]).await? {
        let c = Cols(&b);
        let (s, ds, y, lo, hi) = (
            c.strs("series")?,
            c.dates("ds")?,
            c.f64s("yhat")?,
            c.f64s("yhat_lower")?,
            c.f64s("yhat_upper")?,
        );
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
    for b in query(ctx, ANOMALIES_SQL, vec![text(run)]).await? {
        let c = Cols(&b);
        let (s, ds, v, e, sc) = (
            c.strs("series")?,
            c.dates("ds")?,
            c.f64s("value")?,
            c.f64s("expected")?,
            c.f64s("score")?,
        );
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
    let end = parse_day(run, "forecasts.run_date")?;
    // The last FORECAST_HISTORY_DAYS days, or from the earliest anomaly, so every
    // anomaly drawn sits on the history line it departs from.
    let earliest = d.anomalies.values().flatten().map(|a| a.day).min();
    let start = (end - Days::new(FORECAST_HISTORY_DAYS - 1)).min(earliest.unwrap_or(end));
    d.history = series_history(ctx, start, end).await?;
    Ok(d)
}

/// The forecast series' daily values over `[start, end]` (cohort aggregates in SQL).
async fn series_history(
    ctx: &SessionContext,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<BTreeMap<String, Vec<(NaiveDate, f64)>>, StageError> {
    let mut out: BTreeMap<String, Vec<(NaiveDate, f64)>> = BTreeMap::new();
    let params = || vec![day_param(start), day_param(end)];
    for b in query(ctx, COHORT_DAILY_SQL, params()).await? {
        let c = Cols(&b);
        let (dt, subj, act, it) = (
            c.dates("dt")?,
            c.strs("subject_id")?,
            c.f64s("active_students")?,
            c.f64s("mean_i_t")?,
        );
        for r in 0..b.num_rows() {
            let (Some(day), Some(subj)) = (dt[r], subj[r].as_deref()) else {
                continue;
            };
            if let Some(a) = act[r] {
                out.entry(format!("{subj}:active_students"))
                    .or_default()
                    .push((day, a));
            }
            if let Some(i) = it[r] {
                out.entry(format!("{subj}:mean_i_t"))
                    .or_default()
                    .push((day, i));
            }
        }
    }
    for b in query(ctx, COHORT_THETA_DAILY_SQL, params()).await? {
        let c = Cols(&b);
        let (dt, subj, th) = (c.dates("dt")?, c.strs("subject_id")?, c.f64s("mean_theta")?);
        for r in 0..b.num_rows() {
            if let (Some(day), Some(subj), Some(th)) = (dt[r], subj[r].as_deref(), th[r]) {
                out.entry(format!("{subj}:mean_theta"))
                    .or_default()
                    .push((day, th));
            }
        }
    }
    Ok(out)
}

/// The Kaplan–Meier curve (by time) and the diagnostics of the churn run `run`.
async fn churn_km(
    ctx: &SessionContext,
    run: &str,
) -> Result<(Vec<KmPoint>, HashMap<String, f64>), StageError> {
    let (mut km, mut diag) = (Vec::new(), HashMap::new());
    for b in query(ctx, CHURN_KM_SQL, vec![text(run)]).await? {
        let c = Cols(&b);
        let (kind, term, t, est, se, nr) = (
            c.strs("kind")?,
            c.strs("term")?,
            c.f64s("time_days")?,
            c.f64s("estimate")?,
            c.f64s("se")?,
            c.i64s("n_risk")?,
        );
        for r in 0..b.num_rows() {
            match (kind[r].as_deref(), term[r].clone(), t[r], est[r]) {
                (Some("km"), _, Some(t), Some(s)) => km.push(KmPoint {
                    time_days: t,
                    surv: s,
                    se: se[r],
                    n_risk: nr[r],
                }),
                (Some("diagnostic"), Some(term), _, Some(v)) => {
                    diag.insert(term, v);
                }
                _ => {}
            }
        }
    }
    km.sort_by(|a: &KmPoint, b: &KmPoint| a.time_days.total_cmp(&b.time_days));
    Ok((km, diag))
}

/// Streams the rows of `sql` — a `series` (text) and a finite `value` (float) per row —
/// sorted by series then value, into one [`SortedSummary`] per series (its bins from
/// `bins`), and calls `visit` with every row in that order. The values of each series
/// are counted first (a grouped count), which places the median. The sort runs in the
/// session's bounded memory pool and spills; this function holds one batch and the
/// accumulators.
async fn sorted_series(
    ctx: &SessionContext,
    sql: &str,
    params: Vec<ScalarValue>,
    bins: impl Fn(&str) -> Bins,
    mut visit: impl FnMut(&str, f64),
) -> Result<BTreeMap<String, DistStats>, StageError> {
    let df = lake::runs::dataframe(ctx, sql, params).await?;
    let mut accs: BTreeMap<String, SortedSummary> = series_counts(df.clone())
        .await?
        .into_iter()
        .map(|(s, n)| {
            let acc = SortedSummary::new(n, bins(&s));
            (s, acc)
        })
        .collect();
    let sorted = df.sort(vec![
        col("series").sort(true, false),
        col("value").sort(true, false),
    ])?;
    let mut stream = sorted.execute_stream().await?;
    while let Some(b) = stream.next().await {
        let b = b?;
        let c = Cols(&b);
        let (series, values) = (c.cast("series", &DataType::Utf8)?, c.f64s("value")?);
        let series = series.as_string::<i32>();
        for (r, v) in values.into_iter().enumerate() {
            let Some(v) = v.filter(|_| series.is_valid(r)) else {
                continue;
            };
            let s = series.value(r);
            match accs.get_mut(s) {
                Some(acc) => acc.push(v),
                None => return Err(changed_while_read(s)),
            }
            visit(s, v);
        }
    }
    accs.into_iter()
        .map(|(s, acc)| match acc.finish() {
            Some(d) => Ok((s, d)),
            None => Err(changed_while_read(&s)),
        })
        .collect()
}

fn changed_while_read(series: &str) -> StageError {
    StageError::InvalidInput(format!(
        "the cohort's {series} values changed while the reports read them \
         (a stage wrote the table meanwhile): run the reports again"
    ))
}

/// Rows per `series` of `df`.
async fn series_counts(df: DataFrame) -> Result<BTreeMap<String, usize>, StageError> {
    let mut out = BTreeMap::new();
    let counts = df.aggregate(vec![col("series")], vec![count(lit(1)).alias("n")])?;
    for b in counts.collect().await? {
        let c = Cols(&b);
        for (s, n) in c.strs("series")?.into_iter().zip(c.i64s("n")?) {
            if let (Some(s), Some(n)) = (s, n) {
                out.insert(s, usize::try_from(n).unwrap_or(0));
            }
        }
    }
    Ok(out)
}

/// [`DistStats`] of `n` values arriving in ascending order, in memory of its histogram:
/// the sum is taken in that order (as `Iterator::sum` over the sorted values: from −0.0,
/// left to right), the median is picked at its position.
#[derive(Debug)]
struct SortedSummary {
    n: usize,
    seen: usize,
    sum: f64,
    lower_middle: Option<f64>,
    upper_middle: Option<f64>,
    hist: Histogram,
}

impl SortedSummary {
    fn new(n: usize, bins: Bins) -> Self {
        SortedSummary {
            n,
            seen: 0,
            sum: -0.0,
            lower_middle: None,
            upper_middle: None,
            hist: Histogram::new(bins.lo, bins.hi, bins.width),
        }
    }

    /// The next value (not below the previous one).
    fn push(&mut self, v: f64) {
        let mid = self.n / 2;
        if self.seen + 1 == mid {
            self.lower_middle = Some(v);
        }
        if self.seen == mid {
            self.upper_middle = Some(v);
        }
        self.sum += v;
        self.hist.add(v);
        self.seen += 1;
    }

    /// The summary; `None` when the values seen are not the `n` announced.
    fn finish(self) -> Option<DistStats> {
        if self.seen != self.n {
            return None;
        }
        let n = self.n;
        let median = if n.is_multiple_of(2) {
            self.lower_middle
                .zip(self.upper_middle)
                .map(|(a, b)| (a + b) / 2.0)
        } else {
            self.upper_middle
        };
        Some(DistStats {
            n,
            mean: (n > 0).then(|| self.sum / n as f64),
            median,
            hist: self.hist.bins(),
        })
    }
}

/// Rank counts of some values (a shard's θs, by student) in a cohort whose values
/// arrive in ascending order: for each value x, the cohort values `< x` and `<= x`
/// (IEEE comparisons, as a binary search of the sorted cohort would count them), in
/// memory of the values counted for.
#[derive(Debug)]
struct RankCounter<'a> {
    /// The values counted for, ascending, with their student.
    targets: Vec<(f64, &'a str)>,
    below: Vec<usize>,
    upto: Vec<usize>,
    seen: usize,
}

impl<'a> RankCounter<'a> {
    /// Counts for every finite value of `targets`.
    fn new(targets: impl Iterator<Item = (f64, &'a str)>) -> Self {
        let mut targets: Vec<(f64, &str)> = targets.filter(|t| t.0.is_finite()).collect();
        targets.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        RankCounter {
            targets,
            below: Vec::new(),
            upto: Vec::new(),
            seen: 0,
        }
    }

    /// The next cohort value (not below the previous one). A target x gets its count
    /// below when the first value `>= x` arrives, its count up to x when the first
    /// value `> x` arrives: the values seen before.
    fn push(&mut self, v: f64) {
        while let Some(t) = self.targets.get(self.below.len())
            && t.0 <= v
        {
            self.below.push(self.seen);
        }
        while let Some(t) = self.targets.get(self.upto.len())
            && t.0 < v
        {
            self.upto.push(self.seen);
        }
        self.seen += 1;
    }

    /// `(below, up to)` by student; targets above every value count all of them.
    fn finish(mut self) -> HashMap<String, (usize, usize)> {
        self.below.resize(self.targets.len(), self.seen);
        self.upto.resize(self.targets.len(), self.seen);
        self.targets
            .iter()
            .zip(self.below.iter().zip(&self.upto))
            .map(|(t, (b, u))| (t.1.to_string(), (*b, *u)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with ties, both zeros, and a spread that makes summation order matter.
    fn values() -> Vec<f64> {
        let mut v: Vec<f64> = (0..997)
            .map(|i| {
                let x = f64::from(i);
                (x * 0.618_033_988_75).fract() * 7.0 - 3.5 + 1e-9 * x
            })
            .collect();
        v.extend([0.0, -0.0, 0.25, 0.25, 0.25, -3.9, 5.0, 1e-17]);
        v
    }

    #[test]
    fn sorted_summary_is_the_summary_of_the_sorted_values() {
        for len in [0usize, 1, 2, 3, 10, 1005] {
            let mut v = values();
            v.truncate(len);
            v.sort_by(f64::total_cmp);
            let got = DistStats::of_values(&v, THETA_BINS);
            // What the reports computed from every value in memory: bit for bit.
            assert_eq!(got.n, v.len());
            let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            assert_eq!(got.mean.map(f64::to_bits), mean.map(f64::to_bits), "{len}");
            let mid = v.len() / 2;
            let median = match v.len() {
                0 => None,
                n if n.is_multiple_of(2) => Some((v[mid - 1] + v[mid]) / 2.0),
                _ => Some(v[mid]),
            };
            assert_eq!(got.median.map(f64::to_bits), median.map(f64::to_bits));
            assert_eq!(
                got.hist,
                crate::charts::histogram(&v, THETA_BINS.lo, THETA_BINS.hi, THETA_BINS.width)
            );
        }
        // Fewer or more values than counted: not a summary.
        let mut short = SortedSummary::new(2, THETA_BINS);
        short.push(1.0);
        assert!(short.finish().is_none());
    }

    #[test]
    fn rank_counts_are_those_of_a_binary_search() {
        let mut cohort = values();
        cohort.sort_by(f64::total_cmp);
        let ids: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
        // Targets: cohort values (ties), values between and beyond, both zeros, NaN.
        let mut xs: Vec<f64> = cohort.iter().step_by(29).copied().collect();
        xs.extend([0.0, -0.0, 0.25, -10.0, 10.0, 0.1234, f64::NAN]);
        let targets: Vec<(f64, &str)> = xs
            .iter()
            .zip(&ids)
            .map(|(x, id)| (*x, id.as_str()))
            .collect();
        let mut ranks = RankCounter::new(targets.iter().copied());
        for v in &cohort {
            ranks.push(*v);
        }
        let got = ranks.finish();
        assert_eq!(got.len(), targets.len() - 1, "NaN has no rank");
        for (x, id) in targets.iter().filter(|t| t.0.is_finite()) {
            let below = cohort.partition_point(|v| v < x);
            let upto = cohort.partition_point(|v| v <= x);
            assert_eq!(got[*id], (below, upto), "{id}: {x}");
        }
    }
}
