//! Logistic mixed growth model: a binomial GLMM with logit link fitted by maximising the
//! Laplace approximation of the marginal likelihood, as lme4's
//! `glmer(cbind(k, m − k) ~ x + (time | group), family = binomial)` does with its
//! default nAGQ = 1 (Bates, Mächler, Bolker & Walker 2015, "Fitting Linear
//! Mixed-Effects Models Using lme4", J. Stat. Softw. 67(1); Breslow & Clayton 1993,
//! "Approximate inference in generalized linear mixed models", JASA 88, 9–25, for the
//! Laplace approximation of GLMMs).
//!
//! # Model
//!
//! Row r of group i has kᵣ successes out of mᵣ trials (mᵣ = 1 for a 0/1 response):
//!
//! kᵣ | bᵢ ~ Binomial(mᵣ, μᵣ), logit μᵣ = ηᵣ = xᵣᵀβ + zᵣᵀbᵢ, bᵢ ~ N(0, Σ),
//!
//! with xᵣ = (1, covariates) and either zᵣ = 1 (`(1 | group)`,
//! [`RandomEffects::Intercept`]) or zᵣ = (1, tᵣ) (`(time | group)`,
//! [`RandomEffects::InterceptSlope`]: correlated random intercept and slope). Σ = ΛΛᵀ
//! with the *relative covariance factor* Λ lower triangular, parametrised by θ (lme4's
//! `theta`: Λ = (λ₀) or ((λ₀, 0), (λ₁, λ₂)); the binomial has no scale, so σ = 1), and
//! bᵢ = Λuᵢ with spherical uᵢ ~ N(0, I).
//!
//! # Estimation (as `glmer`, nAGQ = 1)
//!
//! For given (θ, β), penalised IRLS finds the conditional mode û of u (see the private
//! `pirls` module for the equations) and the Laplace deviance is
//!
//! d(θ, β) = −2 Σᵣ log p(kᵣ | û) + ‖û‖² + Σᵢ log det(I + ΛᵀZᵢᵀWᵢZᵢΛ),
//! W = diag(mᵣμᵣ(1 − μᵣ)) at û,
//!
//! −2 times the Laplace approximation of the log marginal likelihood
//! (log L(θ, β) = log ∫ p(k | u) φ(u) du). As lme4 does, the fit runs in two stages:
//!
//! 1. θ alone by Nelder–Mead, with β updated jointly with u by PIRLS at every θ (lme4's
//!    nAGQ = 0 stage, `nAGQ0initStep = TRUE`), which gives a start and a scale for β;
//! 2. (θ, β) together by Nelder–Mead on d(θ, β), β measured in units of its stage-1
//!    standard errors, u alone by PIRLS at every point (lme4's nAGQ = 1 stage).
//!
//! The optimum is then polished by Newton steps on d with central finite-difference
//! derivatives (the same derivatives lme4 computes after the fit, `deriv12` with
//! δ = 10⁻⁴), each kept only if it lowers d. d depends on θ only through ΛΛᵀ (a sign
//! change of a column of Λ is an orthogonal change of u), so θ is optimised without
//! bounds and reported with λ₀, λ₂ ≥ 0: SDs are ≥ 0 and |ρ| ≤ 1 by construction, and a
//! variance at zero or |ρ| = 1 is reached as a limit and flagged `singular` (λ₀ or λ₂ below
//! [`SINGULAR_TOL`](super::SINGULAR_TOL), as lme4's `isSingular()`).
//!
//! # What is reported
//!
//! * β̂ with SEs from `vcov` as lme4 computes it: 2·[H⁻¹]ββ, H the finite-difference
//!   Hessian of d over (θ, β) at the optimum, when there are fewer than 10,000 rows and
//!   20 parameters (lme4's `calc.derivs` default); otherwise, or when that matrix is not
//!   positive definite, the PIRLS approximation (RXᵀRX)⁻¹ with
//!   RXᵀRX = XᵀWX − Σᵢ CᵢᵀHᵢ⁻¹Cᵢ at the mode (lme4's `vcov(use.hessian = FALSE)`);
//! * SD of the random intercept and slope and their correlation, from Σ = ΛΛᵀ;
//! * log-likelihood −d/2 with the full binomial log-likelihood (log C(m, k) included),
//!   which is lme4's `logLik()`; deviance d, AIC, BIC (n = rows);
//! * BLUPs (conditional modes) b̂ᵢ = Λûᵢ (lme4's `ranef()`) with conditional SDs from
//!   ΛHᵢ⁻¹Λᵀ (`condVar`);
//! * evaluations of d, converged (both optimisers met their tolerances, every PIRLS
//!   converged, and lme4's gradient check max|min(scaled, absolute gradient)| < 2·10⁻³
//!   passed where derivatives were computed).

