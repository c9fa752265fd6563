//! Bayesian hierarchical growth model sampled by NUTS (nuts-rs, the pymc-devs sampler
//! behind nutpie: Hoffman & Gelman 2014 multinomial NUTS with step-size dual averaging
//! and diagonal mass-matrix adaptation).
//!
//! Model (θ units; time in weeks in irtlake):
//!
//! * yᵢₜ = (β₀ + u₀ᵢ) + (β₁ + u₁ᵢ)·tᵢₜ + εᵢₜ, εᵢₜ ~ N(0, σ²);
//! * (u₀ᵢ, u₁ᵢ) ~ N(0, Σ), Σ = [[τ₀², ρτ₀τ₁], [ρτ₀τ₁, τ₁²]];
//! * priors (defaults, [`BayesPriors`]): β₀ ~ N(0, 1), β₁ ~ N(0, 0.5) (the second
//!   argument is the SD, as Stan/brms write it), τ₀, τ₁, σ ~ half-Cauchy(0, 1), and
//!   ρ ~ LKJ(2) (density ∝ 1 − ρ² on (−1, 1)): the correlation is estimated, as the
//!   REML fit does, with a prior that gently pulls it from ±1.
//!
//! **Marginalised random effects.** The random effects are Gaussian and conjugate, so
//! they are integrated out analytically: NUTS samples only the 6 hyperparameters
//! (β₀, β₁, log τ₀, log τ₁, log σ, atanh ρ) from their marginal posterior, with
//! yᵢ ~ N(Xᵢβ, σ²I + XᵢΣXᵢᵀ) evaluated by Woodbury through 2 × 2 systems (and once per
//! design pattern, see [`GrowthData`](super::GrowthData)). This is exact, removes the
//! funnel that makes centred parameterisations fail and the 2·G extra dimensions of a
//! non-centred one, and keeps each gradient O(#patterns) — the right choice for
//! 10,000 groups. Each group's (u₀ᵢ, u₁ᵢ) given the hyperparameters is exactly
//! N(Pᵢbᵢ, σ²Pᵢ) with Pᵢ = (σ²Σ⁻¹ + XᵢᵀXᵢ)⁻¹ and bᵢ = Xᵢᵀ(yᵢ − Xᵢβ);
//! [`BayesFit::group_effect_draws`] draws from it for every posterior draw, and
//! [`BayesFit::forecast`] uses it in Rao–Blackwellised form (the exact conditional
//! probability and moments averaged over the draws, which has lower Monte Carlo error
//! than averaging sampled effects).
//!
//! **Chains.** `chains` chains (default 4) run in parallel on rayon, each seeded from
//! (`seed`, chain index) and started from a jittered pooled-OLS point; the results are
//! identical for a given seed whatever the thread count. Convergence diagnostics are
//! the rank-normalised split-R̂ and bulk/tail ESS of Vehtari et al. (2021)
//! ([`diagnostics`](super::diagnostics)).

use nuts_rs::rand::SeedableRng as _;
use nuts_rs::rand::rngs::ChaCha8Rng;
use nuts_rs::{
    Chain, CpuLogpFunc, CpuMath, CpuMathError, DiagNutsSettings, HasDims, LogpError, Settings,
};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::data::GrowthData;
use super::diagnostics::{ess_bulk, ess_mean, ess_tail, rhat};
use super::linalg::{
    Sym, full, l_s_lt, lt_s_l, mul, sym_det, sym_inv, sym_vec, symmetrize, tr_sym, transpose,
};
use super::lmm::VarianceComponents;
use super::{GrowthError, Result};
use crate::numeric::normal_cdf;
use crate::numeric::quantile_sorted;

/// The R̂ threshold of [`BayesFit::check_rhat`] used by the pipeline.
pub const DEFAULT_MAX_RHAT: f64 = 1.05;

/// Prior on the correlation of random intercept and slope.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorrelationPrior {
    /// ρ = 0: independent random intercepts and slopes (5 sampled parameters).
    Independent,
    /// LKJ(η) on the 2 × 2 correlation matrix: density ∝ (1 − ρ²)^(η−1); η = 2 (the
    /// default) is weakly informative, η = 1 uniform.
    Lkj {
        /// Shape η > 0.
        eta: f64,
    },
}

/// Priors of the Bayesian growth model (defaults are DESIGN.md §4's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesPriors {
    /// Prior mean of the intercept β₀ (default 0, θ units).
    pub intercept_mean: f64,
    /// Prior SD of β₀ (default 1).
    pub intercept_sd: f64,
    /// Prior mean of the slope β₁ (default 0, θ per week).
    pub slope_mean: f64,
    /// Prior SD of β₁ (default 0.5).
    pub slope_sd: f64,
    /// Half-Cauchy scale of τ₀ (default 1).
    pub sd_intercept_scale: f64,
    /// Half-Cauchy scale of τ₁ (default 1).
    pub sd_slope_scale: f64,
    /// Half-Cauchy scale of σ (default 1).
    pub sigma_scale: f64,
    /// Prior on ρ (default LKJ(2)).
    pub correlation: CorrelationPrior,
    /// Known variance components: when set, τ₀, τ₁, ρ and σ are held at these values
    /// and only β is sampled (the scale priors and `correlation` are then unused). For
    /// validation against the conjugate closed form and for sensitivity analyses.
    pub fixed_variances: Option<VarianceComponents>,
}

