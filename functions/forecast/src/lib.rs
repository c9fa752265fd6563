//! Stage **forecast** → `forecasts`, `anomalies` (partition `run_date`).
//!
//! # Series
//!
//! Daily cohort series per subject over the look-back window (`lookback_days`, default
//! 60) ending on the run date, from `sql/forecast/active.sql` (active students with
//! their weekly I_t) and `sql/forecast/theta.sql` (daily topic θ). A student is
//! *active* on a day in a subject when they made at least one attempt in it (the
//! attempt's subject, else its question's). The SQL only selects and orders; the means
//! are taken here, in query order, because DataFusion's floating-point aggregates merge
//! parallel partial sums in arrival order and would change the last bits from run to
//! run.
//!
//! - `<subject>:active_students` — distinct active students. Days without any attempt
//!   in the subject are real zeros, so the series runs over every day from the
//!   subject's first active day in the window to the run date, missing days as 0.
//! - `<subject>:mean_theta` — mean θ of the active students that have one: a student's
//!   θ that day is the mean `features_topic_daily.theta_mean` over their topics of the
//!   subject that day (topics mapped to subjects through `questions`). Days without any
//!   θ are missing (absent), not 0 — so the series needs features backfilled over the
//!   window (`features` with `from`), else it is too short and skipped.
//! - `<subject>:mean_i_t` — mean `weekly_kpi.i_t` of the active students, each with
//!   their value of the week (Monday, UTC) holding the day; students without an I_t
//!   that week (e.g. no previous week) do not count; days without any are missing.
//!
//! # Model
//!
//! [`models::forecast::forecast_series`] with its Prophet defaults (piecewise-linear
//! trend with changepoints + weekly seasonality, exact MAP, forecast from a refit
//! without the in-sample anomalies), day numbers since 1970-01-01 (Prophet's weekly
//! phase). The forecast covers the [`HORIZON`] days after the run date (if a series'
//! last point is before the run date, the model forecasts from that point and the days
//! up to the run date are dropped), with 80% intervals from 1000 simulated paths.
//! The simulation is seeded per series by a fixed hash of the series name (FNV-1a), so
//! a re-run with the same input writes the same bytes (timestamps are `run_ts`).
//!
//! Anomalies: in-sample points strictly outside the 99% interval of the fit to every
//! point, with `value` (y), `expected` (ŷ) and `score` = |y − ŷ| / half-width (> 1).
//!
//! # Degenerate series
//!
//! A series with fewer than [`models::forecast::MIN_POINTS`] (14) points or with a
//! single value throughout (constant) is skipped and listed under `skipped` in the
//! summary with its reason; a model error on one series skips that series too (never a
//! panic, never the whole run). When no series is kept the status is
//! `insufficient_history` (or `no_activity` without attempts in the window) and nothing
//! is written. Otherwise both partitions are written whole — `anomalies` also when it
//! has no rows — so a re-run replaces them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, Date32Array, Float64Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use lake::catalog::{ANOMALIES, FORECASTS};
use lake::columns::{Columns, TableBatch};
use lake::phases::Phases;
use lake::runs::{StageError, StageInput, day_param, day_str, week_start};
use lake::stream::query_stream;
use lake::{Lake, LakeError};
use models::forecast::{ForecastConfig, MIN_POINTS, forecast_series};
use serde::Serialize;

const ACTIVE_SQL: &str = include_str!("../../../sql/forecast/active.sql");
const THETA_SQL: &str = include_str!("../../../sql/forecast/theta.sql");

/// Days forecast after the run date.
pub const HORIZON: usize = 28;

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct ForecastOutput {
    /// `forecast`, `insufficient_history` (no series long and varied enough) or
    /// `no_activity` (no attempts in the window).
    pub status: String,
    /// Run id.
    pub run_id: String,
    /// Run date (the last history day).
    pub run_date: String,
    /// First day of the look-back window.
    pub window_from: String,
    /// Series forecast, by name.
    pub series: Vec<SeriesSummary>,
    /// Series left out, by name, with the reason.
    pub skipped: Vec<SkippedSeries>,
    /// Rows written to `forecasts`.
    pub forecast_rows: usize,
    /// Rows written to `anomalies`.
    pub anomaly_rows: usize,
    /// One line for a person.
    pub message: String,
    /// Wall time of the stage's phases (ms): read (the activity and θ queries, the daily
    /// series), fit (every series' model and forecast), write.
    pub phases_ms: Phases,
}

