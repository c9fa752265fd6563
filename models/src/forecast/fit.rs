//! The exact MAP fit ([`fit()`]) and the fitted model's parameters ([`ProphetParams`],
//! [`ProphetFit`]): Prophet's scaling and changepoint grid, the design matrix, the
//! priors' weights and the weekly Fourier features, and the objective F at other
//! parameters ([`ProphetFit::neg_log_posterior_of`]).

use serde::{Deserialize, Serialize};

use super::config::{ForecastConfig, ForecastError, MIN_POINTS, Result, WEEK};
use super::lasso::Problem;

/// Prior SD of the base rate k and offset m (Prophet's `normal(0, 5)`).
const KM_PRIOR_SD: f64 = 5.0;

/// MAP parameters in Prophet's scaled units (as Prophet's `m.params`): trend and
/// seasonality act on `y / y_scale` over t ∈ [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProphetParams {
    /// Base growth rate k (scaled y per unit of scaled t).
    pub k: f64,
    /// Offset m (scaled y at the first day).
    pub m: f64,
    /// Rate change δ_j at each changepoint (exactly 0 where the prior switched it off).
    pub delta: Vec<f64>,
    /// Fourier coefficients: sin, cos of order 1, then of order 2, … (Prophet's order).
    pub beta: Vec<f64>,
    /// Noise SD σ (scaled y).
    pub sigma_obs: f64,
}

/// A fitted Prophet-style model with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProphetFit {
    /// MAP parameters (scaled units).
    pub params: ProphetParams,
    /// First day of the history (t = 0).
    pub start: i64,
    /// Days from the first to the last day of the history (t = 1 at the last).
    pub t_scale: f64,
    /// max |y| of the history (1 if that is 0): y is modelled as `y / y_scale`.
    pub y_scale: f64,
    /// Days of the potential changepoints.
    pub changepoints: Vec<i64>,
    /// Their scaled times.
    pub changepoints_t: Vec<f64>,
    /// Fourier order of the weekly term.
    pub weekly_order: usize,
    /// History days, ascending.
    pub days: Vec<i64>,
    /// History values, by day.
    pub values: Vec<f64>,
    /// Whether every value was equal (then trend flat, σ = 0, no optimisation).
    pub constant: bool,
    /// Rounds of the θ-step/σ-step alternation used.
    pub iterations: usize,
    /// Whether the alternation converged within `max_iter` (and every θ-step ended).
    pub converged: bool,
    /// The minimised objective F (Stan's `-lp__`, see the module docs); NaN-free,
    /// `-inf` never (σ is floored), 0 for a constant series (not optimised).
    pub neg_log_posterior: f64,
}

