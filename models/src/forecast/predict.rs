//! What a fitted model gives: trend, weekly term and point predictions, the in-sample
//! intervals and anomaly scores, forecasts with simulated intervals, and
//! [`forecast_series`] (fit, flag anomalies, refit without them, forecast).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};
use serde::{Deserialize, Serialize};

use super::config::{ForecastConfig, ForecastError, MIN_POINTS, Result, check_width};
use super::fit::{ProphetFit, fit, fourier_row};
use crate::numeric::{normal_quantile, quantile_sorted};

/// Prophet's epsilon added to the Laplace scale of simulated rate changes.
const LAMBDA_EPS: f64 = 1e-8;

/// One in-sample day with its fitted value and anomaly verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FittedPoint {
    /// Day.
    pub day: i64,
    /// Observed value.
    pub y: f64,
    /// Fitted value ŷ (trend + weekly), caller's units.
    pub yhat: f64,
    /// Lower end of the in-sample (noise-only) interval.
    pub lower: f64,
    /// Upper end of the in-sample interval.
    pub upper: f64,
    /// |y − ŷ| / half-width of the interval: > 1 means outside (0 when both are 0).
    pub score: f64,
    /// Whether y lies strictly outside the interval (score > 1).
    pub anomaly: bool,
}

/// One forecast day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// Day.
    pub day: i64,
    /// Point forecast: fitted trend extended + weekly term (caller's units).
    pub yhat: f64,
    /// Lower quantile (1 − width)/2 of the simulated paths.
    pub lower: f64,
    /// Upper quantile (1 + width)/2 of the simulated paths.
    pub upper: f64,
    /// Trend component of `yhat`.
    pub trend: f64,
    /// Weekly component of `yhat`.
    pub weekly: f64,
}

/// Everything [`forecast_series`] produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastOutput {
    /// The model fitted to every point: the in-sample intervals and anomalies are its.
    pub fit: ProphetFit,
    /// The refit without the anomalies that the forecast comes from (`None` when the
    /// refit is off, nothing was anomalous, or fewer than [`MIN_POINTS`] would remain).
    pub refit: Option<ProphetFit>,
    /// Every history day with its fitted value, interval and anomaly verdict (from `fit`).
    pub fitted: Vec<FittedPoint>,
    /// `horizon` days after the last history day (from `refit`, else `fit`).
    pub forecast: Vec<ForecastPoint>,
}

impl ForecastOutput {
    /// The model the forecast comes from: the refit if there is one, else the fit.
    pub fn forecast_model(&self) -> &ProphetFit {
        self.refit.as_ref().unwrap_or(&self.fit)
    }

    /// The anomalous history points.
    pub fn anomalies(&self) -> impl Iterator<Item = &FittedPoint> {
        self.fitted.iter().filter(|p| p.anomaly)
    }
}

/// Fits, flags in-sample anomalies and forecasts `config.horizon` days (module docs).
///
/// 1. Fit every point; the history's intervals (`anomaly_width`, 99%) and anomaly
///    scores come from this fit, so anomalies are judged exactly as Prophet's
///    in-sample interval would judge them.
/// 2. With `refit_without_anomalies` (default) and at least one anomaly, refit without
///    the anomalous days (one round; skipped if fewer than [`MIN_POINTS`] remain):
///    spikes otherwise inflate σ, which both widens the forecast intervals and, through
///    the σ²/τ weight of the Laplace prior, flattens the trend's late changes.
/// 3. Forecast from the refit (else the fit) with `interval_width` intervals.
pub fn forecast_series(
    days: &[i64],
    values: &[f64],
    config: &ForecastConfig,
) -> Result<ForecastOutput> {
    let full = fit(days, values, config)?;
    let fitted = full.fitted(config.anomaly_width)?;
    let refit = if config.refit_without_anomalies && fitted.iter().any(|p| p.anomaly) {
        let (d, v): (Vec<i64>, Vec<f64>) = fitted
            .iter()
            .filter(|p| !p.anomaly)
            .map(|p| (p.day, p.y))
            .unzip();
        if d.len() >= MIN_POINTS {
            Some(fit(&d, &v, config)?)
        } else {
            None
        }
    } else {
        None
    };
    let mut out = ForecastOutput {
        fit: full,
        refit,
        fitted,
        forecast: Vec::new(),
    };
    // From the last day of the whole history, even if that day was left out of the refit.
    let last = out.fit.days[out.fit.days.len() - 1];
    let future: Vec<i64> = (1..=config.horizon as i64).map(|h| last + h).collect();
    out.forecast = out.forecast_model().predict_with_intervals(
        &future,
        config.interval_width,
        config.uncertainty_samples,
        config.seed,
    )?;
    Ok(out)
}

