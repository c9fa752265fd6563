//! The Cox proportional hazards model: h(t | x) = h₀(t) · exp(xβ).
//!
//! β maximises the log partial likelihood (Cox 1972). With d tied events at a time t,
//! risk set R(t) (subjects with time ≥ t), event set D(t), rᵢ = exp(xᵢβ),
//! S₀ = Σ_{R} rᵢ and A₀ = Σ_{D} rᵢ, the contribution of t is
//!
//! * Efron (1977): Σ_{D} xᵢβ − Σ_{k=0}^{d−1} log(S₀ − (k/d)·A₀);
//! * Breslow (1974): Σ_{D} xᵢβ − d · log S₀.
//!
//! Both coincide without tied event times; with heavy ties Breslow's estimates are
//! attenuated towards 0 (Efron's approximation is closer to the exact partial
//! likelihood; R's `coxph` default is Efron, as here).
//!
//! Fitting: covariates are centred at their means (and, with
//! [`CoxConfig::standardize`], divided by their standard deviations) before the
//! iteration — this changes nothing in the estimates but keeps exp(xβ) in range and the
//! information matrix well scaled; every number reported is on the original covariate
//! scale. Newton–Raphson starts at β = 0 and takes the step I(β)⁻¹U(β) (score U,
//! observed information I); a step that lowers the log partial likelihood (or makes
//! it non-finite) is halved until it does not. Convergence: |1 − ℓ_old/ℓ_new| ≤ eps
//! after a step, the criterion of R's `coxph` (`coxph.control(eps = 1e-9)`; R's
//! default `iter.max` is 20, the default here is 30).

use serde::{Deserialize, Serialize};

use super::concordance::{Concordance, concordance_unchecked};
use super::dist::{chi_square_sf, normal_two_sided_p};
use super::linalg::{cholesky, cholesky_inverse, cholesky_solve};
use super::{Covariates, Result, SurvivalError, validate_times};

/// Default convergence tolerance on the relative change of the log partial likelihood
/// (R's `coxph.control(eps = 1e-9)`).
pub const DEFAULT_EPS: f64 = 1e-9;
/// Default maximum number of Newton–Raphson iterations (R's `coxph` default is 20).
pub const DEFAULT_MAX_ITER: usize = 30;
/// Step halvings tried within one iteration before giving up on it.
const MAX_HALVINGS: usize = 60;

/// How tied event times enter the partial likelihood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ties {
    /// Efron's approximation (default, as R's `coxph`).
    #[default]
    Efron,
    /// Breslow's approximation.
    Breslow,
}

impl Ties {
    /// `efron` or `breslow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ties::Efron => "efron",
            Ties::Breslow => "breslow",
        }
    }
}

impl std::fmt::Display for Ties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Ties {
    type Err = SurvivalError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "efron" => Ok(Ties::Efron),
            "breslow" => Ok(Ties::Breslow),
            other => Err(SurvivalError::InvalidArgument(format!(
                "unknown ties method '{other}' (expected efron or breslow)"
            ))),
        }
    }
}

/// Options of [`cox_ph`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoxConfig {
    /// Handling of tied event times (default Efron).
    pub ties: Ties,
    /// Divide each centred covariate by its standard deviation (population SD) for the
    /// iteration (default true). Coefficients, SEs and the covariance are always
    /// reported on the original scale, so this affects only numerical conditioning.
    pub standardize: bool,
    /// Maximum Newton–Raphson iterations (default 30; R's default is 20). 0 returns
    /// β = 0 with the information at 0, as R's `iter.max = 0`.
    pub max_iter: usize,
    /// Convergence tolerance on |1 − ℓ_old/ℓ_new| (default 1e-9, as R).
    pub eps: f64,
}

impl Default for CoxConfig {
    fn default() -> Self {
        Self {
            ties: Ties::Efron,
            standardize: true,
            max_iter: DEFAULT_MAX_ITER,
            eps: DEFAULT_EPS,
        }
    }
}