impl Default for BayesPriors {
    fn default() -> Self {
        Self {
            intercept_mean: 0.0,
            intercept_sd: 1.0,
            slope_mean: 0.0,
            slope_sd: 0.5,
            sd_intercept_scale: 1.0,
            sd_slope_scale: 1.0,
            sigma_scale: 1.0,
            correlation: CorrelationPrior::Lkj { eta: 2.0 },
            fixed_variances: None,
        }
    }
}

impl BayesPriors {
    fn validate(&self) -> Result<()> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        let ok = self.intercept_mean.is_finite()
            && self.slope_mean.is_finite()
            && pos(self.intercept_sd)
            && pos(self.slope_sd)
            && pos(self.sd_intercept_scale)
            && pos(self.sd_slope_scale)
            && pos(self.sigma_scale)
            && match self.correlation {
                CorrelationPrior::Independent => true,
                CorrelationPrior::Lkj { eta } => pos(eta),
            };
        if !ok {
            return Err(GrowthError::InvalidConfig(format!(
                "priors need finite means and positive SDs, scales and LKJ eta; got {self:?}"
            )));
        }
        if let Some(v) = &self.fixed_variances {
            v.validate()?;
        }
        Ok(())
    }
}

/// Sampler settings of [`fit_bayes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesConfig {
    /// Number of chains (default 4), run in parallel.
    pub chains: usize,
    /// Warm-up (tuning) iterations per chain, discarded (default 1000, at least 20).
    pub warmup: usize,
    /// Kept draws per chain (default 1000, at least 4).
    pub draws: usize,
    /// Seed; results are a deterministic function of it.
    pub seed: u64,
    /// Maximum tree depth (default 10: at most 1023 leapfrog steps per draw).
    pub max_depth: u64,
    /// Target acceptance statistic of step-size adaptation (default 0.8).
    pub target_accept: f64,
}

impl Default for BayesConfig {
    fn default() -> Self {
        Self {
            chains: 4,
            warmup: 1000,
            draws: 1000,
            seed: 0,
            max_depth: 10,
            target_accept: 0.8,
        }
    }
}

impl BayesConfig {
    fn validate(&self) -> Result<()> {
        if self.chains == 0
            || self.warmup < 20
            || self.draws < 4
            || !(1..=15).contains(&self.max_depth)
            || !(self.target_accept > 0.0 && self.target_accept < 1.0)
        {
            return Err(GrowthError::InvalidConfig(format!(
                "sampler needs chains >= 1, warmup >= 20, draws >= 4, max_depth in 1..=15, target_accept in (0, 1); got {self:?}"
            )));
        }
        Ok(())
    }
}

/// One posterior draw of the hyperparameters (constrained scale).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PosteriorDraw {
    /// Fixed intercept β₀.
    pub beta0: f64,
    /// Fixed slope β₁.
    pub beta1: f64,
    /// τ₀, SD of the random intercepts.
    pub sd_intercept: f64,
    /// τ₁, SD of the random slopes.
    pub sd_slope: f64,
    /// ρ, their correlation.
    pub corr: f64,
    /// σ, the residual SD.
    pub sigma: f64,
}

/// Posterior summary of one parameter over all chains' kept draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSummary {
    /// `beta0`, `beta1`, `sd_intercept`, `sd_slope`, `corr` or `sigma`.
    pub name: String,
    /// Posterior mean.
    pub mean: f64,
    /// Posterior SD.
    pub sd: f64,
    /// 2.5% quantile.
    pub q2_5: f64,
    /// Median.
    pub median: f64,
    /// 97.5% quantile.
    pub q97_5: f64,
    /// Rank-normalised split-R̂ (max of bulk and tail; Vehtari et al. 2021).
    pub rhat: f64,
    /// Bulk effective sample size.
    pub ess_bulk: f64,
    /// Tail effective sample size (5% and 95% quantiles).
    pub ess_tail: f64,
    /// Monte Carlo standard error of the mean, sd / √ESS_mean.
    pub mcse_mean: f64,
}

/// Per-chain sampler statistics (kept draws only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChainStats {
    /// Adapted step size.
    pub step_size: f64,
    /// Mean number of leapfrog steps per draw.
    pub mean_leapfrog_steps: f64,
    /// Divergent transitions.
    pub divergences: usize,
}

/// Per-group posterior prediction at a target time (see [`BayesFit::forecast`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupForecast {
    /// Posterior mean of the group's mean θ at the target time,
    /// μᵢ = β₀ + u₀ᵢ + (β₁ + u₁ᵢ)·t*.
    pub mean: f64,
    /// Posterior SD of μᵢ (excludes the residual noise of a single observation).
    pub sd: f64,
    /// Posterior probability P(μᵢ ≥ goal | data).
    pub p_goal: f64,
    /// Posterior mean of u₀ᵢ.
    pub u0: f64,
    /// Posterior mean of u₁ᵢ.
    pub u1: f64,
    /// Posterior SD of u₀ᵢ.
    pub sd_u0: f64,
    /// Posterior SD of u₁ᵢ.
    pub sd_u1: f64,
}