mod data;
mod dense;
mod family;
mod pirls;
mod sim;

use serde::{Deserialize, Serialize};

pub use data::{COLLINEARITY_TOL, GlmmData, GlmmRows, INTERCEPT};
pub use sim::{BinomialGrowthSpec, SimulatedBinomialGrowth, simulate_binomial};

use super::linalg::{Sym, l_s_lt};
use super::lmm::SINGULAR_TOL;
use super::optim::{NmOptions, minimize};
use super::{GrowthError, MIN_GROUPS, Result};
use crate::numeric::normal_cdf;
use dense::{chol_inverse, cholesky};
use pirls::{Lam, PirlsOptions, group_hinv, laplace_joint, laplace_u, rx_cross};

/// lme4's `check.conv.nobsmax`: finite-difference derivatives (and the Hessian-based
/// `vcov`) only below this many rows, by default.
pub const HESSIAN_MAX_OBS: usize = 10_000;
/// lme4's `check.conv.nparmax` for glmer: … and below this many parameters (θ and β).
pub const HESSIAN_MAX_PARAMS: usize = 20;
/// lme4's `check.conv.grad` tolerance.
pub const GRADIENT_TOL: f64 = 2e-3;
/// Step of the central finite differences (lme4's `deriv12` default).
const FD_DELTA: f64 = 1e-4;

/// Random-effects structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RandomEffects {
    /// `(1 | group)`: a random intercept.
    Intercept,
    /// `(time | group)`: correlated random intercept and slope on the time column.
    #[serde(rename = "slope")]
    InterceptSlope,
}

impl RandomEffects {
    /// Number of variance parameters θ (1 or 3).
    pub fn n_theta(self) -> usize {
        match self {
            Self::Intercept => 1,
            Self::InterceptSlope => 3,
        }
    }

    /// Random effects per group (1 or 2).
    pub fn per_group(self) -> usize {
        match self {
            Self::Intercept => 1,
            Self::InterceptSlope => 2,
        }
    }

    /// Fewest groups accepted: 2 for a random intercept (lme4's `check.nlev.gtr.1`),
    /// [`MIN_GROUPS`] for intercept and slope.
    pub fn min_groups(self) -> usize {
        match self {
            Self::Intercept => 2,
            Self::InterceptSlope => MIN_GROUPS,
        }
    }

    fn lam(self, theta: &[f64]) -> Lam {
        match self {
            Self::Intercept => [theta[0], 0.0, 0.0],
            Self::InterceptSlope => [theta[0], theta[1], theta[2]],
        }
    }
}

/// How the covariance of β̂ is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VcovChoice {
    /// lme4's default: [`VcovChoice::Hessian`] below [`HESSIAN_MAX_OBS`] rows and
    /// [`HESSIAN_MAX_PARAMS`] parameters, else [`VcovChoice::Pirls`].
    Auto,
    /// 2·[H⁻¹]ββ from the finite-difference Hessian of d(θ, β) (falls back to the PIRLS
    /// approximation when that is not positive definite).
    Hessian,
    /// (RXᵀRX)⁻¹ from the PIRLS system at the mode.
    Pirls,
}

/// The covariance of β̂ that was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VcovMethod {
    /// From the finite-difference Hessian of the Laplace deviance.
    Hessian,
    /// From the PIRLS approximation (RXᵀRX)⁻¹.
    Pirls,
}

/// Settings of [`fit_glmm`].
#[derive(Debug, Clone, PartialEq)]
pub struct GlmmConfig {
    /// Random-effects structure (default [`RandomEffects::InterceptSlope`]).
    pub random: RandomEffects,
    /// Budget of deviance evaluations per Nelder–Mead stage (default 20,000).
    pub max_evals: usize,
    /// Nelder–Mead convergence: every vertex within this max-norm distance of the best
    /// (θ units, and stage-1 SEs for β; default 1e-6)…
    pub xtol: f64,
    /// …and deviance values within this absolute spread (default 1e-9).
    pub ftol: f64,
    /// PIRLS tolerance on the Newton decrement (half-deviance units, default 1e-10).
    pub pirls_tol: f64,
    /// PIRLS Newton steps per mode (default 100).
    pub pirls_max_iter: usize,
    /// Newton polishing of the optimum with finite-difference derivatives (default true).
    pub polish: bool,
    /// Covariance of β̂ (default [`VcovChoice::Auto`], as lme4).
    pub vcov: VcovChoice,
}