/// The baseline cumulative hazard of a fitted Cox model (Breslow-type estimator at β̂).
///
/// At each distinct event time t with d events the increment is, for Breslow ties,
/// d / S₀(t) and, for Efron ties, Σ_{k=0}^{d−1} 1/(S₀(t) − (k/d)·A₀(t)) (the
/// Efron-adjusted increment of Therneau & Grambsch 2000, appendix E, and of the
/// `validate` vignette of R's survival package; R's `survfit.coxph` with its
/// default `ctype`, which follows the fit's ties method, and hence
/// `basehaz(fit, centered = FALSE)`). The hazard is a right-continuous step function:
/// 0 before the first event time, constant after the last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineHazard {
    /// Distinct event times, ascending.
    pub times: Vec<f64>,
    /// H₀(t) for a subject with all covariates 0 on the original scale, at each of
    /// `times` (R's `basehaz(fit, centered = FALSE)`).
    pub cumhaz: Vec<f64>,
    /// H(t) for a subject at the covariate means (R's `basehaz(fit)`, `centered = TRUE`):
    /// `cumhaz_centered = cumhaz · exp(means · β)`.
    pub cumhaz_centered: Vec<f64>,
    /// Largest observed time (event or censoring). R's `survfit` predictions end here;
    /// between the last event time and `max_time` the hazard is constant.
    pub max_time: f64,
}

impl BaselineHazard {
    /// H₀(t) (covariates 0) as a step function: the value at the last event time ≤ t,
    /// 0 before the first event time.
    pub fn at(&self, t: f64) -> f64 {
        step(&self.times, &self.cumhaz, t)
    }

    /// H(t) at the covariate means, as a step function.
    pub fn centered_at(&self, t: f64) -> f64 {
        step(&self.times, &self.cumhaz_centered, t)
    }

    /// The last event time (`None` only for an empty hazard, which a fit never has).
    pub fn last_event_time(&self) -> Option<f64> {
        self.times.last().copied()
    }
}

fn step(times: &[f64], values: &[f64], t: f64) -> f64 {
    let k = times.partition_point(|&u| u <= t);
    if k == 0 { 0.0 } else { values[k - 1] }
}

/// A fitted Cox model. Every quantity is on the original covariate scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoxFit {
    /// β̂, one per covariate (log hazard ratio per unit of the covariate).
    pub coefficients: Vec<f64>,
    /// Standard errors: √diag(I(β̂)⁻¹), the inverse observed information.
    pub se: Vec<f64>,
    /// Wald statistics β̂ / SE.
    pub z: Vec<f64>,
    /// Two-sided normal p-values of `z` (R's `Pr(>|z|)`).
    pub p_values: Vec<f64>,
    /// Covariance matrix I(β̂)⁻¹, p × p row-major.
    pub covariance: Vec<f64>,
    /// Log partial likelihood at β = 0 (R's `loglik[1]`).
    pub loglik_null: f64,
    /// Log partial likelihood at β̂ (R's `loglik[2]`).
    pub loglik: f64,
    /// Newton–Raphson iterations taken.
    pub iterations: usize,
    /// Whether the relative change of the log partial likelihood fell below `eps`
    /// within `max_iter` iterations.
    pub converged: bool,
    /// Covariates whose coefficient may be infinite (monotone likelihood, e.g. a
    /// covariate that separates events from non-events): at β̂ the remaining Newton step
    /// |I⁻¹U|ⱼ exceeds both `eps` and √eps·|β̂ⱼ|, R's "Loglik converged before
    /// variable j; coefficient may be infinite" check. Empty for a regular fit.
    pub possibly_infinite: Vec<usize>,
    /// Harrell's C of the linear predictor (see [`super::concordance`]).
    pub concordance: Concordance,
    /// Number of subjects.
    pub n: usize,
    /// Number of events.
    pub events: usize,
    /// Ties method used.
    pub ties: Ties,
    /// Whether covariates were standardised for the iteration.
    pub standardized: bool,
    /// Covariate means (the centring applied in the fit; R's `fit$means`).
    pub means: Vec<f64>,
    /// Scale divisors used in the iteration (population SDs, or 1 without standardising).
    pub scales: Vec<f64>,
    /// Baseline cumulative hazard at β̂.
    pub baseline: BaselineHazard,
}

impl CoxFit {
    /// Number of covariates.
    pub fn p(&self) -> usize {
        self.coefficients.len()
    }

    /// Likelihood-ratio statistic 2(ℓ(β̂) − ℓ(0)), chi-square with p df under β = 0.
    pub fn lr_statistic(&self) -> f64 {
        2.0 * (self.loglik - self.loglik_null)
    }

