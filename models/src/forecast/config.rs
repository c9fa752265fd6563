//! The forecaster's public constants, errors and settings ([`ForecastConfig`], with
//! Prophet's defaults) and the range checks shared by the fit and the forecasts.

use serde::{Deserialize, Serialize};

/// Fewest points a series needs: two weeks of days (Prophet fits weekly seasonality
/// only with at least two weeks of history).
pub const MIN_POINTS: usize = 14;

/// Period of the seasonality, in days.
pub const WEEK: f64 = 7.0;

/// Lower bound on the noise SD σ in scaled units (fractions of `max |y|`): a series
/// fitted to 1 ppm is treated as fitted to 1 ppm, not exactly.
pub const SIGMA_FLOOR: f64 = 1e-6;

/// Errors of the forecaster.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ForecastError {
    /// `days` and `values` differ in length.
    #[error("days and values differ in length ({days} vs {values})")]
    LengthMismatch {
        /// Length of `days`.
        days: usize,
        /// Length of `values`.
        values: usize,
    },
    /// Too few points to fit trend and weekly seasonality.
    #[error("a forecast needs at least {min} daily points, got {got}")]
    TooFewPoints {
        /// Points given.
        got: usize,
        /// Points needed ([`MIN_POINTS`]).
        min: usize,
    },
    /// A value is NaN or infinite (omit a missing day instead).
    #[error("value for day {day} is not finite ({value})")]
    NonFinite {
        /// Day of the value.
        day: i64,
        /// The value.
        value: f64,
    },
    /// The same day appears twice: a daily series has one value per day.
    #[error("day {0} appears more than once")]
    DuplicateDay(i64),
    /// A configuration value is out of range; the message names it.
    #[error("invalid forecast configuration: {0}")]
    InvalidConfig(String),
}

/// Result alias of the forecaster.
pub type Result<T, E = ForecastError> = std::result::Result<T, E>;

/// Settings of the fit, the forecast and the anomaly rule. Defaults are Prophet's
/// (25 changepoints in the first 80%, τ = 0.05, weekly order 3 with prior SD 10, 80%
/// intervals from 1000 paths) plus the design's 28-day horizon and 99% anomaly interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForecastConfig {
    /// Potential changepoints (Prophet's `n_changepoints`, 25); fewer on short series.
    pub n_changepoints: usize,
    /// Share of the history, from its start, that holds the potential changepoints
    /// (`changepoint_range`, 0.8), in (0, 1].
    pub changepoint_range: f64,
    /// Scale τ of the Laplace prior on rate changes, in scaled units
    /// (`changepoint_prior_scale`, 0.05); larger means a more flexible trend.
    pub changepoint_prior_scale: f64,
    /// Fourier order of the weekly seasonality (3); 0 turns it off.
    pub weekly_order: usize,
    /// SD of the normal prior on the Fourier coefficients, in scaled units
    /// (`seasonality_prior_scale`, 10).
    pub seasonality_prior_scale: f64,
    /// Days to forecast after the last day of the history (28).
    pub horizon: usize,
    /// Coverage of the forecast intervals, in (0, 1) (Prophet's `interval_width`, 0.8).
    pub interval_width: f64,
    /// Coverage of the in-sample interval outside which a point is an anomaly (0.99).
    pub anomaly_width: f64,
    /// Simulated paths behind the forecast intervals (`uncertainty_samples`, 1000).
    pub uncertainty_samples: usize,
    /// Seed of the interval simulation.
    pub seed: u64,
    /// Forecast from a refit without the in-sample anomalies (true), as Prophet's
    /// documentation recommends for outliers ("remove them — Prophet has no problem
    /// with missing data"); false forecasts from the fit to every point, as a bare
    /// `Prophet().fit()` would. See [`forecast_series`](super::forecast_series).
    pub refit_without_anomalies: bool,
    /// Most rounds of the θ-step/σ-step alternation (1000; a fit takes about 10).
    pub max_iter: usize,
    /// Convergence: relative change of σ in one round (1e-12).
    pub tol: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            n_changepoints: 25,
            changepoint_range: 0.8,
            changepoint_prior_scale: 0.05,
            weekly_order: 3,
            seasonality_prior_scale: 10.0,
            horizon: 28,
            interval_width: 0.8,
            anomaly_width: 0.99,
            uncertainty_samples: 1000,
            seed: 0,
            refit_without_anomalies: true,
            max_iter: 1000,
            tol: 1e-12,
        }
    }
}

pub(super) fn check_width(name: &str, w: f64) -> Result<()> {
    if w.is_finite() && w > 0.0 && w < 1.0 {
        Ok(())
    } else {
        Err(ForecastError::InvalidConfig(format!(
            "{name} must be in (0, 1), got {w}"
        )))
    }
}

impl ForecastConfig {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ForecastError::InvalidConfig(format!(
                    "{name} must be finite and > 0, got {v}"
                )))
            }
        };
        if !(self.changepoint_range.is_finite()
            && self.changepoint_range > 0.0
            && self.changepoint_range <= 1.0)
        {
            return Err(ForecastError::InvalidConfig(format!(
                "changepoint_range must be in (0, 1], got {}",
                self.changepoint_range
            )));
        }
        positive("changepoint_prior_scale", self.changepoint_prior_scale)?;
        positive("seasonality_prior_scale", self.seasonality_prior_scale)?;
        positive("tol", self.tol)?;
        check_width("interval_width", self.interval_width)?;
        check_width("anomaly_width", self.anomaly_width)?;
        if self.uncertainty_samples == 0 {
            return Err(ForecastError::InvalidConfig(
                "uncertainty_samples must be at least 1".into(),
            ));
        }
        if self.max_iter == 0 {
            return Err(ForecastError::InvalidConfig(
                "max_iter must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