/// A forecast series.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesSummary {
    /// `<subject>:<metric>`.
    pub series: String,
    /// History points.
    pub points: usize,
    /// First history day.
    pub first_day: String,
    /// In-sample anomalies.
    pub anomalies: usize,
    /// Noise SD of the fit to every point (caller's units).
    pub sigma: f64,
    /// Whether the forecast comes from a refit without the anomalies.
    pub refit: bool,
    /// Whether the MAP alternation converged.
    pub converged: bool,
}

/// A series left out.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedSeries {
    /// `<subject>:<metric>`.
    pub series: String,
    /// History points it had.
    pub points: usize,
    /// Why: `too_few_points (n < 14)`, `constant (value v)` or the model's error.
    pub reason: String,
}

/// One daily series: days since 1970-01-01, ascending, and values.
#[derive(Debug, Clone, Default)]
struct Series {
    days: Vec<i64>,
    values: Vec<f64>,
}

impl Series {
    fn push(&mut self, day: i64, value: f64) {
        self.days.push(day);
        self.values.push(value);
    }
}

/// FNV-1a of the series name: a seed that is stable across builds and platforms.
fn series_seed(name: &str) -> u64 {
    lake::shard::fnv1a64(name.as_bytes())
}

fn epoch_day(d: NaiveDate) -> i64 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days()
}

fn day_of(epoch: i64) -> String {
    day_str(NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(epoch))
}