    /// p-value of the likelihood-ratio test (chi-square with p df).
    pub fn lr_p_value(&self) -> f64 {
        chi_square_sf(self.lr_statistic(), self.p())
    }

    /// Hazard ratios exp(β̂ⱼ).
    pub fn hazard_ratios(&self) -> Vec<f64> {
        self.coefficients.iter().map(|b| b.exp()).collect()
    }

    /// The linear predictor xβ̂ (not centred) for covariates `x` on the original scale.
    pub fn linear_predictor(&self, x: &[f64]) -> Result<f64> {
        self.check_x(x)?;
        Ok(dot(x, &self.coefficients))
    }

    /// Cumulative hazard H(t | x) = H₀(t) · exp(xβ̂), step function in t.
    pub fn cumulative_hazard(&self, x: &[f64], t: f64) -> Result<f64> {
        self.check_x(x)?;
        check_finite("t", t)?;
        let h = self.baseline.centered_at(t);
        Ok(if h == 0.0 {
            0.0
        } else {
            h * self.centered_lp(x).exp()
        })
    }

    /// Predicted survival S(t | x) = exp(−H(t | x)).
    pub fn survival(&self, x: &[f64], t: f64) -> Result<f64> {
        Ok((-self.cumulative_hazard(x, t)?).exp())
    }

    /// Probability that a subject with covariates `x`, event-free at time `t`, has the
    /// event by `t + horizon` (e.g. churns within the next 14 days):
    /// P = 1 − S(t + horizon | x)/S(t | x) = 1 − exp(−(H₀(t + horizon) − H₀(t)) · exp(xβ̂)).
    ///
    /// H₀ is the step function of [`BaselineHazard`]: events at exactly `t` are excluded
    /// (the subject has survived them), events at exactly `t + horizon` included.
    /// Beyond the last event time of the fitting data H₀ is constant — the Breslow
    /// estimator has no information there — so a window reaching past the last event
    /// time counts only the hazard up to it, and the probability is 0 for
    /// t ≥ [`BaselineHazard::last_event_time`]. Callers scoring subjects whose tenure
    /// exceeds the follow-up of the fitting cohort should cap `t` (or refit).
    ///
    /// Errors: `x` of the wrong length or non-finite, non-finite `t`, negative or
    /// non-finite `horizon`.
    pub fn event_probability(&self, x: &[f64], t: f64, horizon: f64) -> Result<f64> {
        self.check_x(x)?;
        check_finite("t", t)?;
        if !(horizon.is_finite() && horizon >= 0.0) {
            return Err(SurvivalError::InvalidArgument(format!(
                "horizon must be finite and >= 0, got {horizon}"
            )));
        }
        let dh = self.baseline.centered_at(t + horizon) - self.baseline.centered_at(t);
        if dh <= 0.0 {
            return Ok(0.0);
        }
        Ok(-(-dh * self.centered_lp(x).exp()).exp_m1())
    }

    /// (x − means)·β̂: the linear predictor relative to the centred baseline.
    fn centered_lp(&self, x: &[f64]) -> f64 {
        x.iter()
            .zip(&self.means)
            .zip(&self.coefficients)
            .map(|((xi, m), b)| (xi - m) * b)
            .sum()
    }

    fn check_x(&self, x: &[f64]) -> Result<()> {
        if x.len() != self.p() {
            return Err(SurvivalError::LengthMismatch {
                what: "x".into(),
                expected: self.p(),
                got: x.len(),
            });
        }
        if let Some(j) = x.iter().position(|v| !v.is_finite()) {
            return Err(SurvivalError::NonFinite {
                what: "x",
                index: j,
            });
        }
        Ok(())
    }
}