impl Default for GlmmConfig {
    fn default() -> Self {
        Self {
            random: RandomEffects::InterceptSlope,
            max_evals: 20_000,
            xtol: 1e-6,
            ftol: 1e-9,
            pirls_tol: 1e-10,
            pirls_max_iter: 100,
            polish: true,
            vcov: VcovChoice::Auto,
        }
    }
}

impl GlmmConfig {
    /// Checks the settings (budgets ≥ 10, tolerances > 0 and finite).
    pub fn validate(&self) -> Result<()> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        if self.max_evals < 10
            || self.pirls_max_iter < 1
            || !pos(self.xtol)
            || !pos(self.ftol)
            || !pos(self.pirls_tol)
        {
            return Err(GrowthError::InvalidConfig(format!(
                "glmm: need max_evals >= 10, pirls_max_iter >= 1, xtol, ftol, pirls_tol > 0; got {self:?}"
            )));
        }
        Ok(())
    }
}

/// One fixed effect on the logit scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlmmFixed {
    /// Term name (`(Intercept)` or the covariate's).
    pub term: String,
    /// Estimate (log-odds; per unit of the covariate).
    pub estimate: f64,
    /// Standard error, √ of the diagonal of `vcov_fixed`.
    pub se: f64,
    /// estimate / se (lme4's `z value`).
    pub z_value: f64,
}

/// Conditional mode of one group's random effects (logit scale).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GlmmBlup {
    /// Random intercept b₀ᵢ.
    pub intercept: f64,
    /// Random slope b₁ᵢ (`None` for the intercept-only model).
    pub slope: Option<f64>,
    /// Conditional SD of b₀ᵢ (Laplace: √(ΛHᵢ⁻¹Λᵀ)₀₀).
    pub sd_intercept: f64,
    /// Conditional SD of b₁ᵢ.
    pub sd_slope: Option<f64>,
}

/// Result of [`fit_glmm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlmmFit {
    /// Random-effects structure fitted.
    pub random: RandomEffects,
    /// Fixed effects in design order, `(Intercept)` first.
    pub fixed: Vec<GlmmFixed>,
    /// Covariance of β̂ (p × p, design order).
    pub vcov_fixed: Vec<Vec<f64>>,
    /// How `vcov_fixed` was computed.
    pub vcov_method: VcovMethod,
    /// SD of the random intercepts τ₀ (logits).
    pub sd_intercept: f64,
    /// SD of the random slopes τ₁ (logits per time unit); `None` for intercept only.
    pub sd_slope: Option<f64>,
    /// Correlation of random intercept and slope (0 when an SD is 0); `None` for
    /// intercept only.
    pub corr: Option<f64>,
    /// θ (lme4's `getME(fit, "theta")`): (λ₀) or (λ₀, λ₁, λ₂), with λ₀, λ₂ ≥ 0.
    pub theta: Vec<f64>,
    /// Laplace deviance d = −2 log L (lme4's `-2*log(L)` column of the summary).
    pub deviance: f64,
    /// −d/2 (lme4's `logLik()`).
    pub log_likelihood: f64,
    /// d + 2·n_params.
    pub aic: f64,
    /// d + log(n_obs)·n_params.
    pub bic: f64,
    /// Parameters: p fixed effects + θ.
    pub n_params: usize,
    /// Rows.
    pub n_obs: usize,
    /// Groups.
    pub n_groups: usize,
    /// Conditional modes, one per group in group-index order.
    pub blups: Vec<GlmmBlup>,
    /// Deviance evaluations in total (both stages, polishing and derivatives).
    pub evaluations: usize,
    /// … of which in stage 1 (θ with β by PIRLS).
    pub evaluations_stage1: usize,
    /// Whether the fit converged (see the module docs).
    pub converged: bool,
    /// Boundary fit: λ₀ (or λ₂) below [`SINGULAR_TOL`](super::SINGULAR_TOL).
    pub singular: bool,
    /// lme4's convergence statistic max|min(scaled gradient, gradient)| at the optimum,
    /// when derivatives were computed.
    pub max_gradient: Option<f64>,
}