const NAN_FORECAST: GroupForecast = GroupForecast {
    mean: f64::NAN,
    sd: f64::NAN,
    p_goal: f64::NAN,
    u0: f64::NAN,
    u1: f64::NAN,
    sd_u0: f64::NAN,
    sd_u1: f64::NAN,
};

/// Result of [`fit_bayes`].
#[derive(Debug, Clone)]
pub struct BayesFit {
    /// Summaries of the sampled parameters in the order beta0, beta1, then (unless the
    /// variances are fixed) sd_intercept, sd_slope, corr (LKJ prior only), sigma.
    pub params: Vec<ParamSummary>,
    /// Kept draws, `draws[chain][i]`.
    pub draws: Vec<Vec<PosteriorDraw>>,
    /// Posterior mean of σ (the residual SD; the fixed value when variances are fixed).
    pub sigma_mean: f64,
    /// Sampler statistics per chain.
    pub chain_stats: Vec<ChainStats>,
    /// Divergent transitions after warm-up, over all chains.
    pub divergences: usize,
    data: GrowthData,
}

/// Layout of the unconstrained parameter vector.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// [β₀, β₁, ln τ₀, ln τ₁, ln σ, atanh ρ]
    Full { eta: f64 },
    /// [β₀, β₁, ln τ₀, ln τ₁, ln σ]
    Independent,
    /// [β₀, β₁]
    Fixed(VarianceComponents),
}

impl Mode {
    fn of(priors: &BayesPriors) -> Self {
        match (priors.fixed_variances, priors.correlation) {
            (Some(v), _) => Mode::Fixed(v),
            (None, CorrelationPrior::Independent) => Mode::Independent,
            (None, CorrelationPrior::Lkj { eta }) => Mode::Full { eta },
        }
    }
    fn dim(&self) -> usize {
        match self {
            Mode::Full { .. } => 6,
            Mode::Independent => 5,
            Mode::Fixed(_) => 2,
        }
    }
    fn names(&self) -> &'static [&'static str] {
        match self {
            Mode::Full { .. } => &[
                "beta0",
                "beta1",
                "sd_intercept",
                "sd_slope",
                "corr",
                "sigma",
            ],
            Mode::Independent => &["beta0", "beta1", "sd_intercept", "sd_slope", "sigma"],
            Mode::Fixed(_) => &["beta0", "beta1"],
        }
    }
    /// Constrained values of an unconstrained position.
    fn constrain(&self, x: &[f64]) -> PosteriorDraw {
        match self {
            Mode::Full { .. } => PosteriorDraw {
                beta0: x[0],
                beta1: x[1],
                sd_intercept: x[2].exp(),
                sd_slope: x[3].exp(),
                corr: x[5].tanh(),
                sigma: x[4].exp(),
            },
            Mode::Independent => PosteriorDraw {
                beta0: x[0],
                beta1: x[1],
                sd_intercept: x[2].exp(),
                sd_slope: x[3].exp(),
                corr: 0.0,
                sigma: x[4].exp(),
            },
            Mode::Fixed(v) => PosteriorDraw {
                beta0: x[0],
                beta1: x[1],
                sd_intercept: v.sd_intercept,
                sd_slope: v.sd_slope,
                corr: v.corr,
                sigma: v.sd_residual,
            },
        }
    }
}

fn draw_value(d: &PosteriorDraw, name: &str) -> f64 {
    match name {
        "beta0" => d.beta0,
        "beta1" => d.beta1,
        "sd_intercept" => d.sd_intercept,
        "sd_slope" => d.sd_slope,
        "corr" => d.corr,
        _ => d.sigma,
    }
}

/// The log density could not be evaluated (overflow at an extreme position); NUTS
/// treats it as a divergence and moves on.
#[derive(Debug, thiserror::Error)]
#[error("log density is not finite at this position")]
struct NonFinite;

impl LogpError for NonFinite {
    fn is_recoverable(&self) -> bool {
        true
    }
}

/// Marginal log posterior of the hyperparameters.
struct Marginal<'a> {
    data: &'a GrowthData,
    priors: &'a BayesPriors,
    mode: Mode,
}

/// ln(1 − tanh² z) = −2 ln cosh z, stable for large |z|.
fn ln_one_minus_tanh2(z: f64) -> f64 {
    let a = z.abs();
    -2.0 * (a + (-2.0 * a).exp().ln_1p() - std::f64::consts::LN_2)
}

/// Marginal log-likelihood of the data and its gradient with respect to β (shifted
/// intercept), the symmetric-matrix gradient D = ∂ℓ/∂Σ (entries treated as
/// independent, so ∂ℓ/∂Σ₀₁ = 2·D₀₁) and ∂ℓ/∂σ².
pub(crate) struct LikGrad {
    pub loglik: f64,
    pub d_beta: [f64; 2],
    pub d_sigma_mat: Sym,
    pub d_s2: f64,
}

