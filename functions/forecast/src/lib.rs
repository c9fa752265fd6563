//! Stage **forecast** → `forecasts`, `anomalies` (partition `run_date`).
//!
//! # Series
//!
//! Daily cohort series per subject over the look-back window (`lookback_days`, default
//! 60) ending on the run date, from `sql/forecast/daily_series.sql`. A student is
//! *active* on a day in a subject when they made at least one attempt in it (the
//! attempt's subject, else its question's).
//!
//! - `<subject>:active_students` — distinct active students. Days without any attempt
//!   in the subject are real zeros, so the series runs over every day from the
//!   subject's first active day in the window to the run date, missing days as 0.
//! - `<subject>:mean_theta` — mean θ of the active students that have one: a student's
//!   θ that day is the mean `features_topic_daily.theta_mean` over their topics of the
//!   subject (topics mapped to subjects through `questions`). Days without any θ are
//!   missing (absent), not 0.
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

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{Float64Type, Int64Type};
use chrono::NaiveDate;
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, ANOMALIES, FORECASTS};
use lake::runs::{StageError, StageInput, day_str, week_start};
use models::forecast::{ForecastConfig, MIN_POINTS, forecast_series};
use serde::Serialize;

const DAILY_SERIES_SQL: &str = include_str!("../../../sql/forecast/daily_series.sql");

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
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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
    };
    let batches = ctx
        .sql(DAILY_SERIES_SQL)
        .await?
        .with_param_values(vec![
            ScalarValue::Utf8(Some(day_str(from))),
            ScalarValue::Utf8(Some(day_str(rc.run_date))),
            ScalarValue::Utf8(Some(day_str(week_start(from)))),
        ])?
        .collect()
        .await?;
    let series = build_series(&batches, epoch_day(rc.run_date))?;
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
    for (name, s) in &series {
        let n = s.days.len();
        let skip = |reason: String| SkippedSeries {
            series: name.clone(),
            points: n,
            reason,
        };
        if n < MIN_POINTS {
            out.skipped
                .push(skip(format!("too_few_points ({n} < {MIN_POINTS})")));
            continue;
        }
        if s.values.iter().all(|&v| v == s.values[0]) {
            out.skipped
                .push(skip(format!("constant (value {})", s.values[0])));
            continue;
        }
        let last = *s.days.last().expect("non-empty");
        let lead = usize::try_from(run_day - last).unwrap_or(0);
        let config = ForecastConfig {
            horizon: lead + HORIZON,
            seed: series_seed(name),
            ..ForecastConfig::default()
        };
        let fc = match forecast_series(&s.days, &s.values, &config) {
            Ok(fc) => fc,
            Err(e) => {
                out.skipped.push(skip(format!("model: {e}")));
                continue;
            }
        };
        let anomalies: Vec<(i64, f64, f64, f64)> = fc
            .anomalies()
            .map(|p| (p.day, p.y, p.yhat, p.score))
            .collect();
        out.series.push(SeriesSummary {
            series: name.clone(),
            points: n,
            first_day: day_of(s.days[0]),
            anomalies: anomalies.len(),
            sigma: fc.fit.sigma(),
            refit: fc.refit.is_some(),
            converged: fc.forecast_model().converged,
        });
        kept.push(Kept {
            name: name.clone(),
            forecast: fc
                .forecast
                .iter()
                .filter(|p| p.day > run_day)
                .map(|p| (p.day, p.yhat, p.lower, p.upper))
                .collect(),
            anomalies,
        });
    }
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
    out.message = format!(
        "{} series forecast {HORIZON} days after {run_date} ({} rows), {} anomalies, {} series skipped",
        out.series.len(),
        out.forecast_rows,
        out.anomaly_rows,
        out.skipped.len()
    );
    tracing::info!("{}", out.message);
    Ok(out)
}

/// The series by name (sorted) from the per subject-day rows of the query
/// (`subject_id, dt, active_students, mean_theta, n_theta, mean_i_t, n_i_t`).
fn build_series(
    batches: &[RecordBatch],
    run_day: i64,
) -> Result<BTreeMap<String, Series>, StageError> {
    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    // active students: (first day, counts by day) per subject, zeros filled afterwards
    let mut active: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for b in batches {
        let subj = b.column(0).as_string::<i32>();
        let dt = b.column(1).as_string::<i32>();
        let n_active = b.column(2).as_primitive::<Int64Type>();
        let theta = b.column(3).as_primitive::<Float64Type>();
        let it = b.column(5).as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let day: NaiveDate = dt.value(r).parse().map_err(|e| {
                StageError::InvalidInput(format!(
                    "attempts partition dt={:?} is not a date: {e}",
                    dt.value(r)
                ))
            })?;
            let day = epoch_day(day);
            let subject = subj.value(r);
            active
                .entry(subject.to_string())
                .or_default()
                .insert(day, n_active.value(r) as f64);
            for (metric, col) in [("mean_theta", theta), ("mean_i_t", it)] {
                if !col.is_null(r) && col.value(r).is_finite() {
                    out.entry(format!("{subject}:{metric}"))
                        .or_default()
                        .push(day, col.value(r));
                }
            }
        }
    }
    for (subject, by_day) in active {
        let first = *by_day.keys().next().expect("non-empty");
        let s = out.entry(format!("{subject}:active_students")).or_default();
        for day in first..=run_day {
            s.push(day, by_day.get(&day).copied().unwrap_or(0.0));
        }
    }
    for s in out.values_mut() {
        // the query orders by subject and day; keep the model's input ascending anyway
        let mut idx: Vec<usize> = (0..s.days.len()).collect();
        idx.sort_by_key(|&i| s.days[i]);
        *s = Series {
            days: idx.iter().map(|&i| s.days[i]).collect(),
            values: idx.iter().map(|&i| s.values[i]).collect(),
        };
    }
    Ok(out)
}

/// One batch of `forecasts` or `anomalies` rows `(series, (day, a, b, c))`: the three
/// values are `yhat, yhat_lower, yhat_upper` or `value, expected, score`.
fn rows_batch<'a>(
    table: &str,
    run_id: &str,
    run_ts: i64,
    rows: impl Iterator<Item = (&'a str, (i64, f64, f64, f64))>,
) -> Result<RecordBatch, StageError> {
    let def = catalog::table(table)?;
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
    let n = names.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(StringArray::from(names)),
        Arc::new(Date32Array::from(days)),
        Arc::new(Float64Array::from(a)),
        Arc::new(Float64Array::from(b)),
        Arc::new(Float64Array::from(c)),
        Arc::new(TimestampMicrosecondArray::from(vec![run_ts; n]).with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(def.file_schema.clone(), cols)?)
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
