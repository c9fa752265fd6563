//! Linear mixed growth model by REML or ML, fitted as lme4's
//! `lmer(y ~ time + (time | group))` fits it (Bates, Mächler, Bolker & Walker 2015,
//! "Fitting Linear Mixed-Effects Models Using lme4", J. Stat. Softw. 67(1), §3).
//!
//! Model: yᵢ = Xᵢβ + Xᵢuᵢ + εᵢ with Xᵢ = [1, tᵢ], uᵢ ~ N(0, Σ), εᵢ ~ N(0, σ²I).
//! Σ = σ²ΛΛᵀ with the *relative covariance factor* Λ = [[θ₁, 0], [θ₂, θ₃]] (lme4's
//! `theta`). For a given θ, β and σ² are profiled out in closed form and the
//! criterion is
//!
//! * ML:   d(θ)  = log|L_θ|² + n [1 + log(2π r²(θ)/n)]
//! * REML: d_R(θ) = log|L_θ|² + log|R_X|² + (n−p) [1 + log(2π r²(θ)/(n−p))]
//!
//! (lme4 eqs. 34 and 41) with |L_θ|² = Πᵢ det(I + ΛᵀAᵢΛ), Aᵢ = XᵢᵀXᵢ,
//! |R_X|² = det(XᵀW⁻¹X), W = V/σ², and r²(θ) the penalised residual sum of squares
//! (= (y − Xβ̂)ᵀW⁻¹(y − Xβ̂) at the GLS estimate β̂). By Woodbury, every group enters
//! through a 2 × 2 system: Wᵢ⁻¹ = I − XᵢPᵢXᵢᵀ with Pᵢ = Λ(I + ΛᵀAᵢΛ)⁻¹Λᵀ, so no n × n
//! matrix is formed, and groups sharing Aᵢ are accumulated once (see
//! [`GrowthData`](super::GrowthData)). θ is optimised by Nelder–Mead (unconstrained:
//! the criterion depends on θ only through ΛΛᵀ, which is positive semi-definite for
//! every θ, so boundary fits — a zero variance or |ρ| = 1 — are reached as limits and
//! flagged as `singular`, as lme4's `isSingular()` does).
//!
//! Reported as lme4 reports them: `criterion` is `REMLcrit()` for REML and
//! `deviance()` for ML (−2 log-likelihood, −2 restricted log-likelihood for REML);
//! SEs of β are from `vcov()` = σ̂² (XᵀW⁻¹X)⁻¹; BLUPs are the conditional modes
//! (`ranef()`) with conditional SDs from σ̂²Pᵢ (`condVar`, β treated as known).

use serde::{Deserialize, Serialize};

use super::data::GrowthData;
use super::linalg::{Sym, full, l_s_lt, lt_s_l, mat_vec, mul, sym_det, sym_inv, sym_vec, tr_sym};
use super::optim::{NmOptions, minimize};
use super::{GrowthError, Result};

/// Number of fixed effects (intercept, slope).
const P_FIXED: f64 = 2.0;
/// lme4's default tolerance of `isSingular()` on the diagonal of Λ.
pub const SINGULAR_TOL: f64 = 1e-4;

/// Estimation criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LmmMethod {
    /// Restricted maximum likelihood (lme4's default, `REML = TRUE`).
    Reml,
    /// Maximum likelihood (`REML = FALSE`).
    Ml,
}

/// Settings of [`fit_lmm`].
#[derive(Debug, Clone, PartialEq)]
pub struct LmmConfig {
    /// REML (default) or ML.
    pub method: LmmMethod,
    /// Budget of criterion evaluations for the optimiser (default 10,000).
    pub max_evals: usize,
    /// Convergence: simplex vertices within this distance of the best θ (max-norm,
    /// relative-factor units; default 1e-8)…
    pub xtol: f64,
    /// …and criterion values within this absolute spread (default 1e-9).
    pub ftol: f64,
    /// Refuse fits with n_obs ≤ 2·n_groups (as lme4's default
    /// `check.nobs.vs.nRE = "stop"`): random effects and residual variance are then
    /// probably unidentifiable. Default true.
    pub check_nobs_vs_nre: bool,
}

impl Default for LmmConfig {
    fn default() -> Self {
        Self {
            method: LmmMethod::Reml,
            max_evals: 10_000,
            xtol: 1e-8,
            ftol: 1e-9,
            check_nobs_vs_nre: true,
        }
    }
}