/// Rows to write for one kept series.
struct Kept {
    name: String,
    forecast: Vec<(i64, f64, f64, f64)>,
    anomalies: Vec<(i64, f64, f64, f64)>,
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<ForecastOutput, StageError> {
    let mut phases = Phases::start();
    let rc = input.context("forecast")?;
    let ctx = lake.session()?;
    let from = rc.window_start(rc.run_date);
    let mut out = ForecastOutput {
        status: "forecast".into(),
        run_id: rc.run_id.clone(),
        run_date: day_str(rc.run_date),
        window_from: day_str(from),
        series: Vec::new(),
        skipped: Vec::new(),
        forecast_rows: 0,
        anomaly_rows: 0,
        message: String::new(),
        phases_ms: Phases::start(),
    };
    let window = || vec![day_param(from), day_param(rc.run_date)];
    let mut params = window();
    params.push(day_param(week_start(from)));
    let active = SortedRows::new(query_stream(&ctx, ACTIVE_SQL, params).await?);
    let theta = SortedRows::new(query_stream(&ctx, THETA_SQL, window()).await?);
    let series = build_series(active, theta, epoch_day(rc.run_date)).await?;
    phases.mark("read");
    if series.is_empty() {
        out.status = "no_activity".into();
        out.message = format!(
            "no attempts between {} and {}: nothing written",
            out.window_from, out.run_date
        );
        tracing::warn!("{}", out.message);
        return Ok(out);
    }

    let run_day = epoch_day(rc.run_date);
    let mut kept: Vec<Kept> = Vec::new();
    let fits: Vec<_> = lake::runs::cpu_bound(|| {
        series
            .iter()
            .map(|(name, s)| fit_one(name, s, run_day))
            .collect()
    });
    for fit in fits {
        match fit {
            Ok((summary, k)) => {
                out.series.push(summary);
                kept.push(k);
            }
            Err(skipped) => out.skipped.push(skipped),
        }
    }
    phases.mark("fit");
    if kept.is_empty() {
        out.status = "insufficient_history".into();
        out.message = format!(
            "no series between {} and {} has {MIN_POINTS}+ points and more than one value ({} skipped): nothing written",
            out.window_from,
            out.run_date,
            out.skipped.len()
        );
        tracing::warn!("{}", out.message);
        return Ok(out);
    }

    let run_date = day_str(rc.run_date);
    let fc_batch = rows_batch(
        FORECASTS,
        &rc.run_id,
        rc.run_ts,
        kept.iter()
            .flat_map(|k| k.forecast.iter().map(move |r| (k.name.as_str(), *r))),
    )?;
    let an_batch = rows_batch(
        ANOMALIES,
        &rc.run_id,
        rc.run_ts,
        kept.iter()
            .flat_map(|k| k.anomalies.iter().map(move |r| (k.name.as_str(), *r))),
    )?;
    out.forecast_rows = fc_batch.num_rows();
    out.anomaly_rows = an_batch.num_rows();
    lake.write_partition(FORECASTS, &[("run_date", &run_date)], &[fc_batch])
        .await?;
    lake.write_partition(ANOMALIES, &[("run_date", &run_date)], &[an_batch])
        .await?;
    phases.mark("write");
    out.message = format!(
        "{} series forecast {HORIZON} days after {run_date} ({} rows), {} anomalies, {} series skipped",
        out.series.len(),
        out.forecast_rows,
        out.anomaly_rows,
        out.skipped.len()
    );
    tracing::info!(%phases, "{}", out.message);
    out.phases_ms = phases;
    Ok(out)
}

/// Fits one series and keeps its forecast after `run_day` and its anomalies, or says
/// why it is skipped: fewer than [`MIN_POINTS`] points, a constant series, or a model
/// error.
fn fit_one(name: &str, s: &Series, run_day: i64) -> Result<(SeriesSummary, Kept), SkippedSeries> {
    let n = s.days.len();
    let skip = |reason: String| SkippedSeries {
        series: name.to_string(),
        points: n,
        reason,
    };
    if n < MIN_POINTS {
        return Err(skip(format!("too_few_points ({n} < {MIN_POINTS})")));
    }
    if s.values.iter().all(|&v| v == s.values[0]) {
        return Err(skip(format!("constant (value {})", s.values[0])));
    }
    let last = *s.days.last().expect("non-empty");
    let lead = usize::try_from(run_day - last).unwrap_or(0);
    let config = ForecastConfig {
        horizon: lead + HORIZON,
        seed: series_seed(name),
        ..ForecastConfig::default()
    };
    let fc =
        forecast_series(&s.days, &s.values, &config).map_err(|e| skip(format!("model: {e}")))?;
    let anomalies: Vec<(i64, f64, f64, f64)> = fc
        .anomalies()
        .map(|p| (p.day, p.y, p.yhat, p.score))
        .collect();
    let summary = SeriesSummary {
        series: name.to_string(),
        points: n,
        first_day: day_of(s.days[0]),
        anomalies: anomalies.len(),
        sigma: fc.fit.sigma(),
        refit: fc.refit.is_some(),
        converged: fc.forecast_model().converged,
    };
    let kept = Kept {
        name: name.to_string(),
        forecast: fc
            .forecast
            .iter()
            .filter(|p| p.day > run_day)
            .map(|p| (p.day, p.yhat, p.lower, p.upper))
            .collect(),
        anomalies,
    };
    Ok((summary, kept))
}

/// A mean whose terms are added in the order they come: the bits of
/// `v.iter().sum::<f64>() / v.len()` over the same terms (`Sum` for `f64` folds from
/// −0.0), without holding them.
#[derive(Debug, Clone, Copy)]
struct Mean {
    sum: f64,
    n: usize,
}

impl Default for Mean {
    fn default() -> Self {
        Self { sum: -0.0, n: 0 }
    }
}

impl Mean {
    fn add(&mut self, x: f64) {
        self.sum += x;
        self.n += 1;
    }

