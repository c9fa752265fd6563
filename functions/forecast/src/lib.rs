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

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, Date32Array, Float64Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use lake::Lake;
use lake::catalog::{ANOMALIES, FORECASTS};
use lake::columns::{Columns, TableBatch};
use lake::phases::Phases;
use lake::runs::{StageError, StageInput, day_param, day_str, week_start};
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
    let active = lake::runs::query(&ctx, ACTIVE_SQL, params).await?;
    let theta = lake::runs::query(&ctx, THETA_SQL, window()).await?;
    let series = build_series(&active, &theta, epoch_day(rc.run_date))?;
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

/// What one subject-day collects, in query order.
#[derive(Debug, Default)]
struct DayValues {
    /// Active students.
    active: usize,
    /// I_t of the active students that have one.
    i_t: Vec<f64>,
    /// θ (mean over the subject's topics) of the active students that have one.
    thetas: Vec<f64>,
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

/// The series by name (sorted) from the active rows (`subject_id, dt, student_id, i_t`)
/// and the θ rows (`subject_id, dt, student_id, topic_id, theta_mean`), both in query
/// order: every mean adds its terms in that order, so a re-run gives the same bits.
fn build_series(
    active: &[RecordBatch],
    theta: &[RecordBatch],
    run_day: i64,
) -> Result<BTreeMap<String, Series>, StageError> {
    let mut days: BTreeMap<(String, i64), DayValues> = BTreeMap::new();
    let mut is_active: HashSet<(String, i64, String)> = HashSet::new();
    for b in active {
        let c = Columns::of(b);
        let (subj, dt) = (c.strings("subject_id")?, c.days("dt")?);
        let (st, it) = (c.strings("student_id")?, c.f64s("i_t")?);
        for r in 0..b.num_rows() {
            let day = epoch_day_of(dt, r)?;
            let e = days.entry((subj.value(r).to_string(), day)).or_default();
            e.active += 1;
            if !it.is_null(r) && it.value(r).is_finite() {
                e.i_t.push(it.value(r));
            }
            is_active.insert((subj.value(r).to_string(), day, st.value(r).to_string()));
        }
    }
    // θ rows grouped by (subject, day, student) in order: the student's mean over topics
    let mut current: Option<(String, i64, String)> = None;
    let mut topic_thetas: Vec<f64> = Vec::new();
    let mut flush = |key: &(String, i64, String), thetas: &mut Vec<f64>| {
        if !thetas.is_empty()
            && is_active.contains(key)
            && let Some(e) = days.get_mut(&(key.0.clone(), key.1))
        {
            e.thetas.push(mean(thetas));
        }
        thetas.clear();
    };
    for b in theta {
        let c = Columns::of(b);
        let (subj, dt) = (c.strings("subject_id")?, c.days("dt")?);
        let (st, th) = (c.strings("student_id")?, c.f64s("theta_mean")?);
        for r in 0..b.num_rows() {
            let key = (
                subj.value(r).to_string(),
                epoch_day_of(dt, r)?,
                st.value(r).to_string(),
            );
            if current.as_ref() != Some(&key) {
                if let Some(k) = &current {
                    flush(k, &mut topic_thetas);
                }
                current = Some(key);
            }
            if th.value(r).is_finite() {
                topic_thetas.push(th.value(r));
            }
        }
    }
    if let Some(k) = &current {
        flush(k, &mut topic_thetas);
    }

    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    let mut first_day: BTreeMap<String, i64> = BTreeMap::new();
    for ((subject, day), v) in &days {
        first_day.entry(subject.clone()).or_insert(*day);
        if !v.thetas.is_empty() {
            out.entry(format!("{subject}:mean_theta"))
                .or_default()
                .push(*day, mean(&v.thetas));
        }
        if !v.i_t.is_empty() {
            out.entry(format!("{subject}:mean_i_t"))
                .or_default()
                .push(*day, mean(&v.i_t));
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
}