/// Variance components of the growth model, all on the scale of y (θ units).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VarianceComponents {
    /// SD of the random intercepts τ₀ (y units).
    pub sd_intercept: f64,
    /// SD of the random slopes τ₁ (y units per time unit).
    pub sd_slope: f64,
    /// Correlation ρ of random intercept and slope, in [−1, 1].
    pub corr: f64,
    /// Residual SD σ (y units).
    pub sd_residual: f64,
}

impl VarianceComponents {
    /// Checks SDs ≥ 0 (σ > 0) and |ρ| ≤ 1, all finite.
    pub fn validate(&self) -> Result<()> {
        let ok = self.sd_intercept.is_finite()
            && self.sd_intercept >= 0.0
            && self.sd_slope.is_finite()
            && self.sd_slope >= 0.0
            && self.corr.is_finite()
            && self.corr.abs() <= 1.0
            && self.sd_residual.is_finite()
            && self.sd_residual > 0.0;
        if ok {
            Ok(())
        } else {
            Err(GrowthError::InvalidConfig(format!(
                "variance components need SDs >= 0, sd_residual > 0 and |corr| <= 1, got {self:?}"
            )))
        }
    }

    /// Lower Cholesky factor of Σ, [[τ₀, 0], [ρτ₁, τ₁√(1−ρ²)]] as (l00, l10, l11).
    pub(crate) fn chol(&self) -> [f64; 3] {
        let r = self.corr.clamp(-1.0, 1.0);
        [
            self.sd_intercept,
            r * self.sd_slope,
            self.sd_slope * (1.0 - r * r).max(0.0).sqrt(),
        ]
    }
}

/// One fixed effect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FixedEffect {
    /// Estimate (y units; the slope per time unit).
    pub estimate: f64,
    /// Standard error, √ of the diagonal of σ̂²(XᵀW⁻¹X)⁻¹ (lme4's `vcov`).
    pub se: f64,
    /// estimate / se (lme4's `t value`).
    pub t_value: f64,
}

/// Best linear unbiased predictor of one group's random effects.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blup {
    /// Conditional mode of the random intercept u₀ᵢ (y units).
    pub u0: f64,
    /// Conditional mode of the random slope u₁ᵢ (y units per time unit).
    pub u1: f64,
    /// Conditional SD of u₀ᵢ given y and β̂ (lme4's `condVar`).
    pub sd_u0: f64,
    /// Conditional SD of u₁ᵢ.
    pub sd_u1: f64,
}

/// Result of [`fit_lmm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmmFit {
    /// Criterion optimised.
    pub method: LmmMethod,
    /// Fixed intercept β₀ (level at time 0).
    pub intercept: FixedEffect,
    /// Fixed slope β₁ (change per time unit).
    pub slope: FixedEffect,
    /// Covariance matrix of (β₀, β₁), σ̂²(XᵀW⁻¹X)⁻¹.
    pub vcov_fixed: [[f64; 2]; 2],
    /// Estimated variance components.
    pub variance: VarianceComponents,
    /// Relative covariance factor θ = (Λ₀₀, Λ₁₀, Λ₁₁) with Λ₀₀, Λ₁₁ ≥ 0 (lme4's
    /// `getME(fit, "theta")`).
    pub theta: [f64; 3],
    /// −2 (restricted) log-likelihood at the optimum: lme4's `REMLcrit()` for REML,
    /// `deviance()` for ML.
    pub criterion: f64,
    /// −criterion / 2 (lme4's `logLik()`).
    pub log_likelihood: f64,
    /// Rows used.
    pub n_obs: usize,
    /// Groups.
    pub n_groups: usize,
    /// BLUPs, one per group in group-index order.
    pub blups: Vec<Blup>,
    /// Criterion evaluations used by the optimiser.
    pub evaluations: usize,
    /// Whether the optimiser met its tolerances within budget.
    pub converged: bool,
    /// Boundary fit: a diagonal element of Λ below [`SINGULAR_TOL`] (a zero variance
    /// or |ρ| = 1), as lme4's `isSingular()`.
    pub singular: bool,
}

/// Profiled quantities at one θ.
struct Profile {
    beta: [f64; 2],
    /// XᵀW⁻¹X.
    xtwx: Sym,
    /// log|L_θ|².
    logdet: f64,
    /// Penalised residual sum of squares r²(θ).
    r2: f64,
}