/// ℓ(β, Σ = LLᵀ, σ²) = Σᵢ log N(yᵢ; Xᵢβ, σ²I + XᵢΣXᵢᵀ), with β on the shifted scale
/// (intercept minus ȳ) and `l` = (l00, l10, l11) the lower Cholesky factor of Σ.
pub(crate) fn marginal_loglik(data: &GrowthData, beta: [f64; 2], l: [f64; 3], s2: f64) -> LikGrad {
    let ln_s2 = s2.ln();
    let mut ll = 0.0;
    let mut gb = [0.0; 2];
    let mut dm = [0.0; 3];
    let mut ds2 = 0.0;
    let inv_s2 = 1.0 / s2;
    let inv_s4 = inv_s2 * inv_s2;
    for p in &data.patterns {
        let a = p.a;
        let ab = sym_vec(&a, &beta);
        let m = p.m;
        let bsum = [p.g[0] - m * ab[0], p.g[1] - m * ab[1]];
        let s: Sym = [
            p.cc[0] - 2.0 * p.g[0] * ab[0] + m * ab[0] * ab[0],
            p.cc[1] - p.g[0] * ab[1] - p.g[1] * ab[0] + m * ab[0] * ab[1],
            p.cc[2] - 2.0 * p.g[1] * ab[1] + m * ab[1] * ab[1],
        ];
        let rr = p.yy - 2.0 * (beta[0] * p.g[0] + beta[1] * p.g[1])
            + m * (beta[0] * ab[0] + beta[1] * ab[1]);
        let h = lt_s_l(&l, &a);
        let g = [s2 + h[0], h[1], s2 + h[2]];
        let det_g = sym_det(&g);
        let pm = l_s_lt(&l, &sym_inv(&g));
        let tr_ps = tr_sym(&pm, &s);
        ll -= 0.5 * ((p.n_obs - 2.0 * m) * ln_s2 + m * det_g.ln() + (rr - tr_ps) * inv_s2);
        let ap = mul(&full(&a), &full(&pm));
        let q = [[1.0 - ap[0][0], -ap[0][1]], [-ap[1][0], 1.0 - ap[1][1]]];
        gb[0] += inv_s2 * (q[0][0] * bsum[0] + q[0][1] * bsum[1]);
        gb[1] += inv_s2 * (q[1][0] * bsum[0] + q[1][1] * bsum[1]);
        let qsq = symmetrize(&mul(&mul(&q, &full(&s)), &transpose(&q)));
        let apa = symmetrize(&mul(&ap, &full(&a)));
        for k in 0..3 {
            dm[k] += 0.5 * (inv_s4 * qsq[k] - m * inv_s2 * (a[k] - apa[k]));
        }
        let pap = symmetrize(&mul(&transpose(&ap), &full(&pm)));
        let tr_pa = ap[0][0] + ap[1][1];
        ds2 +=
            0.5 * (inv_s4 * (rr - 2.0 * tr_ps + tr_sym(&pap, &s)) - inv_s2 * (p.n_obs - m * tr_pa));
    }
    ll -= 0.5 * data.n_obs as f64 * std::f64::consts::TAU.ln();
    LikGrad {
        loglik: ll,
        d_beta: gb,
        d_sigma_mat: dm,
        d_s2: ds2,
    }
}

impl Marginal<'_> {
    fn log_density(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let pr = self.priors;
        let d = self.mode.constrain(x);
        let beta = [d.beta0 - self.data.y_shift, d.beta1];
        let (t0, t1, rho, sigma) = (d.sd_intercept, d.sd_slope, d.corr, d.sigma);
        let s2 = sigma * sigma;
        let sq = match self.mode {
            Mode::Full { .. } => 1.0 / x[5].cosh(),
            _ => (1.0 - rho * rho).max(0.0).sqrt(),
        };
        let l = [t0, rho * t1, t1 * sq];
        let lg = marginal_loglik(self.data, beta, l, s2);
        let mut lp = lg.loglik;
        // β priors.
        let z0 = (d.beta0 - pr.intercept_mean) / pr.intercept_sd;
        let z1 = (d.beta1 - pr.slope_mean) / pr.slope_sd;
        lp -= 0.5 * (z0 * z0 + z1 * z1);
        grad[0] = lg.d_beta[0] - z0 / pr.intercept_sd;
        grad[1] = lg.d_beta[1] - z1 / pr.slope_sd;
        if let Mode::Fixed(_) = self.mode {
            return lp;
        }
        let dm = lg.d_sigma_mat;
        // Half-Cauchy(0, s) on a scale parameter v = e^x, with the log-Jacobian x.
        let half_cauchy = |v: f64, s: f64| -> (f64, f64) {
            let r = v / s;
            (-(r * r).ln_1p() + v.ln(), 1.0 - 2.0 * r * r / (1.0 + r * r))
        };
        let cross = 2.0 * dm[1] * rho * t0 * t1;
        let (p0, g0) = half_cauchy(t0, pr.sd_intercept_scale);
        let (p1, g1) = half_cauchy(t1, pr.sd_slope_scale);
        let (ps, gs) = half_cauchy(sigma, pr.sigma_scale);
        lp += p0 + p1 + ps;
        grad[2] = 2.0 * dm[0] * t0 * t0 + cross + g0;
        grad[3] = 2.0 * dm[2] * t1 * t1 + cross + g1;
        grad[4] = 2.0 * s2 * lg.d_s2 + gs;
        if let Mode::Full { eta } = self.mode {
            // LKJ(η) density (1 − ρ²)^(η−1) times the Jacobian dρ/dz = 1 − ρ².
            lp += eta * ln_one_minus_tanh2(x[5]);
            grad[5] = 2.0 * dm[1] * t0 * t1 * (1.0 - rho * rho) - 2.0 * eta * rho;
        }
        lp
    }
}