impl ProphetFit {
    /// Trend g at `day` in the caller's units (the fitted changepoints only).
    pub fn trend(&self, day: i64) -> f64 {
        let t = self.t_of(day);
        let p = &self.params;
        let mut g = p.m + p.k * t;
        for (d, s) in p.delta.iter().zip(&self.changepoints_t) {
            g += d * (t - s).max(0.0);
        }
        g * self.y_scale
    }

    /// Weekly term s at `day` in the caller's units.
    pub fn weekly(&self, day: i64) -> f64 {
        let mut f = vec![0.0; 2 * self.weekly_order];
        fourier_row(day, self.weekly_order, &mut f);
        f.iter()
            .zip(&self.params.beta)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            * self.y_scale
    }

    /// Point prediction ŷ = trend + weekly at `day` (caller's units).
    pub fn predict(&self, day: i64) -> f64 {
        self.trend(day) + self.weekly(day)
    }

    /// Slope of the trend after the last changepoint, i.e. of the point forecast's
    /// trend, in caller's units per day.
    pub fn final_slope_per_day(&self) -> f64 {
        let p = &self.params;
        (p.k + p.delta.iter().sum::<f64>()) * self.y_scale / self.t_scale
    }

    /// Noise SD σ in caller's units.
    pub fn sigma(&self) -> f64 {
        self.params.sigma_obs * self.y_scale
    }

    /// Every history day with ŷ, the noise-only interval of coverage `width` and the
    /// anomaly score (module docs).
    pub fn fitted(&self, width: f64) -> Result<Vec<FittedPoint>> {
        check_width("anomaly width", width)?;
        let half = normal_quantile(0.5 + 0.5 * width) * self.sigma();
        Ok(self
            .days
            .iter()
            .zip(&self.values)
            .map(|(&day, &y)| {
                let yhat = self.predict(day);
                let r = (y - yhat).abs();
                let score = if r == 0.0 { 0.0 } else { r / half };
                FittedPoint {
                    day,
                    y,
                    yhat,
                    lower: yhat - half,
                    upper: yhat + half,
                    score,
                    anomaly: score > 1.0,
                }
            })
            .collect())
    }

    /// Forecasts the `horizon` days after the last history day with intervals of
    /// coverage `width` from `samples` simulated paths seeded by `seed` (module docs).
    pub fn forecast(
        &self,
        horizon: usize,
        width: f64,
        samples: usize,
        seed: u64,
    ) -> Result<Vec<ForecastPoint>> {
        let last = self.days[self.days.len() - 1];
        let future: Vec<i64> = (1..=horizon as i64).map(|h| last + h).collect();
        self.predict_with_intervals(&future, width, samples, seed)
    }