/// A group's growth forecast under a fitted `y ~ time + (time | group)` GLMM
/// ([`GlmmFit::growth_forecasts`]), on the logit scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GlmmForecast {
    /// The group's predicted log-odds of a success at the target time,
    /// η̂ᵢ(t*) = β̂₀ + b̂₀ᵢ + (β̂₁ + b̂₁ᵢ)·t*.
    pub eta: f64,
    /// Approximate SD of ηᵢ(t*) − β̂₀ (the goal is set relative to β̂₀):
    /// √(t*²·Var β̂₁ + hᵀ Cᵢ h), h = (1, t*), Cᵢ = ΛHᵢ⁻¹Λᵀ the Laplace conditional
    /// covariance of bᵢ.
    pub sd: f64,
    /// P(ηᵢ(t*) ≥ β̂₀ + offset) under the normal approximation:
    /// Φ((β̂₁t* + b̂₀ᵢ + b̂₁ᵢt* − offset) / sd).
    pub p_goal: f64,
    /// Rows (time points) of the group.
    pub n_rows: usize,
}

impl GlmmFit {
    /// Growth forecasts of the groups of `data` — which need not be the fitted data
    /// (build it with [`GlmmData::for_prediction_from_ids`]) — at time `target_time`:
    /// each group's random effects at their conditional mode given this fit's θ and β
    /// and the group's own rows only (PIRLS, as `ranef()` of a model refitted with θ, β
    /// fixed), with their Laplace conditional covariance ΛHᵢ⁻¹Λᵀ (lme4's `condVar`), so a
    /// group's forecast does not depend on which other groups are in `data`, and a group
    /// of the fitted data gets its own BLUP.
    ///
    /// The goal is the fitted intercept plus `goal_offset` (log-odds): with time 0 the
    /// current period, β̂₀ is the typical group's current log-odds, and the goal asks for
    /// `goal_offset` more. P(ηᵢ(t*) ≥ β̂₀ + offset) depends on β̂ only through β̂₁, so
    /// the forecast's variance is t*²·Var β̂₁ (from `vcov_fixed`) plus the conditional
    /// variance of b̂₀ᵢ + b̂₁ᵢt*; the correlation of β̂₁ with b̂ᵢ is ignored, as in
    /// prediction intervals built from lme4's `vcov` and `condVar` (e.g. `merTools`'
    /// `predictInterval`). Normal approximation of the conditional law of bᵢ (the
    /// Laplace approximation the fit rests on).
    ///
    /// Errors: [`GrowthError::InvalidConfig`] unless this is an intercept-and-slope fit
    /// with fixed effects `(Intercept)` and one covariate (the time) and `data` has the
    /// same terms and a time column, or when the inputs are not finite.
    pub fn growth_forecasts(
        &self,
        data: &GlmmData,
        target_time: f64,
        goal_offset: f64,
    ) -> Result<Vec<GlmmForecast>> {
        let terms: Vec<&str> = self.fixed.iter().map(|f| f.term.as_str()).collect();
        if self.random != RandomEffects::InterceptSlope
            || terms.len() != 2
            || data.terms != terms
            || !data.has_time
            || !(target_time.is_finite() && goal_offset.is_finite())
        {
            return Err(GrowthError::InvalidConfig(format!(
                "growth_forecasts needs an intercept-and-slope fit of y ~ time + (time | group) and data with its terms and a time column (fit terms {terms:?}, data terms {:?}, target {target_time}, offset {goal_offset})",
                data.terms
            )));
        }
        let beta = [self.fixed[0].estimate, self.fixed[1].estimate];
        let var_b1 = self.vcov_fixed[1][1].max(0.0);
        let lam = self.random.lam(&self.theta);
        let opts = PirlsOptions {
            tol: 1e-10,
            max_iter: 100,
        };
        let mut u = vec![[0.0; 2]; data.n_groups()];
        laplace_u(data, &lam, &beta, &mut u, &opts);
        let hinv = group_hinv(data, &lam, &beta, &u);
        let t = target_time;
        Ok(u.iter()
            .zip(&hinv)
            .enumerate()
            .map(|(i, (ui, hi))| {
                let (b, c) = conditional_effect(&lam, ui, hi);
                let var = t * t * var_b1 + c[0] + 2.0 * t * c[1] + t * t * c[2];
                let sd = var.max(0.0).sqrt();
                let gain = beta[1] * t + b[0] + b[1] * t;
                let p_goal = if sd > 0.0 {
                    normal_cdf((gain - goal_offset) / sd)
                } else if gain >= goal_offset {
                    1.0
                } else {
                    0.0
                };
                GlmmForecast {
                    eta: beta[0] + gain,
                    sd,
                    p_goal,
                    n_rows: data.starts[i + 1] - data.starts[i],
                }
            })
            .collect())
    }
}