impl HasDims for Marginal<'_> {
    fn dim_sizes(&self) -> HashMap<String, u64> {
        let d = self.mode.dim() as u64;
        HashMap::from([
            ("unconstrained_parameter".to_string(), d),
            ("dim".to_string(), d),
        ])
    }
}

impl CpuLogpFunc for Marginal<'_> {
    type LogpError = NonFinite;
    type FlowParameters = ();
    type ExpandedVector = ();

    fn dim(&self) -> usize {
        self.mode.dim()
    }

    fn logp(
        &mut self,
        position: &[f64],
        gradient: &mut [f64],
    ) -> std::result::Result<f64, NonFinite> {
        let lp = self.log_density(position, gradient);
        if lp.is_finite() && gradient.iter().all(|g| g.is_finite()) {
            Ok(lp)
        } else {
            Err(NonFinite)
        }
    }

    fn expand_vector<R: nuts_rs::rand::Rng + ?Sized>(
        &mut self,
        _rng: &mut R,
        _array: &[f64],
    ) -> std::result::Result<(), CpuMathError> {
        Ok(())
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): seeds and jitter from (seed, stream).
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform on (−1, 1) from a hash.
fn jitter(seed: u64, chain: usize, k: usize) -> f64 {
    let h = splitmix(splitmix(seed ^ splitmix(chain as u64 + 1)) ^ (k as u64 + 1));
    2.0 * ((h >> 11) as f64 / (1u64 << 53) as f64) - 1.0
}

/// Jittered starting point from the pooled OLS fit.
fn initial_position(data: &GrowthData, mode: &Mode, seed: u64, chain: usize) -> Vec<f64> {
    let (mut a, mut g, mut yy, mut n) = ([0.0; 3], [0.0; 2], 0.0, 0.0);
    for p in &data.patterns {
        for (ak, pk) in a.iter_mut().zip(&p.a) {
            *ak += p.m * pk;
        }
        g[0] += p.g[0];
        g[1] += p.g[1];
        yy += p.yy;
        n += p.n_obs;
    }
    let beta = sym_vec(&sym_inv(&a), &g);
    let rss = (yy - beta[0] * g[0] - beta[1] * g[1]).max(1e-12 * yy.max(1e-300));
    let s = (rss / (n - 2.0).max(1.0)).sqrt().max(1e-8);
    let mean_t = a[1] / a[0];
    let sd_t = (a[2] / a[0] - mean_t * mean_t).max(1e-12).sqrt();
    let j = |k: usize| jitter(seed, chain, k);
    let mut x = vec![
        beta[0] + data.y_shift + 0.2 * s * j(0),
        beta[1] + 0.2 * s / sd_t * j(1),
    ];
    if !matches!(mode, Mode::Fixed(_)) {
        x.push((0.5 * s).ln() + j(2));
        x.push((0.5 * s / sd_t).ln() + j(3));
        x.push((0.7 * s).ln() + 0.5 * j(4));
    }
    if matches!(mode, Mode::Full { .. }) {
        x.push(0.5 * j(5));
    }
    x
}

struct ChainOut {
    draws: Vec<PosteriorDraw>,
    stats: ChainStats,
}

fn run_chain(
    data: &GrowthData,
    priors: &BayesPriors,
    config: &BayesConfig,
    chain: usize,
) -> Result<ChainOut> {
    let mode = Mode::of(priors);
    let sampler_err =
        |e: &dyn std::fmt::Display| GrowthError::Sampler(format!("chain {chain}: {e}"));
    let mut adapt_options = DiagNutsSettings::default().adapt_options;
    adapt_options.step_size_settings.target_accept = config.target_accept;
    let settings = DiagNutsSettings {
        num_tune: config.warmup as u64,
        num_draws: config.draws as u64,
        maxdepth: config.max_depth,
        num_chains: config.chains,
        seed: config.seed,
        adapt_options,
        ..DiagNutsSettings::default()
    };
    let model = Marginal { data, priors, mode };
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix(config.seed ^ splitmix(chain as u64)));
    let mut sampler = settings
        .new_chain(chain as u64, CpuMath::new(model), &mut rng)
        .map_err(|e| sampler_err(&e))?;
    sampler
        .set_position(&initial_position(data, &mode, config.seed, chain))
        .map_err(|e| sampler_err(&e))?;
    let mut draws = Vec::with_capacity(config.draws);
    let (mut steps, mut divergences, mut step_size) = (0u64, 0usize, f64::NAN);
    for i in 0..config.warmup + config.draws {
        let (x, progress) = sampler.draw().map_err(|e| sampler_err(&e))?;
        if i >= config.warmup {
            draws.push(mode.constrain(&x));
            steps += progress.num_steps;
            divergences += usize::from(progress.diverging);
            step_size = progress.step_size;
        }
    }
    Ok(ChainOut {
        draws,
        stats: ChainStats {
            step_size,
            mean_leapfrog_steps: steps as f64 / config.draws as f64,
            divergences,
        },
    })
}