/// Pᵢ = Λ(I + ΛᵀAΛ)⁻¹Λᵀ and log det(I + ΛᵀAΛ).
#[inline]
fn block(lambda: &[f64; 3], a: &Sym) -> (Sym, f64) {
    let h = lt_s_l(lambda, a);
    let g = [1.0 + h[0], h[1], 1.0 + h[2]];
    let det = sym_det(&g);
    (l_s_lt(lambda, &sym_inv(&g)), det.ln())
}

fn profile(data: &GrowthData, lambda: &[f64; 3]) -> Profile {
    let mut xtwx = [0.0; 3];
    let mut xtwy = [0.0; 2];
    let mut ywy = 0.0;
    let mut logdet = 0.0;
    for p in &data.patterns {
        let (pm, ld) = block(lambda, &p.a);
        let ap = mul(&full(&p.a), &full(&pm));
        let apa = mul(&ap, &full(&p.a));
        xtwx[0] += p.m * (p.a[0] - apa[0][0]);
        xtwx[1] += p.m * (p.a[1] - 0.5 * (apa[0][1] + apa[1][0]));
        xtwx[2] += p.m * (p.a[2] - apa[1][1]);
        let apg = mat_vec(&ap, &p.g);
        xtwy[0] += p.g[0] - apg[0];
        xtwy[1] += p.g[1] - apg[1];
        ywy += p.yy - tr_sym(&pm, &p.cc);
        logdet += p.m * ld;
    }
    let beta = sym_vec(&sym_inv(&xtwx), &xtwy);
    let r2 = ywy - beta[0] * xtwy[0] - beta[1] * xtwy[1];
    Profile {
        beta,
        xtwx,
        logdet,
        r2,
    }
}

/// The profiled criterion at θ (+∞ where undefined).
fn criterion(data: &GrowthData, method: LmmMethod, lambda: &[f64; 3]) -> f64 {
    let pr = profile(data, lambda);
    let n = data.n_obs as f64;
    let det_x = sym_det(&pr.xtwx);
    if !(pr.r2 > 0.0 && det_x > 0.0 && pr.logdet.is_finite()) {
        return f64::INFINITY;
    }
    let tau = std::f64::consts::TAU;
    match method {
        LmmMethod::Ml => pr.logdet + n * (1.0 + (tau * pr.r2 / n).ln()),
        LmmMethod::Reml => {
            let df = n - P_FIXED;
            pr.logdet + det_x.ln() + df * (1.0 + (tau * pr.r2 / df).ln())
        }
    }
}

fn check_lmm_data(data: &GrowthData, config: &LmmConfig) -> Result<()> {
    data.check_identifiable()?;
    if config.check_nobs_vs_nre && data.n_obs <= 2 * data.n_groups() {
        return Err(GrowthError::TooFewObservations {
            n_obs: data.n_obs,
            n_random_effects: 2 * data.n_groups(),
        });
    }
    if data.n_obs as f64 <= P_FIXED {
        return Err(GrowthError::TooFewObservations {
            n_obs: data.n_obs,
            n_random_effects: 2 * data.n_groups(),
        });
    }
    Ok(())
}