/// A group's random effects at their conditional mode, b̂ᵢ = Λûᵢ, and their Laplace
/// conditional covariance ΛHᵢ⁻¹Λᵀ (lme4's `ranef()` and `condVar`).
fn conditional_effect(lam: &Lam, u: &[f64; 2], hinv: &Sym) -> ([f64; 2], Sym) {
    let b = [lam[0] * u[0], lam[1] * u[0] + lam[2] * u[1]];
    (b, l_s_lt(lam, hinv))
}

fn check_data(data: &GlmmData, random: RandomEffects) -> Result<()> {
    let groups = data.n_groups();
    if groups < random.min_groups() {
        return Err(GrowthError::TooFewGroups {
            groups,
            min: random.min_groups(),
        });
    }
    if random == RandomEffects::InterceptSlope {
        if !data.has_time {
            return Err(GrowthError::InvalidConfig(
                "a random slope needs a time column (GlmmRows::time)".into(),
            ));
        }
        if data.groups_with_slope_info == 0 {
            return Err(GrowthError::SlopeNotIdentifiable(
                "no group is observed at two distinct times: the random-slope variance is not identifiable".into(),
            ));
        }
    }
    let n_re = random.per_group() * groups;
    // glmer's check.nobs.vs.nRE (with allow.n = TRUE for GLMMs): fewer rows than random
    // effects is refused.
    if data.n_obs() < n_re {
        return Err(GrowthError::TooFewObservations {
            n_obs: data.n_obs(),
            n_random_effects: n_re,
        });
    }
    Ok(())
}

/// The Laplace deviance d(θ, β) (−2 × the Laplace approximation of the log marginal
/// likelihood, lme4's `devfun` at nAGQ = 1) at θ (lme4's order: (λ₀) or (λ₀, λ₁, λ₂)) and
/// β (design order), the random effects at their conditional modes.
pub fn glmm_deviance(
    data: &GlmmData,
    random: RandomEffects,
    theta: &[f64],
    beta: &[f64],
) -> Result<f64> {
    check_data(data, random)?;
    if theta.len() != random.n_theta()
        || beta.len() != data.p
        || theta.iter().chain(beta).any(|v| !v.is_finite())
    {
        return Err(GrowthError::InvalidConfig(format!(
            "glmm_deviance: need {} finite theta values and {} finite beta values, got {theta:?} and {beta:?}",
            random.n_theta(),
            data.p
        )));
    }
    let opts = PirlsOptions {
        tol: 1e-12,
        max_iter: 200,
    };
    let mut u = vec![[0.0; 2]; data.n_groups()];
    Ok(laplace_u(data, &random.lam(theta), beta, &mut u, &opts).deviance)
}

/// Central finite-difference gradient and Hessian of `f` at `x` (lme4's `deriv12`):
/// (f(x), gradient, Hessian row-major, evaluations).
fn derivatives<F: FnMut(&[f64]) -> f64>(f: &mut F, x: &[f64]) -> (f64, Vec<f64>, Vec<f64>, usize) {
    let k = x.len();
    let d = FD_DELTA;
    let f0 = f(x);
    let mut evals = 1;
    let mut at = |shift: &[(usize, f64)], evals: &mut usize| {
        let mut y = x.to_vec();
        for &(j, s) in shift {
            y[j] += s;
        }
        *evals += 1;
        f(&y)
    };
    let mut grad = vec![0.0; k];
    let mut hess = vec![0.0; k * k];
    for j in 0..k {
        let fp = at(&[(j, d)], &mut evals);
        let fm = at(&[(j, -d)], &mut evals);
        grad[j] = (fp - fm) / (2.0 * d);
        hess[j * k + j] = (fp - 2.0 * f0 + fm) / (d * d);
        for l in 0..j {
            let fpp = at(&[(j, d), (l, d)], &mut evals);
            let fpm = at(&[(j, d), (l, -d)], &mut evals);
            let fmp = at(&[(j, -d), (l, d)], &mut evals);
            let fmm = at(&[(j, -d), (l, -d)], &mut evals);
            let v = (fpp - fpm - fmp + fmm) / (4.0 * d * d);
            hess[j * k + l] = v;
            hess[l * k + j] = v;
        }
    }
    (f0, grad, hess, evals)
}