    /// The mean, `None` without terms.
    fn get(self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// What one subject-day collects, in query order.
#[derive(Debug, Default)]
struct DayValues {
    /// Active students.
    active: usize,
    /// I_t of the active students that have one.
    i_t: Mean,
    /// θ (mean over the subject's topics) of the active students that have one.
    thetas: Mean,
}

/// Row `r` of a `dt` column (days since 1970-01-01, `Date32`) as an epoch day.
fn epoch_day_of(dt: &arrow::array::Date32Array, r: usize) -> Result<i64, StageError> {
    if dt.is_null(r) {
        return Err(StageError::InvalidInput("a row without dt".into()));
    }
    Ok(i64::from(dt.value(r)))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// A (subject, day, student) key of the two queries' rows.
type RowKey = (String, i64, String);

/// The rows of a query sorted by `subject_id, dt, student_id`, one at a time, read
/// batch by batch: the series are built from the two queries side by side (a merge on
/// that key), so neither result is held whole.
struct SortedRows {
    stream: SendableRecordBatchStream,
    batch: Option<RecordBatch>,
    row: usize,
    /// The current row's key, computed once per row by [`SortedRows::peek`].
    key: Option<RowKey>,
    /// The key of the last row passed, to check the order the merge relies on.
    last: Option<RowKey>,
}

impl SortedRows {
    fn new(stream: SendableRecordBatchStream) -> Self {
        Self {
            stream,
            batch: None,
            row: 0,
            key: None,
            last: None,
        }
    }

    /// The current row's key, reading the next batch when needed; `None` after the
    /// last row. Errors if the rows are not in key order (the merge would then pair the
    /// wrong rows).
    async fn peek(&mut self) -> Result<Option<&RowKey>, StageError> {
        if self.key.is_none() {
            while self.batch.as_ref().is_none_or(|b| self.row >= b.num_rows()) {
                match self.stream.next().await {
                    Some(b) => {
                        self.batch = Some(b.map_err(LakeError::from)?);
                        self.row = 0;
                    }
                    None => return Ok(None),
                }
            }
            let Some(b) = &self.batch else {
                return Ok(None);
            };
            let key = row_key(b, self.row)?;
            if self.last.as_ref().is_some_and(|last| *last > key) {
                return Err(StageError::InvalidInput(format!(
                    "forecast queries: rows not sorted by subject, day, student at {key:?}"
                )));
            }
            self.key = Some(key);
        }
        Ok(self.key.as_ref())
    }

    /// The current row's batch, index and key (after [`SortedRows::peek`] found one).
    fn row(&self) -> Result<(&RecordBatch, usize, &RowKey), StageError> {
        match (&self.batch, &self.key) {
            (Some(b), Some(key)) => Ok((b, self.row, key)),
            _ => Err(StageError::InvalidInput(
                "forecast queries: no current row".into(),
            )),
        }
    }

    /// Moves past the current row.
    fn advance(&mut self) {
        if let Some(key) = self.key.take() {
            self.last = Some(key);
            self.row += 1;
        }
    }
}

/// The (subject_id, dt, student_id) of row `r`.
fn row_key(b: &RecordBatch, r: usize) -> Result<RowKey, StageError> {
    let c = Columns::of(b);
    Ok((
        c.strings("subject_id")?.value(r).to_string(),
        epoch_day_of(c.days("dt")?, r)?,
        c.strings("student_id")?.value(r).to_string(),
    ))
}

/// Counts the current active row (`subject_id, dt, student_id, i_t`) into its
/// subject-day and moves past it.
fn take_active(
    days: &mut BTreeMap<(String, i64), DayValues>,
    active: &mut SortedRows,
) -> Result<(), StageError> {
    let (b, r, (subject, day, _)) = active.row()?;
    let it = Columns::of(b).f64s("i_t")?;
    let e = days.entry((subject.clone(), *day)).or_default();
    e.active += 1;
    if !it.is_null(r) && it.value(r).is_finite() {
        e.i_t.add(it.value(r));
    }
    active.advance();
    Ok(())
}

/// The series by name (sorted) from the active rows (`subject_id, dt, student_id, i_t`,
/// one per key) and the θ rows (`subject_id, dt, student_id, topic_id, theta_mean`),
/// both sorted by (subject, day, student) and read side by side: a student's θ counts
/// on a day when the student is active that day in the subject. Every mean adds its
/// terms in query order, so a re-run gives the same bits. Memory: one entry per
/// subject-day and one batch of each query.
async fn build_series(
    mut active: SortedRows,
    mut theta: SortedRows,
    run_day: i64,
) -> Result<BTreeMap<String, Series>, StageError> {
    let mut days: BTreeMap<(String, i64), DayValues> = BTreeMap::new();
    let mut topic_thetas: Vec<f64> = Vec::new();
    while let Some(key) = theta.peek().await?.cloned() {
        // θ rows of one (subject, day, student): the student's mean over topics
        topic_thetas.clear();
        while theta.peek().await? == Some(&key) {
            let (b, r, _) = theta.row()?;
            let th = Columns::of(b).f64s("theta_mean")?.value(r);
            if th.is_finite() {
                topic_thetas.push(th);
            }
            theta.advance();
        }
        // the active rows up to this key
        let mut is_active = false;
        while let Some(here) = active.peek().await? {
            match here.cmp(&key) {
                std::cmp::Ordering::Less => take_active(&mut days, &mut active)?,
                std::cmp::Ordering::Equal => {
                    is_active = true;
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        if is_active && !topic_thetas.is_empty() {
            days.entry((key.0, key.1))
                .or_default()
                .thetas
                .add(mean(&topic_thetas));
        }
    }
    while active.peek().await?.is_some() {
        take_active(&mut days, &mut active)?;
    }

    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    let mut first_day: BTreeMap<String, i64> = BTreeMap::new();
    for ((subject, day), v) in &days {
        first_day.entry(subject.clone()).or_insert(*day);
        if let Some(m) = v.thetas.get() {
            out.entry(format!("{subject}:mean_theta"))
                .or_default()
                .push(*day, m);
        }
        if let Some(m) = v.i_t.get() {
            out.entry(format!("{subject}:mean_i_t"))
                .or_default()
                .push(*day, m);
        }
    }
    // active students: every day from the subject's first active day, zeros filled
    for (subject, first) in first_day {
        let s = out.entry(format!("{subject}:active_students")).or_default();
        for day in first..=run_day {
            let n = days.get(&(subject.clone(), day)).map_or(0, |e| e.active);
            s.push(day, n as f64);
        }
    }
    Ok(out)
}

/// One batch of `forecasts` or `anomalies` rows `(series, (day, a, b, c))`: the three
/// values are `yhat, yhat_lower, yhat_upper` (`table` = [`FORECASTS`]) or `value,
/// expected, score` ([`ANOMALIES`]).
fn rows_batch<'a>(
    table: &str,
    run_id: &str,
    run_ts: i64,
    rows: impl Iterator<Item = (&'a str, (i64, f64, f64, f64))>,
) -> Result<RecordBatch, StageError> {
    let [va, vb, vc] = match table {
        FORECASTS => ["yhat", "yhat_lower", "yhat_upper"],
        _ => ["value", "expected", "score"],
    };
    let (mut names, mut days, mut a, mut b, mut c) = (vec![], vec![], vec![], vec![], vec![]);
    for (name, (d, x, y, z)) in rows {
        names.push(name);
        days.push(
            i32::try_from(d)
                .map_err(|_| StageError::InvalidInput(format!("day {d} out of range")))?,
        );
        a.push(x);
        b.push(y);
        c.push(z);
    }
    Ok(TableBatch::new(table, names.len())?
        .text("run_id", run_id)?
        .set("series", Arc::new(StringArray::from(names)))?
        .set("ds", Arc::new(Date32Array::from(days)))?
        .set(va, Arc::new(Float64Array::from(a)))?
        .set(vb, Arc::new(Float64Array::from(b)))?
        .set(vc, Arc::new(Float64Array::from(c)))?
        .timestamp("generated_at", run_ts)?
        .finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_stable_and_days_round_trip() {
        assert_eq!(series_seed(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(series_seed("math:mean_theta"), series_seed("math:mean_i_t"));
        let d: NaiveDate = "2026-02-15".parse().unwrap();
        assert_eq!(day_of(epoch_day(d)), "2026-02-15");
        assert_eq!(epoch_day("1970-01-02".parse().unwrap()), 1);
    }

    /// Rows of one query as a stream, in the order given, split into batches of two
    /// rows (the merge must carry its place across batches).
    fn rows(columns: Vec<(&str, Arc<dyn Array>)>) -> SortedRows {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let parts: Vec<RecordBatch> = (0..batch.num_rows())
            .step_by(2)
            .map(|i| batch.slice(i, 2.min(batch.num_rows() - i)))
            .collect();
        let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            batch.schema(),
            futures::stream::iter(parts.into_iter().map(Ok)),
        );
        SortedRows::new(Box::pin(stream))
    }

    fn strs(v: &[&str]) -> Arc<dyn Array> {
        Arc::new(StringArray::from(v.to_vec()))
    }

    fn active(
        subjects: &[&str],
        days: Vec<i32>,
        students: &[&str],
        i_t: Vec<Option<f64>>,
    ) -> SortedRows {
        rows(vec![
            ("subject_id", strs(subjects)),
            ("dt", Arc::new(Date32Array::from(days))),
            ("student_id", strs(students)),
            ("i_t", Arc::new(Float64Array::from(i_t))),
        ])
    }

    fn theta(subjects: &[&str], days: Vec<i32>, students: &[&str], thetas: Vec<f64>) -> SortedRows {
        let topics: Vec<&str> = (0..thetas.len()).map(|_| "t").collect();
        rows(vec![
            ("subject_id", strs(subjects)),
            ("dt", Arc::new(Date32Array::from(days))),
            ("student_id", strs(students)),
            ("topic_id", strs(&topics)),
            ("theta_mean", Arc::new(Float64Array::from(thetas))),
        ])
    }

    /// Truth by hand: active counts and mean I_t per subject-day; a student's θ is the
    /// mean over its topics and counts only on a day it is active in the subject.
    #[tokio::test]
    async fn series_merge_the_active_rows_and_the_thetas() {
        let a = active(
            &["m", "m", "m", "m", "s"],
            vec![10, 10, 10, 11, 10],
            &["u1", "u2", "u4", "u1", "u3"],
            vec![Some(1.0), None, Some(2.0), Some(4.0), Some(8.0)],
        );
        // u1 on day 10: two topics (mean 0.5); u3 is not active in "m" on day 10 (only
        // in "s"); u2 on day 11 is not active; u4 has no θ
        let t = theta(
            &["m", "m", "m", "m", "m", "s"],
            vec![10, 10, 10, 11, 11, 10],
            &["u1", "u1", "u3", "u1", "u2", "u3"],
            vec![0.0, 1.0, 5.0, 3.0, 7.0, 6.0],
        );
        let got = build_series(a, t, 12).await.unwrap();
        let view: Vec<(&str, Vec<i64>, Vec<f64>)> = got
            .iter()
            .map(|(k, s)| (k.as_str(), s.days.clone(), s.values.clone()))
            .collect();
        assert_eq!(
            view,
            [
                ("m:active_students", vec![10, 11, 12], vec![3.0, 1.0, 0.0]),
                ("m:mean_i_t", vec![10, 11], vec![1.5, 4.0]),
                ("m:mean_theta", vec![10, 11], vec![0.5, 3.0]),
                ("s:active_students", vec![10, 11, 12], vec![1.0, 0.0, 0.0]),
                ("s:mean_i_t", vec![10], vec![8.0]),
                ("s:mean_theta", vec![10], vec![6.0]),
            ]
        );
    }

    #[tokio::test]
    async fn rows_out_of_order_are_an_error() {
        let a = active(&["m", "m"], vec![11, 10], &["u1", "u1"], vec![None, None]);
        let t = theta(&[], vec![], &[], vec![]);
        let err = build_series(a, t, 12).await.unwrap_err();
        assert!(err.to_string().contains("not sorted"), "{err}");
    }

    /// `Mean` gives the bits of the slice mean it replaces.
    #[test]
    fn running_means_equal_slice_means() {
        let v = [0.1, 0.7, -3.3, 1e-17, 2.2, -0.0];
        for n in 1..=v.len() {
            let mut m = Mean::default();
            v[..n].iter().for_each(|&x| m.add(x));
            assert_eq!(m.get().unwrap().to_bits(), mean(&v[..n]).to_bits());
        }
        let mut z = Mean::default();
        z.add(-0.0);
        assert_eq!(z.get().unwrap().to_bits(), mean(&[-0.0]).to_bits());
        assert_eq!(Mean::default().get(), None);
    }
}