fn check_finite(what: &str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(SurvivalError::InvalidArgument(format!(
            "{what} must be finite, got {v}"
        )))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The checks of [`cox_ph`] in its documented order; returns the number of events.
fn check_fit_inputs(
    time: &[f64],
    event: &[bool],
    x: &Covariates,
    config: &CoxConfig,
) -> Result<usize> {
    validate_inputs(time, event, x)?;
    let (n, p) = (x.n(), x.p());
    if p == 0 {
        return Err(SurvivalError::NoCovariates);
    }
    if n < p + 1 {
        return Err(SurvivalError::TooFewSubjects { n, p });
    }
    let events = event.iter().filter(|&&e| e).count();
    if events == 0 {
        return Err(SurvivalError::NoEvents);
    }
    for j in 0..p {
        let v0 = x.row(0)[j];
        if (1..n).all(|i| x.row(i)[j] == v0) {
            return Err(SurvivalError::ConstantCovariate {
                index: j,
                value: v0,
            });
        }
    }
    if !(config.eps.is_finite() && config.eps > 0.0) {
        return Err(SurvivalError::InvalidArgument(format!(
            "eps must be finite and > 0, got {}",
            config.eps
        )));
    }
    Ok(events)
}

/// Breslow's baseline cumulative hazard at the event times from the fit's hazard
/// increments (centred covariates), and moved to covariates at 0 (× exp(−β·mean)).
fn baseline_hazard(
    design: &Design,
    increments: &[f64],
    coefficients: &[f64],
    time: &[f64],
) -> BaselineHazard {
    let offset = dot(&design.mean, coefficients);
    let mut cumhaz_centered = Vec::with_capacity(increments.len());
    let mut acc = 0.0;
    for &dh in increments {
        acc += dh;
        cumhaz_centered.push(acc);
    }
    let cumhaz = cumhaz_centered
        .iter()
        .map(|h| h * (-offset).exp())
        .collect();
    BaselineHazard {
        times: design.event_times.clone(),
        cumhaz,
        cumhaz_centered,
        max_time: time.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Fits a Cox proportional hazards model (see the module docs for the method).
///
/// `time[i]` ≥ 0 and `event[i]` are subject i's observed time and event indicator,
/// `x.row(i)` its covariates. Returns coefficients, SEs, Wald z and p-values, log
/// partial likelihoods at 0 and at β̂, iterations and convergence, Harrell's
/// concordance, n, events and the baseline cumulative hazard.
///
/// Errors, checked in this order: [`SurvivalError::LengthMismatch`] (event or
/// covariate rows vs time), [`SurvivalError::Empty`], [`SurvivalError::NonFinite`] /
/// [`SurvivalError::NegativeTime`] (times), [`SurvivalError::NonFiniteCovariate`],
/// [`SurvivalError::NoCovariates`], [`SurvivalError::TooFewSubjects`] (n < p + 1),
/// [`SurvivalError::NoEvents`], [`SurvivalError::ConstantCovariate`],
/// [`SurvivalError::InvalidArgument`] (config), then
/// [`SurvivalError::SingularInformation`] from the iteration. Non-convergence is not an
/// error: check [`CoxFit::converged`] and [`CoxFit::possibly_infinite`].
pub fn cox_ph(time: &[f64], event: &[bool], x: &Covariates, config: &CoxConfig) -> Result<CoxFit> {
    let events = check_fit_inputs(time, event, x, config)?;
    let (n, p) = (x.n(), x.p());

    let design = Design::new(time, event, x, config.standardize);
    let ties = config.ties;
    let mut beta = vec![0.0; p];
    let mut cur = design.evaluate(&beta, ties, true);
    let loglik_null = cur.loglik;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < config.max_iter {
        let l =
            cholesky(&cur.info, p).map_err(|index| SurvivalError::SingularInformation { index })?;
        let mut step = cholesky_solve(&l, p, &cur.grad);
        iterations += 1;
        let mut trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
        let mut ll = design.evaluate(&trial, ties, false).loglik;
        let mut halvings = 0;
        while !(ll.is_finite() && ll >= cur.loglik) && halvings < MAX_HALVINGS {
            step.iter_mut().for_each(|s| *s *= 0.5);
            trial = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
            ll = design.evaluate(&trial, ties, false).loglik;
            halvings += 1;
        }
        if !(ll.is_finite() && ll >= cur.loglik) {
            break; // no ascent direction found: stay at beta, not converged
        }
        let done = (1.0 - cur.loglik / ll).abs() <= config.eps || ll == cur.loglik;
        beta = trial;
        cur = design.evaluate(&beta, ties, true);
        if done {
            converged = true;
            break;
        }
    }

    let l = cholesky(&cur.info, p).map_err(|index| SurvivalError::SingularInformation { index })?;
    let cov_int = cholesky_inverse(&l, p);
    let remaining = cholesky_solve(&l, p, &cur.grad);
    let s = &design.scale;
    let coefficients: Vec<f64> = (0..p).map(|j| beta[j] / s[j]).collect();
    let mut covariance = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..p {
            covariance[i * p + j] = cov_int[i * p + j] / (s[i] * s[j]);
        }
    }
    let se: Vec<f64> = (0..p).map(|j| covariance[j * p + j].sqrt()).collect();
    let z: Vec<f64> = coefficients.iter().zip(&se).map(|(b, e)| b / e).collect();
    let p_values = z.iter().map(|&z| normal_two_sided_p(z)).collect();
    let toler_inf = config.eps.sqrt();
    let possibly_infinite = (0..p)
        .filter(|&j| {
            let r = (remaining[j] / s[j]).abs();
            r > config.eps && r > toler_inf * coefficients[j].abs()
        })
        .collect();

    // linear predictor (centred; the shift does not change ranks) in the caller's order
    let lp: Vec<f64> = (0..n)
        .map(|i| {
            x.row(i)
                .iter()
                .zip(&design.mean)
                .zip(&coefficients)
                .map(|((xi, m), b)| (xi - m) * b)
                .sum()
        })
        .collect();
    let concordance = concordance_unchecked(time, event, &lp);

    let baseline = baseline_hazard(&design, &cur.increments, &coefficients, time);

    Ok(CoxFit {
        coefficients,
        se,
        z,
        p_values,
        covariance,
        loglik_null,
        loglik: cur.loglik,
        iterations,
        converged,
        possibly_infinite,
        concordance,
        n,
        events,
        ties,
        standardized: config.standardize,
        means: design.mean.clone(),
        scales: design.scale.clone(),
        baseline,
    })
}

/// The Cox log partial likelihood ℓ(β) (formulas in the module docs) of `beta` on the
/// original covariate scale, e.g. to check a fit or profile a coefficient.
///
/// Needs one `beta` entry per covariate (finite); data are validated as in [`cox_ph`]
/// except that constant covariates, p = 0, n ≤ p and no events are allowed
/// (no events gives 0).
pub fn log_partial_likelihood(
    time: &[f64],
    event: &[bool],
    x: &Covariates,
    beta: &[f64],
    ties: Ties,
) -> Result<f64> {
    validate_inputs(time, event, x)?;
    if beta.len() != x.p() {
        return Err(SurvivalError::LengthMismatch {
            what: "beta".into(),
            expected: x.p(),
            got: beta.len(),
        });
    }
    if let Some(j) = beta.iter().position(|b| !b.is_finite()) {
        return Err(SurvivalError::NonFinite {
            what: "beta",
            index: j,
        });
    }
    let design = Design::new(time, event, x, false);
    Ok(design.evaluate(beta, ties, false).loglik)
}

fn validate_inputs(time: &[f64], event: &[bool], x: &Covariates) -> Result<()> {
    validate_times(time, event)?;
    if x.n() != time.len() {
        return Err(SurvivalError::LengthMismatch {
            what: "covariate rows".into(),
            expected: time.len(),
            got: x.n(),
        });
    }
    for i in 0..x.n() {
        if let Some(j) = x.row(i).iter().position(|v| !v.is_finite()) {
            return Err(SurvivalError::NonFiniteCovariate { row: i, column: j });
        }
    }
    Ok(())
}

/// The data sorted by time, covariates centred (and scaled), grouped by distinct time.
struct Design {
    n: usize,
    p: usize,
    event: Vec<bool>,
    /// Transformed covariates z = (x − mean)/scale, row-major, in time order.
    z: Vec<f64>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// `[start, end)` ranges of equal times in the sorted order, ascending time.
    groups: Vec<(usize, usize)>,
    /// Distinct times with at least one event, ascending.
    event_times: Vec<f64>,
}

/// Log partial likelihood and, optionally, its derivatives at one β.
struct Evaluation {
    loglik: f64,
    /// Score U(β) (internal scale); empty without derivatives.
    grad: Vec<f64>,
    /// Observed information −∂²ℓ/∂β², p × p row-major; empty without derivatives.
    info: Vec<f64>,
    /// Baseline hazard increments at the covariate means, one per event time, ascending.
    increments: Vec<f64>,
}

impl Design {
    fn new(time: &[f64], event: &[bool], x: &Covariates, standardize: bool) -> Self {
        let (n, p) = (x.n(), x.p());
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| time[a].total_cmp(&time[b]));
        let mut mean = vec![0.0; p];
        for i in 0..n {
            for (m, v) in mean.iter_mut().zip(x.row(i)) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut scale = vec![1.0; p];
        if standardize {
            let mut ss = vec![0.0; p];
            for i in 0..n {
                for ((s, v), m) in ss.iter_mut().zip(x.row(i)).zip(&mean) {
                    *s += (v - m) * (v - m);
                }
            }
            for (sc, s) in scale.iter_mut().zip(&ss) {
                let sd = (s / n as f64).sqrt();
                if sd > 0.0 && sd.is_finite() {
                    *sc = sd;
                }
            }
        }
        let mut z = Vec::with_capacity(n * p);
        let mut ev = Vec::with_capacity(n);
        for &i in &order {
            for ((v, m), s) in x.row(i).iter().zip(&mean).zip(&scale) {
                z.push((v - m) / s);
            }
            ev.push(event[i]);
        }
        let mut groups = Vec::new();
        let mut event_times = Vec::new();
        let mut start = 0;
        while start < n {
            let t = time[order[start]];
            let mut end = start;
            let mut any_event = false;
            while end < n && time[order[end]] == t {
                any_event |= event[order[end]];
                end += 1;
            }
            groups.push((start, end));
            if any_event {
                event_times.push(t);
            }
            start = end;
        }
        Self {
            n,
            p,
            event: ev,
            z,
            mean,
            scale,
            groups,
            event_times,
        }
    }

    /// One backward pass over time (risk sets accumulate from the last time down).
    fn evaluate(&self, beta: &[f64], ties: Ties, derivs: bool) -> Evaluation {
        let (n, p) = (self.n, self.p);
        let eta: Vec<f64> = (0..n)
            .map(|i| dot(&self.z[i * p..(i + 1) * p], beta))
            .collect();
        // exp(η − max η): the partial likelihood is invariant to the shift
        let shift = eta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let r: Vec<f64> = eta.iter().map(|e| (e - shift).exp()).collect();
        let pp = if derivs { p } else { 0 };
        let mut s0 = 0.0;
        let mut s1 = vec![0.0; pp];
        let mut s2 = vec![0.0; pp * pp];
        let mut a1 = vec![0.0; pp];
        let mut a2 = vec![0.0; pp * pp];
        let mut mean = vec![0.0; pp];
        let mut grad = vec![0.0; pp];
        let mut info = vec![0.0; pp * pp];
        let mut loglik = 0.0;
        let mut increments = Vec::with_capacity(self.event_times.len());
        for &(start, end) in self.groups.iter().rev() {
            let mut d = 0usize;
            let mut a0 = 0.0;
            a1.fill(0.0);
            a2.fill(0.0);
            for i in start..end {
                let ri = r[i];
                let zi = &self.z[i * p..(i + 1) * p];
                s0 += ri;
                if derivs {
                    for j in 0..p {
                        let w = ri * zi[j];
                        s1[j] += w;
                        for k in 0..=j {
                            s2[j * p + k] += w * zi[k];
                        }
                    }
                }
                if self.event[i] {
                    d += 1;
                    a0 += ri;
                    loglik += eta[i] - shift;
                    if derivs {
                        for j in 0..p {
                            let w = ri * zi[j];
                            grad[j] += zi[j];
                            a1[j] += w;
                            for k in 0..=j {
                                a2[j * p + k] += w * zi[k];
                            }
                        }
                    }
                }
            }
            if d == 0 {
                continue;
            }
            let df = d as f64;
            let mut dh = 0.0;
            for k in 0..d {
                let f = match ties {
                    Ties::Efron => k as f64 / df,
                    Ties::Breslow => 0.0,
                };
                let den = s0 - f * a0;
                loglik -= den.ln();
                dh += 1.0 / den;
                if derivs {
                    for j in 0..p {
                        mean[j] = (s1[j] - f * a1[j]) / den;
                        grad[j] -= mean[j];
                    }
                    for j in 0..p {
                        for l in 0..=j {
                            info[j * p + l] +=
                                (s2[j * p + l] - f * a2[j * p + l]) / den - mean[j] * mean[l];
                        }
                    }
                }
            }
            increments.push(dh * (-shift).exp());
        }
        for j in 0..pp {
            for l in 0..j {
                info[l * p + j] = info[j * p + l];
            }
        }
        increments.reverse();
        Evaluation {
            loglik,
            grad,
            info,
            increments,
        }
    }
}