/// lme4's gradient statistic: max over components of min(|scaled|, |absolute|), the
/// scaled gradient being R⁻¹g with RᵀR = H (`solve(chol(H), g)`); the absolute
/// gradient alone when H is not positive definite.
fn gradient_statistic(grad: &[f64], hess: &[f64]) -> f64 {
    let k = grad.len();
    let abs_max = || grad.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
    let Some(l) = cholesky(hess, k) else {
        return abs_max();
    };
    // R = Lᵀ (upper): back substitution R s = g.
    let mut s = grad.to_vec();
    for i in (0..k).rev() {
        let mut v = s[i];
        for j in i + 1..k {
            v -= l[j * k + i] * s[j];
        }
        s[i] = v / l[i * k + i];
    }
    s.iter()
        .zip(grad)
        .fold(0.0_f64, |m, (a, b)| m.max(a.abs().min(b.abs())))
}

/// Stage 2's scale of each fixed effect: the SD of β̂ from the PIRLS information at
/// stage 1's optimum (1 where that is not positive definite or not finite), so the
/// simplex moves every coordinate by a comparable amount.
fn fixed_scale(data: &GlmmData, lam: &Lam, beta: &[f64], u: &[[f64; 2]]) -> Vec<f64> {
    let p = data.p;
    cholesky(&rx_cross(data, lam, beta, u), p)
        .map(|l| chol_inverse(&l, p))
        .map_or(vec![1.0; p], |inv| {
            (0..p)
                .map(|j| {
                    let v = inv[j * p + j].sqrt();
                    if v.is_finite() && v > 0.0 { v } else { 1.0 }
                })
                .collect()
        })
}

/// Up to five Newton steps (when `polish`) on finite-difference derivatives of `dev_at`
/// from `point`, each kept only if it lowers the deviance; then the derivatives at the
/// final point (for vcov and the gradient check). Returns (gradient, Hessian) there and
/// the deviance evaluations spent.
fn newton_polish(
    dev_at: &mut impl FnMut(&[f64]) -> f64,
    point: &mut Vec<f64>,
    polish: bool,
) -> ((Vec<f64>, Vec<f64>), usize) {
    let n_params = point.len();
    let mut evals = 0;
    let mut derivs = (Vec::new(), Vec::new());
    for round in 0..6 {
        let (f0, grad, hess, e) = derivatives(&mut *dev_at, point);
        evals += e;
        let step = if polish && round < 5 {
            cholesky(&hess, n_params).map(|l| {
                let mut s: Vec<f64> = grad.iter().map(|g| -g).collect();
                dense::chol_solve(&l, n_params, &mut s);
                s
            })
        } else {
            None
        };
        derivs = (grad, hess);
        let Some(step) = step else { break };
        if step.iter().fold(0.0_f64, |m, s| m.max(s.abs())) < 1e-10 {
            break;
        }
        let cand: Vec<f64> = point.iter().zip(&step).map(|(a, s)| a + s).collect();
        let fc = dev_at(&cand);
        evals += 1;
        if fc < f0 {
            *point = cand;
        } else {
            break;
        }
    }
    (derivs, evals)
}

/// θ with canonical signs (λ₀ ≥ 0, λ₂ ≥ 0; flipping λ₀ flips λ₁ with it): the same Σ.
fn canonical_theta(theta: &[f64]) -> Vec<f64> {
    let mut theta = theta.to_vec();
    let nt = theta.len();
    if theta[0] < 0.0 {
        theta[0] = -theta[0];
        if nt == 3 {
            theta[1] = -theta[1];
        }
    }
    if nt == 3 {
        theta[2] = theta[2].abs();
    }
    theta
}

/// vcov of β̂ (row-major p × p): twice the inverse of the deviance's Hessian in (θ, β),
/// its β block, when `hessian` (over the `nt` θ's then β) is given and positive
/// definite; else the PIRLS information's inverse at the modes `u` (as glmer's
/// `use.hessian = FALSE`).
fn fixed_vcov(
    data: &GlmmData,
    lam: &Lam,
    beta: &[f64],
    u: &[[f64; 2]],
    hessian: Option<&[f64]>,
    nt: usize,
) -> Result<(Vec<f64>, VcovMethod)> {
    let p = data.p;
    let n_params = nt + p;
    let hessian_vcov = hessian.and_then(|h| {
        let l = cholesky(h, n_params)?;
        let inv = chol_inverse(&l, n_params);
        let v: Vec<f64> = (0..p)
            .flat_map(|i| {
                let inv = &inv;
                (0..p).map(move |j| 2.0 * inv[(nt + i) * n_params + nt + j])
            })
            .collect();
        cholesky(&v, p).map(|_| v)
    });
    match hessian_vcov {
        Some(v) => Ok((v, VcovMethod::Hessian)),
        None => {
            let v = cholesky(&rx_cross(data, lam, beta, u), p)
                .map(|l| chol_inverse(&l, p))
                .ok_or_else(|| {
                    GrowthError::Degenerate(
                        "the fixed-effect information matrix is not positive definite".into(),
                    )
                })?;
            Ok((v, VcovMethod::Pirls))
        }
    }
}