/// Samples the marginal posterior of the hyperparameters by NUTS (see the module docs).
///
/// Errors: the data checks of [`GrowthData::check_identifiable`] (too few groups, a
/// single time value, no group with two distinct times), [`GrowthError::InvalidConfig`]
/// for bad priors or settings, [`GrowthError::Sampler`] if a chain cannot start or
/// fails irrecoverably.
pub fn fit_bayes(
    data: &GrowthData,
    priors: &BayesPriors,
    config: &BayesConfig,
) -> Result<BayesFit> {
    priors.validate()?;
    config.validate()?;
    data.check_identifiable()?;
    let outs: Vec<Result<ChainOut>> = (0..config.chains)
        .into_par_iter()
        .map(|c| run_chain(data, priors, config, c))
        .collect();
    let outs: Vec<ChainOut> = outs.into_iter().collect::<Result<_>>()?;
    let mode = Mode::of(priors);
    let draws: Vec<Vec<PosteriorDraw>> = outs.iter().map(|o| o.draws.clone()).collect();
    let params = mode
        .names()
        .iter()
        .map(|&name| summarize(name, &draws))
        .collect();
    let n_draws = (config.chains * config.draws) as f64;
    let sigma_mean = draws.iter().flatten().map(|d| d.sigma).sum::<f64>() / n_draws;
    let chain_stats: Vec<ChainStats> = outs.iter().map(|o| o.stats).collect();
    Ok(BayesFit {
        params,
        sigma_mean,
        divergences: chain_stats.iter().map(|s| s.divergences).sum(),
        chain_stats,
        draws,
        data: data.clone(),
    })
}