/// Fits the linear growth mixed model by REML or ML (see the module docs).
///
/// Errors: [`GrowthError::TooFewGroups`], [`GrowthError::SlopeNotIdentifiable`]
/// (a single time value, or no group observed at two times),
/// [`GrowthError::TooFewObservations`] (n_obs ≤ 2·n_groups with
/// `check_nobs_vs_nre`), [`GrowthError::InvalidConfig`], and
/// [`GrowthError::Degenerate`] when the data fit exactly (zero residual variance).
/// Boundary estimates are returned with `singular = true`, not as errors.
pub fn fit_lmm(data: &GrowthData, config: &LmmConfig) -> Result<LmmFit> {
    if config.max_evals < 10
        || config.xtol.is_nan()
        || config.xtol <= 0.0
        || config.ftol.is_nan()
        || config.ftol <= 0.0
    {
        return Err(GrowthError::InvalidConfig(format!(
            "lmm: need max_evals >= 10, xtol > 0, ftol > 0; got {config:?}"
        )));
    }
    check_lmm_data(data, config)?;
    let method = config.method;
    let opts = NmOptions {
        max_evals: config.max_evals,
        ftol_abs: config.ftol,
        ftol_rel: 0.0,
        xtol: config.xtol,
        step: 0.5,
    };
    let res = minimize(
        |x| criterion(data, method, &[x[0], x[1], x[2]]),
        &[1.0, 0.0, 1.0],
        &opts,
    );
    if !res.f.is_finite() {
        return Err(GrowthError::Degenerate(
            "the criterion is not finite anywhere the optimiser looked (zero residual variance?)"
                .into(),
        ));
    }
    // Canonical sign: Λ₀₀ ≥ 0 (flip the first column), Λ₁₁ ≥ 0 (flip the second).
    let mut theta = [res.x[0], res.x[1], res.x[2].abs()];
    if theta[0] < 0.0 {
        theta[0] = -theta[0];
        theta[1] = -theta[1];
    }
    let pr = profile(data, &theta);
    let n = data.n_obs as f64;
    let sigma2 = match method {
        LmmMethod::Ml => pr.r2 / n,
        LmmMethod::Reml => pr.r2 / (n - P_FIXED),
    };
    let sigma = sigma2.sqrt();
    let cov_rel = l_s_lt(&theta, &[1.0, 0.0, 1.0]);
    let sd0 = sigma * cov_rel[0].sqrt();
    let sd1 = sigma * cov_rel[2].sqrt();
    let corr = if cov_rel[0] > 0.0 && cov_rel[2] > 0.0 {
        (cov_rel[1] / (cov_rel[0] * cov_rel[2]).sqrt()).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let xinv = sym_inv(&pr.xtwx);
    let vcov = [
        [sigma2 * xinv[0], sigma2 * xinv[1]],
        [sigma2 * xinv[1], sigma2 * xinv[2]],
    ];
    let fixed = |k: usize, est: f64| {
        let se = vcov[k][k].sqrt();
        FixedEffect {
            estimate: est,
            se,
            t_value: est / se,
        }
    };
    let beta = pr.beta;
    let mut blups = vec![
        Blup {
            u0: 0.0,
            u1: 0.0,
            sd_u0: 0.0,
            sd_u1: 0.0,
        };
        data.n_groups()
    ];
    for p in &data.patterns {
        let (pm, _) = block(&theta, &p.a);
        let ab = sym_vec(&p.a, &beta);
        for &i in &p.members {
            let c = data.groups[i].c();
            let u = sym_vec(&pm, &[c[0] - ab[0], c[1] - ab[1]]);
            blups[i] = Blup {
                u0: u[0],
                u1: u[1],
                sd_u0: (sigma2 * pm[0]).max(0.0).sqrt(),
                sd_u1: (sigma2 * pm[2]).max(0.0).sqrt(),
            };
        }
    }
    let crit = criterion(data, method, &theta);
    Ok(LmmFit {
        method,
        intercept: fixed(0, beta[0] + data.y_shift),
        slope: fixed(1, beta[1]),
        vcov_fixed: vcov,
        variance: VarianceComponents {
            sd_intercept: sd0,
            sd_slope: sd1,
            corr,
            sd_residual: sigma,
        },
        theta,
        criterion: crit,
        log_likelihood: -0.5 * crit,
        n_obs: data.n_obs,
        n_groups: data.n_groups(),
        blups,
        evaluations: res.evals,
        converged: res.converged,
        singular: theta[0] < SINGULAR_TOL || theta[2] < SINGULAR_TOL,
    })
}

/// −2 log-likelihood (ML) or −2 restricted log-likelihood (REML) at given variance
/// components, with β at its GLS estimate for those components (the ML-optimal β; the
/// REML criterion does not depend on β). Equals [`LmmFit::criterion`] when evaluated at
/// the fit's own variance components and method.
///
/// The two are related exactly by
/// REML(v) = ML(v) + log det(XᵀV⁻¹X) − p log 2π (Harville 1974).
pub fn lmm_criterion(
    data: &GrowthData,
    method: LmmMethod,
    var: &VarianceComponents,
) -> Result<f64> {
    var.validate()?;
    data.check_identifiable()?;
    let s = var.sd_residual;
    let l = var.chol();
    let lambda = [l[0] / s, l[1] / s, l[2] / s];
    let pr = profile(data, &lambda);
    let n = data.n_obs as f64;
    let s2 = s * s;
    let tau = std::f64::consts::TAU;
    let ml = n * (tau * s2).ln() + pr.logdet + pr.r2 / s2;
    Ok(match method {
        LmmMethod::Ml => ml,
        LmmMethod::Reml => ml + (sym_det(&pr.xtwx) / (s2 * s2)).ln() - P_FIXED * tau.ln(),
    })
}