/// (SD of the intercepts, SD of the slopes, their correlation) of Σ = ΛΛᵀ; the slope's
/// SD and the correlation only with a random slope.
fn variance_components(lam: &Lam, slope: bool) -> (f64, Option<f64>, Option<f64>) {
    let cov = l_s_lt(lam, &[1.0, 0.0, 1.0]);
    let sd_intercept = cov[0].max(0.0).sqrt();
    if !slope {
        return (sd_intercept, None, None);
    }
    let sd1 = cov[2].max(0.0).sqrt();
    let r = if sd_intercept > 0.0 && sd1 > 0.0 {
        (cov[1] / (sd_intercept * sd1)).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    (sd_intercept, Some(sd1), Some(r))
}

/// Each group's conditional mode of its random effects b = Λu and its conditional SDs
/// (Laplace: the inverse of the group's penalised Hessian).
fn conditional_modes(
    data: &GlmmData,
    lam: &Lam,
    beta: &[f64],
    u: &[[f64; 2]],
    slope: bool,
) -> Vec<GlmmBlup> {
    let hinv = group_hinv(data, lam, beta, u);
    u.iter()
        .zip(&hinv)
        .map(|(ui, hi)| {
            let (b, cv) = conditional_effect(lam, ui, hi);
            GlmmBlup {
                intercept: b[0],
                slope: slope.then_some(b[1]),
                sd_intercept: cv[0].max(0.0).sqrt(),
                sd_slope: slope.then(|| cv[2].max(0.0).sqrt()),
            }
        })
        .collect()
}

/// Fits the binomial GLMM by the Laplace approximation (see the module docs).
///
/// Errors: [`GrowthError::InvalidConfig`] (bad settings; a random slope without a time
/// column), [`GrowthError::TooFewGroups`] (fewer than
/// [`RandomEffects::min_groups`]), [`GrowthError::SlopeNotIdentifiable`] (no group
/// observed at two times), [`GrowthError::TooFewObservations`] (fewer rows than random
/// effects), [`GrowthError::Degenerate`] when the deviance is not finite anywhere the
/// optimiser looked (e.g. complete separation). Boundary estimates are returned with
/// `singular = true`; a fit that did not meet its tolerances has `converged = false`.
///
/// (About 150 lines, on purpose: lme4's two optimisation stages and the polish share
/// the warm-started modes `u` and the evaluation count, so they stay in one flow; every
/// self-contained step is a helper — [`fixed_scale`], [`newton_polish`],
/// [`canonical_theta`], [`fixed_vcov`], [`variance_components`], [`conditional_modes`].)
pub fn fit_glmm(data: &GlmmData, config: &GlmmConfig) -> Result<GlmmFit> {
    config.validate()?;
    let random = config.random;
    check_data(data, random)?;
    let p = data.p;
    let nt = random.n_theta();
    let n_groups = data.n_groups();
    let opts = PirlsOptions {
        tol: config.pirls_tol,
        max_iter: config.pirls_max_iter,
    };
    let nm = NmOptions {
        max_evals: config.max_evals,
        ftol_abs: config.ftol,
        ftol_rel: 0.0,
        xtol: config.xtol,
        step: 0.5,
    };

    // Stage 1: θ, with (u, β) jointly by PIRLS (warm-started from the last evaluation).
    let theta0: Vec<f64> = match random {
        RandomEffects::Intercept => vec![1.0],
        RandomEffects::InterceptSlope => vec![1.0, 0.0, 1.0],
    };
    let mut beta = vec![0.0; p];
    let mut u = vec![[0.0; 2]; n_groups];
    let stage1 = minimize(
        |th| laplace_joint(data, &random.lam(th), &mut beta, &mut u, &opts).deviance,
        &theta0,
        &nm,
    );
    if !stage1.f.is_finite() {
        return Err(GrowthError::Degenerate(
            "the Laplace deviance is not finite anywhere the optimiser looked (complete separation?)"
                .into(),
        ));
    }
    let lam1 = random.lam(&stage1.x);
    let mut evals = stage1.evals + 1;
    laplace_joint(data, &lam1, &mut beta, &mut u, &opts);
    let beta1 = beta.clone();
    let scale = fixed_scale(data, &lam1, &beta1, &u);

    // Stage 2: (θ, β) with u by PIRLS; β = β₁ + scale ∘ z.
    let split = |x: &[f64]| -> (Vec<f64>, Vec<f64>) {
        let th = x[..nt].to_vec();
        let b = (0..p).map(|j| beta1[j] + scale[j] * x[nt + j]).collect();
        (th, b)
    };
    let mut x0 = stage1.x.clone();
    x0.extend(std::iter::repeat_n(0.0, p));
    let stage2 = minimize(
        |x| {
            let (th, b) = split(x);
            laplace_u(data, &random.lam(&th), &b, &mut u, &opts).deviance
        },
        &x0,
        &NmOptions { step: 0.2, ..nm },
    );
    evals += stage2.evals;
    let (th2, b2) = split(&stage2.x);
    let mut point: Vec<f64> = th2.into_iter().chain(b2).collect();
    if !stage2.f.is_finite() {
        return Err(GrowthError::Degenerate(
            "the Laplace deviance is not finite at the stage-2 optimum".into(),
        ));
    }

    // Polish by Newton steps on finite-difference derivatives in (θ, β); keep the
    // derivatives at the final point for vcov and the gradient check.
    let n_params = nt + p;
    let want_hessian = match config.vcov {
        VcovChoice::Auto => data.n_obs() < HESSIAN_MAX_OBS && n_params < HESSIAN_MAX_PARAMS,
        VcovChoice::Hessian => true,
        VcovChoice::Pirls => false,
    };
    let mut dev_at =
        |y: &[f64]| laplace_u(data, &random.lam(&y[..nt]), &y[nt..], &mut u, &opts).deviance;
    let derivs = if config.polish || want_hessian {
        let (d, e) = newton_polish(&mut dev_at, &mut point, config.polish);
        evals += e;
        Some(d)
    } else {
        None
    };
    let max_gradient = derivs.as_ref().map(|(g, h)| gradient_statistic(g, h));

    // Canonical signs (λ₀ ≥ 0, λ₂ ≥ 0) and the final modes.
    let theta = canonical_theta(&point[..nt]);
    let beta: Vec<f64> = point[nt..].to_vec();
    let lam = random.lam(&theta);
    let mut u = vec![[0.0; 2]; n_groups];
    let fin = laplace_u(data, &lam, &beta, &mut u, &opts);
    evals += 1;
    if !fin.deviance.is_finite() {
        return Err(GrowthError::Degenerate(
            "the Laplace deviance is not finite at the optimum".into(),
        ));
    }

    // vcov of β̂.
    let hessian = derivs
        .as_ref()
        .filter(|_| want_hessian)
        .map(|(_, h)| h.as_slice());
    let (vcov, vcov_method) = fixed_vcov(data, &lam, &beta, &u, hessian, nt)?;
    let vcov_fixed: Vec<Vec<f64>> = vcov.chunks_exact(p).map(<[f64]>::to_vec).collect();
    let fixed = data
        .terms
        .iter()
        .enumerate()
        .map(|(j, term)| {
            let se = vcov[j * p + j].sqrt();
            GlmmFixed {
                term: term.clone(),
                estimate: beta[j],
                se,
                z_value: beta[j] / se,
            }
        })
        .collect();

    // Variance components and BLUPs.
    let slope = random == RandomEffects::InterceptSlope;
    let (sd_intercept, sd_slope, corr) = variance_components(&lam, slope);
    let blups = conditional_modes(data, &lam, &beta, &u, slope);

    let deviance = fin.deviance;
    let n = data.n_obs();
    let singular = theta[0] < SINGULAR_TOL || (slope && theta[2] < SINGULAR_TOL);
    let converged = stage1.converged
        && stage2.converged
        && fin.converged
        && max_gradient.is_none_or(|g| g < GRADIENT_TOL);
    Ok(GlmmFit {
        random,
        fixed,
        vcov_fixed,
        vcov_method,
        sd_intercept,
        sd_slope,
        corr,
        theta,
        deviance,
        log_likelihood: -0.5 * deviance,
        aic: deviance + 2.0 * n_params as f64,
        bic: deviance + (n as f64).ln() * n_params as f64,
        n_params,
        n_obs: n,
        n_groups,
        blups,
        evaluations: evals,
        evaluations_stage1: stage1.evals,
        converged,
        singular,
        max_gradient,
    })
}