fn summarize(name: &str, draws: &[Vec<PosteriorDraw>]) -> ParamSummary {
    let chains: Vec<Vec<f64>> = draws
        .iter()
        .map(|c| c.iter().map(|d| draw_value(d, name)).collect())
        .collect();
    let mut pooled: Vec<f64> = chains.iter().flatten().copied().collect();
    let n = pooled.len() as f64;
    let mean = pooled.iter().sum::<f64>() / n;
    let sd = (pooled.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    pooled.sort_by(f64::total_cmp);
    ParamSummary {
        name: name.to_string(),
        mean,
        sd,
        q2_5: quantile_sorted(&pooled, 0.025),
        median: quantile_sorted(&pooled, 0.5),
        q97_5: quantile_sorted(&pooled, 0.975),
        rhat: rhat(&chains),
        ess_bulk: ess_bulk(&chains),
        ess_tail: ess_tail(&chains),
        mcse_mean: sd / ess_mean(&chains).sqrt(),
    }
}

/// Σ's Cholesky factor, P = (σ²Σ⁻¹ + A)⁻¹ (stable form L(σ²I + LᵀAL)⁻¹Lᵀ) for a draw.
fn cond_p(d: &PosteriorDraw, a: &Sym) -> Sym {
    let r = d.corr;
    let l = [
        d.sd_intercept,
        r * d.sd_slope,
        d.sd_slope * (1.0 - r * r).max(0.0).sqrt(),
    ];
    let s2 = d.sigma * d.sigma;
    let h = lt_s_l(&l, a);
    l_s_lt(&l, &sym_inv(&[s2 + h[0], h[1], s2 + h[2]]))
}

impl BayesFit {
    /// The summary of parameter `name` (`beta0`, `beta1`, `sd_intercept`, `sd_slope`,
    /// `corr`, `sigma`), if it was sampled.
    pub fn param(&self, name: &str) -> Option<&ParamSummary> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The largest R̂ over the sampled parameters (NaN if any R̂ is NaN).
    pub fn max_rhat(&self) -> f64 {
        self.params.iter().map(|p| p.rhat).fold(1.0, |m, r| {
            if m.is_nan() || r.is_nan() {
                f64::NAN
            } else {
                m.max(r)
            }
        })
    }

    /// Ok when every sampled parameter has R̂ ≤ `max_rhat` (the pipeline uses
    /// [`DEFAULT_MAX_RHAT`] = 1.05); otherwise [`GrowthError::NotConverged`] naming the
    /// worst parameter (a NaN R̂ counts as not converged).
    pub fn check_rhat(&self, max_rhat: f64) -> Result<()> {
        let worst = self.params.iter().max_by(|a, b| {
            let key = |p: &ParamSummary| {
                if p.rhat.is_nan() {
                    f64::INFINITY
                } else {
                    p.rhat
                }
            };
            key(a).total_cmp(&key(b))
        });
        match worst {
            Some(p) if p.rhat.is_nan() || p.rhat > max_rhat => Err(GrowthError::NotConverged {
                parameter: p.name.clone(),
                rhat: p.rhat,
                max: max_rhat,
            }),
            _ => Ok(()),
        }
    }

    /// Number of groups of the fitted data.
    pub fn n_groups(&self) -> usize {
        self.data.n_groups()
    }

    /// The response shift of the fitted data ([`GrowthData::y_shift`]): build data to
    /// forecast with [`GrowthData::with_shift`] and this value to reproduce the fitted
    /// groups' forecasts exactly ([`BayesFit::forecast_data`]).
    pub fn y_shift(&self) -> f64 {
        self.data.y_shift
    }

    /// Per-group posterior of the mean θ at `target_time`,
    /// μᵢ = β₀ + u₀ᵢ + (β₁ + u₁ᵢ)·target_time, and P(μᵢ ≥ `goal`), in group-index order.
    ///
    /// Rao–Blackwellised: for each draw of the hyperparameters, μᵢ is exactly Gaussian
    /// (mean β₀ + β₁t* + hᵀPᵢbᵢ, variance σ²hᵀPᵢh, h = (1, t*)); the reported
    /// probability is the average over draws of Φ((mean − goal)/SD), the mean and SD
    /// come from the law of total variance. Deterministic (no random numbers); a
    /// non-finite `target_time` or `goal` gives NaN fields.
    pub fn forecast(&self, target_time: f64, goal: f64) -> Vec<GroupForecast> {
        self.forecast_data(&self.data, target_time, goal)
    }

    /// [`BayesFit::forecast`] for the groups of `data`, which need not be the fitted
    /// data: each group's μᵢ is conditional on this fit's posterior draws of the
    /// hyperparameters and on the group's own rows only (the random effects are
    /// independent given the hyperparameters). This is how a fit on a sample of the
    /// groups is applied to every group: a group's forecast does not depend on which
    /// other groups are in `data`, and when `data` is built with this fit's shift
    /// ([`GrowthData::with_shift`] with [`BayesFit::y_shift`]) a group that is also in
    /// the fitted data gets exactly, bit for bit, its [`BayesFit::forecast`]. For a group
    /// outside the fitted data this is the posterior predictive given the fitted
    /// hyperparameters, leaving out the (negligible for a large fit) information its
    /// own rows would add to them. In group-index order of `data`.
    pub fn forecast_data(
        &self,
        data: &GrowthData,
        target_time: f64,
        goal: f64,
    ) -> Vec<GroupForecast> {
        if !(target_time.is_finite() && goal.is_finite()) {
            return vec![NAN_FORECAST; data.n_groups()];
        }
        let draws: Vec<&PosteriorDraw> = self.draws.iter().flatten().collect();
        let nd = draws.len() as f64;
        let h = [1.0, target_time];
        let per_pattern: Vec<Vec<(usize, GroupForecast)>> = data
            .patterns
            .par_iter()
            .map(|p| {
                // Accumulators per member: Σm, Σm², Σv, ΣΦ, Σu0, Σu1, Σu0², Σu1², ΣP00, ΣP11.
                let mut acc = vec![[0.0f64; 10]; p.members.len()];
                for d in &draws {
                    let pm = cond_p(d, &p.a);
                    let s2 = d.sigma * d.sigma;
                    let ph = sym_vec(&pm, &h);
                    let v = s2 * (h[0] * ph[0] + h[1] * ph[1]);
                    let sd = v.max(0.0).sqrt();
                    let beta = [d.beta0 - data.y_shift, d.beta1];
                    let ab = sym_vec(&p.a, &beta);
                    let base = d.beta0 + d.beta1 * target_time;
                    for (k, &i) in p.members.iter().enumerate() {
                        let c = data.groups[i].c();
                        let b = [c[0] - ab[0], c[1] - ab[1]];
                        let u = sym_vec(&pm, &b);
                        let m = base + ph[0] * b[0] + ph[1] * b[1];
                        let prob = if sd > 0.0 {
                            normal_cdf((m - goal) / sd)
                        } else {
                            f64::from(u8::from(m >= goal))
                        };
                        let a = &mut acc[k];
                        a[0] += m;
                        a[1] += m * m;
                        a[2] += v;
                        a[3] += prob;
                        a[4] += u[0];
                        a[5] += u[1];
                        a[6] += u[0] * u[0];
                        a[7] += u[1] * u[1];
                        a[8] += s2 * pm[0];
                        a[9] += s2 * pm[2];
                    }
                }
                p.members
                    .iter()
                    .zip(&acc)
                    .map(|(&i, a)| {
                        let a = a.map(|v| v / nd);
                        let var = |e2: f64, e: f64, ev: f64| (ev + e2 - e * e).max(0.0).sqrt();
                        (
                            i,
                            GroupForecast {
                                mean: a[0],
                                sd: var(a[1], a[0], a[2]),
                                p_goal: a[3],
                                u0: a[4],
                                u1: a[5],
                                sd_u0: var(a[6], a[4], a[8]),
                                sd_u1: var(a[7], a[5], a[9]),
                            },
                        )
                    })
                    .collect()
            })
            .collect();
        let mut out = vec![NAN_FORECAST; data.n_groups()];
        for (i, f) in per_pattern.into_iter().flatten() {
            out[i] = f;
        }
        out
    }

    /// One draw of group `group`'s (u₀, u₁) per posterior draw (chains in order), each
    /// from its exact conditional N(Pb, σ²P) given that draw's hyperparameters;
    /// deterministic given `seed`. Errors if `group` is out of range.
    pub fn group_effect_draws(&self, group: usize, seed: u64) -> Result<Vec<[f64; 2]>> {
        if group >= self.data.n_groups() {
            return Err(GrowthError::InvalidInput(format!(
                "group {group} out of range ({} groups)",
                self.data.n_groups()
            )));
        }
        let a = self.data.patterns[self.data.group_pattern[group]].a;
        let c = self.data.groups[group].c();
        let mut rng = rand::rngs::StdRng::seed_from_u64(splitmix(seed ^ splitmix(group as u64)));
        Ok(self
            .draws
            .iter()
            .flatten()
            .map(|d| {
                let pm = cond_p(d, &a);
                let ab = sym_vec(&a, &[d.beta0 - self.data.y_shift, d.beta1]);
                let mu = sym_vec(&pm, &[c[0] - ab[0], c[1] - ab[1]]);
                let s2 = d.sigma * d.sigma;
                let (c00, c01, c11) = (s2 * pm[0], s2 * pm[1], s2 * pm[2]);
                let l00 = c00.max(0.0).sqrt();
                let l10 = if l00 > 0.0 { c01 / l00 } else { 0.0 };
                let l11 = (c11 - l10 * l10).max(0.0).sqrt();
                let z0: f64 = StandardNormal.sample(&mut rng);
                let z1: f64 = StandardNormal.sample(&mut rng);
                [mu[0] + l00 * z0, mu[1] + l10 * z0 + l11 * z1]
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_data() -> GrowthData {
        // 5 groups, unbalanced, non-integer times.
        let group = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4, 4];
        let time = [
            0.0, 1.0, 2.5, 0.0, 3.0, 1.0, 2.0, 3.0, 4.0, 2.0, 0.5, 1.5, 2.5,
        ];
        let y = [
            0.1, 0.5, 0.9, -0.4, 0.2, 1.0, 1.3, 1.1, 1.8, 0.3, -0.2, 0.4, 0.3,
        ];
        GrowthData::new(&group, &time, &y).expect("valid")
    }

    /// Dense reference: Σᵢ log N(yᵢ; Xᵢβ, σ²I + XᵢΣXᵢᵀ) by Gaussian elimination.
    fn dense_loglik(beta: [f64; 2], sig: [f64; 3], s2: f64) -> f64 {
        let group = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4, 4];
        let time = [
            0.0, 1.0, 2.5, 0.0, 3.0, 1.0, 2.0, 3.0, 4.0, 2.0, 0.5, 1.5, 2.5,
        ];
        let y = [
            0.1, 0.5, 0.9, -0.4, 0.2, 1.0, 1.3, 1.1, 1.8, 0.3, -0.2, 0.4, 0.3,
        ];
        let mut total = 0.0;
        for g in 0..5 {
            let rows: Vec<usize> = (0..13).filter(|&r| group[r] == g).collect();
            let n = rows.len();
            let mut v = vec![vec![0.0; n]; n];
            let mut r = vec![0.0; n];
            for (i, &ri) in rows.iter().enumerate() {
                r[i] = y[ri] - beta[0] - beta[1] * time[ri];
                for (j, &rj) in rows.iter().enumerate() {
                    let (ti, tj) = (time[ri], time[rj]);
                    v[i][j] = sig[0]
                        + sig[1] * (ti + tj)
                        + sig[2] * ti * tj
                        + if i == j { s2 } else { 0.0 };
                }
            }
            // Cholesky.
            let mut l = vec![vec![0.0; n]; n];
            for i in 0..n {
                for j in 0..=i {
                    let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
                    if i == j {
                        l[i][i] = (v[i][i] - s).sqrt();
                    } else {
                        l[i][j] = (v[i][j] - s) / l[j][j];
                    }
                }
            }
            let mut z = vec![0.0; n];
            for i in 0..n {
                let s: f64 = (0..i).map(|k| l[i][k] * z[k]).sum();
                z[i] = (r[i] - s) / l[i][i];
            }
            let logdet: f64 = (0..n).map(|i| 2.0 * l[i][i].ln()).sum();
            total -= 0.5
                * (n as f64 * std::f64::consts::TAU.ln()
                    + logdet
                    + z.iter().map(|v| v * v).sum::<f64>());
        }
        total
    }

    #[test]
    fn marginal_loglik_matches_dense_computation() {
        let data = small_data();
        let (t0, t1, rho, s2): (f64, f64, f64, f64) = (0.7, 0.2, -0.4, 0.09);
        let sig = [t0 * t0, rho * t0 * t1, t1 * t1];
        let l = [t0, rho * t1, t1 * (1.0 - rho * rho).sqrt()];
        let beta = [0.1, 0.25];
        let got = marginal_loglik(&data, [beta[0] - data.y_shift, beta[1]], l, s2).loglik;
        let want = dense_loglik(beta, sig, s2);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    #[test]
    fn log_density_gradient_matches_finite_differences() {
        let data = small_data();
        let priors = BayesPriors::default();
        for mode in [
            Mode::Full { eta: 2.0 },
            Mode::Independent,
            Mode::Fixed(VarianceComponents {
                sd_intercept: 0.5,
                sd_slope: 0.1,
                corr: 0.3,
                sd_residual: 0.4,
            }),
        ] {
            let m = Marginal {
                data: &data,
                priors: &priors,
                mode,
            };
            let x0 = [0.2, 0.3, -0.5, -1.5, -1.0, 0.4];
            let x = &x0[..mode.dim()];
            let mut g = vec![0.0; x.len()];
            m.log_density(x, &mut g);
            let mut scratch = vec![0.0; x.len()];
            for k in 0..x.len() {
                let h = 1e-6;
                let mut xp = x.to_vec();
                let mut xm = x.to_vec();
                xp[k] += h;
                xm[k] -= h;
                let fd = (m.log_density(&xp, &mut scratch) - m.log_density(&xm, &mut scratch))
                    / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{mode:?} k={k}: fd {fd} vs {}",
                    g[k]
                );
            }
        }
    }
}