/// Fits the model to a daily series by exact MAP (see the module docs).
///
/// `days` are day numbers (days since 1970-01-01 give Prophet's weekly phase), in any
/// order and without duplicates; `values` are finite, one per day.
pub fn fit(days: &[i64], values: &[f64], config: &ForecastConfig) -> Result<ProphetFit> {
    config.validate()?;
    if days.len() != values.len() {
        return Err(ForecastError::LengthMismatch {
            days: days.len(),
            values: values.len(),
        });
    }
    for (&day, &value) in days.iter().zip(values) {
        if !value.is_finite() {
            return Err(ForecastError::NonFinite { day, value });
        }
    }
    let n = days.len();
    if n < MIN_POINTS {
        return Err(ForecastError::TooFewPoints {
            got: n,
            min: MIN_POINTS,
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| days[i]);
    for w in order.windows(2) {
        if days[w[0]] == days[w[1]] {
            return Err(ForecastError::DuplicateDay(days[w[0]]));
        }
    }
    let days: Vec<i64> = order.iter().map(|&i| days[i]).collect();
    let values: Vec<f64> = order.iter().map(|&i| values[i]).collect();

    let start = days[0];
    let t_scale = (days[n - 1] - start) as f64;
    let max_abs = values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let y_scale = if max_abs == 0.0 { 1.0 } else { max_abs };
    let t: Vec<f64> = days.iter().map(|&d| (d - start) as f64 / t_scale).collect();
    let y: Vec<f64> = values.iter().map(|v| v / y_scale).collect();

    // Prophet's changepoint grid over the history rows.
    let hist_size = (n as f64 * config.changepoint_range).floor() as usize;
    let n_cp = config.n_changepoints.min(hist_size.saturating_sub(1));
    let cp_rows: Vec<usize> = if n_cp > 0 {
        let step = (hist_size - 1) as f64 / n_cp as f64;
        (1..=n_cp)
            .map(|i| {
                if i == n_cp {
                    hist_size - 1
                } else {
                    (i as f64 * step).round_ties_even() as usize
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let changepoints: Vec<i64> = cp_rows.iter().map(|&r| days[r]).collect();
    let changepoints_t: Vec<f64> = cp_rows.iter().map(|&r| t[r]).collect();
    let n_fourier = 2 * config.weekly_order;

    let constant = values.iter().all(|&v| v == values[0]);
    if constant {
        return Ok(ProphetFit {
            params: ProphetParams {
                k: 0.0,
                m: y[0],
                delta: vec![0.0; n_cp],
                beta: vec![0.0; n_fourier],
                sigma_obs: 0.0,
            },
            start,
            t_scale,
            y_scale,
            changepoints,
            changepoints_t,
            weekly_order: config.weekly_order,
            days,
            values,
            constant: true,
            iterations: 0,
            converged: true,
            neg_log_posterior: 0.0,
        });
    }

    let x = design(&days, &t, &changepoints_t, config.weekly_order);
    let p = 2 + n_cp + n_fourier;
    let (ridge, l1) = prior_weights(n_cp, n_fourier, config);
    let problem = Problem::new(&x, &y, n, p, ridge, l1);

    // Prophet's initialisation: the line through the first and last points.
    let mut theta = vec![0.0; p];
    theta[1] = y[n - 1] - y[0];
    theta[0] = y[0];
    let (iterations, converged) = problem.solve(&mut theta, config.max_iter, config.tol);
    let sigma = problem.sigma_hat(problem.rss(&theta));
    let neg_log_posterior = problem.objective(&theta, sigma);

    Ok(ProphetFit {
        params: ProphetParams {
            k: theta[1],
            m: theta[0],
            delta: theta[2..2 + n_cp].to_vec(),
            beta: theta[2 + n_cp..].to_vec(),
            sigma_obs: sigma,
        },
        start,
        t_scale,
        y_scale,
        changepoints,
        changepoints_t,
        weekly_order: config.weekly_order,
        days,
        values,
        constant: false,
        iterations,
        converged,
        neg_log_posterior,
    })
}

/// The design matrix (row-major n × p): `[1, t, (t − s_j)₊ …, sin, cos …]`, so
/// θ = `[m, k, δ…, β…]`.
pub(super) fn design(days: &[i64], t: &[f64], changepoints_t: &[f64], order: usize) -> Vec<f64> {
    let n_cp = changepoints_t.len();
    let p = 2 + n_cp + 2 * order;
    let mut x = vec![0.0; days.len() * p];
    for (i, row) in x.chunks_exact_mut(p).enumerate() {
        row[0] = 1.0;
        row[1] = t[i];
        for (j, &s) in changepoints_t.iter().enumerate() {
            row[2 + j] = (t[i] - s).max(0.0);
        }
        fourier_row(days[i], order, &mut row[2 + n_cp..]);
    }
    x
}

/// Prior precisions (normal priors) and Laplace weights of θ = `[m, k, δ…, β…]`.
fn prior_weights(n_cp: usize, n_fourier: usize, config: &ForecastConfig) -> (Vec<f64>, Vec<f64>) {
    let p = 2 + n_cp + n_fourier;
    let mut ridge = vec![0.0; p];
    let mut l1 = vec![0.0; p];
    ridge[0] = 1.0 / (KM_PRIOR_SD * KM_PRIOR_SD);
    ridge[1] = ridge[0];
    for l in l1.iter_mut().skip(2).take(n_cp) {
        *l = 1.0 / config.changepoint_prior_scale;
    }
    for r in ridge.iter_mut().skip(2 + n_cp) {
        *r = 1.0 / (config.seasonality_prior_scale * config.seasonality_prior_scale);
    }
    (ridge, l1)
}

/// Prophet's Fourier features of a day: sin, cos of 2π i d / 7 for i = 1..=order.
/// The phase is reduced modulo the week first (exact in integers).
pub(super) fn fourier_row(day: i64, order: usize, out: &mut [f64]) {
    let phase = day.rem_euclid(7) as f64 / WEEK;
    for i in 0..order {
        let a = 2.0 * std::f64::consts::PI * (i + 1) as f64 * phase;
        out[2 * i] = a.sin();
        out[2 * i + 1] = a.cos();
    }
}

impl ProphetFit {
    pub(super) fn t_of(&self, day: i64) -> f64 {
        (day - self.start) as f64 / self.t_scale
    }

    /// The objective F (module docs; Stan's `-lp__` of Prophet's model) of this fit's
    /// history at other parameters `params` (scaled units, as Prophet's `m.params`) and
    /// the priors of `config` — e.g. to compare this fit's optimum with Prophet's.
    pub fn neg_log_posterior_of(
        &self,
        params: &ProphetParams,
        config: &ForecastConfig,
    ) -> Result<f64> {
        config.validate()?;
        if params.delta.len() != self.changepoints_t.len()
            || params.beta.len() != 2 * self.weekly_order
            || config.weekly_order != self.weekly_order
        {
            return Err(ForecastError::InvalidConfig(format!(
                "parameters have {} rate changes and {} Fourier terms; the fit has {} and {}",
                params.delta.len(),
                params.beta.len(),
                self.changepoints_t.len(),
                2 * self.weekly_order
            )));
        }
        if !(params.sigma_obs.is_finite() && params.sigma_obs > 0.0) {
            return Err(ForecastError::InvalidConfig(format!(
                "sigma_obs must be finite and > 0, got {}",
                params.sigma_obs
            )));
        }
        let t: Vec<f64> = self.days.iter().map(|&d| self.t_of(d)).collect();
        let y: Vec<f64> = self.values.iter().map(|v| v / self.y_scale).collect();
        let x = design(&self.days, &t, &self.changepoints_t, self.weekly_order);
        let n_cp = self.changepoints_t.len();
        let (ridge, l1) = prior_weights(n_cp, 2 * self.weekly_order, config);
        let problem = Problem::new(&x, &y, y.len(), 2 + n_cp + 2 * self.weekly_order, ridge, l1);
        let mut theta = vec![params.m, params.k];
        theta.extend_from_slice(&params.delta);
        theta.extend_from_slice(&params.beta);
        Ok(problem.objective(&theta, params.sigma_obs))
    }
}