    /// Point predictions and simulated intervals (module docs) at any `days`, in the
    /// order given: days after the history get new simulated changepoints, days inside
    /// it only noise (as Prophet's `predict`).
    pub fn predict_with_intervals(
        &self,
        future: &[i64],
        width: f64,
        samples: usize,
        seed: u64,
    ) -> Result<Vec<ForecastPoint>> {
        check_width("interval width", width)?;
        if samples == 0 {
            return Err(ForecastError::InvalidConfig(
                "uncertainty samples must be at least 1".into(),
            ));
        }
        if future.is_empty() {
            return Ok(Vec::new());
        }
        let t: Vec<f64> = future.iter().map(|&d| self.t_of(d)).collect();
        let trend: Vec<f64> = future.iter().map(|&d| self.trend(d)).collect();
        let weekly: Vec<f64> = future.iter().map(|&d| self.weekly(d)).collect();
        let t_max = t.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        // Prophet keeps a dummy changepoint when there is none, so S ≥ 1.
        let rate = self.changepoints_t.len().max(1) as f64 * (t_max - 1.0);
        let lambda = if self.constant {
            0.0
        } else {
            let d = &self.params.delta;
            let mean = if d.is_empty() {
                0.0
            } else {
                d.iter().map(|v| v.abs()).sum::<f64>() / d.len() as f64
            };
            mean + LAMBDA_EPS
        };
        let sigma = self.sigma();
        let poisson = (t_max > 1.0 && lambda > 0.0)
            .then(|| Poisson::new(rate).ok())
            .flatten();
        let mut rng = StdRng::seed_from_u64(seed);
        let h = future.len();
        // paths[d * samples + s]
        let mut paths = vec![0.0; h * samples];
        let mut new_cps: Vec<(f64, f64)> = Vec::new();
        for s in 0..samples {
            new_cps.clear();
            if let Some(pois) = &poisson {
                let count = pois.sample(&mut rng) as usize;
                for _ in 0..count {
                    let at = 1.0 + rng.random::<f64>() * (t_max - 1.0);
                    new_cps.push((at, 0.0));
                }
                for cp in new_cps.iter_mut() {
                    cp.1 = laplace(&mut rng, lambda);
                }
            }
            for d in 0..h {
                let mut extra = 0.0;
                for &(at, delta) in &new_cps {
                    extra += delta * (t[d] - at).max(0.0);
                }
                let noise: f64 = if sigma > 0.0 {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    z * sigma
                } else {
                    0.0
                };
                paths[d * samples + s] = trend[d] + extra * self.y_scale + weekly[d] + noise;
            }
        }
        let lo_q = (1.0 - width) / 2.0;
        let hi_q = (1.0 + width) / 2.0;
        Ok((0..h)
            .map(|d| {
                let col = &mut paths[d * samples..(d + 1) * samples];
                col.sort_by(f64::total_cmp);
                ForecastPoint {
                    day: future[d],
                    yhat: trend[d] + weekly[d],
                    lower: quantile_sorted(col, lo_q),
                    upper: quantile_sorted(col, hi_q),
                    trend: trend[d],
                    weekly: weekly[d],
                }
            })
            .collect())
    }
}

/// A Laplace(0, scale) draw by inversion of the CDF.
fn laplace(rng: &mut StdRng, scale: f64) -> f64 {
    let mut u: f64 = rng.random();
    while u == 0.0 {
        u = rng.random();
    }
    if u < 0.5 {
        scale * (2.0 * u).ln()
    } else {
        -scale * (2.0 * (1.0 - u)).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplace_draws_have_the_right_scale() {
        // E|X| = scale for Laplace(0, scale); 200,000 draws: SE of the mean |X| is
        // scale/√200000 ≈ 0.0022·scale, so 1% is > 4 SE.
        let mut rng = StdRng::seed_from_u64(5);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| laplace(&mut rng, 0.3)).collect();
        let mean_abs = draws.iter().map(|d| d.abs()).sum::<f64>() / n as f64;
        let mean = draws.iter().sum::<f64>() / n as f64;
        assert!((mean_abs / 0.3 - 1.0).abs() < 0.01, "{mean_abs}");
        assert!(mean.abs() < 0.005, "{mean}");
    }
}
