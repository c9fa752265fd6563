//! Hierarchical linear growth of weekly θ (DESIGN.md §4, "Growth").
//!
//! θᵢₜ = (β₀ + u₀ᵢ) + (β₁ + u₁ᵢ)·weekᵢₜ + εᵢₜ, (u₀ᵢ, u₁ᵢ) ~ N(0, Σ) with SDs τ₀, τ₁ and
//! correlation ρ, εᵢₜ ~ N(0, σ²).
//!
//! * [`fit_lmm`]: the frequentist linear mixed model by REML or ML, as lme4's
//!   `lmer(y ~ time + (time | group))` fits it (profiled criterion over the relative
//!   covariance factor, Nelder–Mead), with fixed-effect SEs, variance components, the
//!   REML criterion / deviance and BLUPs.
//! * [`fit_glmm`]: the logistic mixed growth model for binomial responses (correct
//!   answers out of attempts), logit P = (β₀ + b₀ᵢ) + (β₁ + b₁ᵢ)·week + covariates, by the
//!   Laplace approximation as lme4's `glmer(…, family = binomial)` (nAGQ = 1) fits it,
//!   with a random intercept or correlated random intercept and slope (module `glmm`).
//! * [`fit_bayes`]: the Bayesian model with DESIGN's priors sampled by NUTS (nuts-rs) on
//!   the marginal posterior of the hyperparameters (random effects integrated out
//!   analytically), several seeded chains in parallel, rank-normalised split-R̂ and
//!   bulk/tail ESS; [`BayesFit::forecast`] gives per group the posterior probability of
//!   reaching a goal θ by a target week.
//!
//! The linear models work on [`GrowthData`], which reduces the rows to per-group 2 × 2 sufficient
//! statistics and groups sharing a design, so no n × n matrix is ever formed and the
//! cost of a likelihood evaluation grows with the number of distinct designs. The GLMM
//! works on [`GlmmData`] (rows by group; its likelihood has no sufficient statistics).

mod bayes;
mod data;
pub mod diagnostics;
mod glmm;
mod goal;
mod linalg;
mod lmm;
mod optim;
mod sim;

pub use bayes::{
    BayesConfig, BayesFit, BayesPriors, ChainStats, CorrelationPrior, DEFAULT_MAX_RHAT,
    GroupForecast, ParamSummary, PosteriorDraw, fit_bayes,
};
pub use data::{GrowthData, MIN_GROUPS};
pub use glmm::{
    BinomialGrowthSpec, COLLINEARITY_TOL, GRADIENT_TOL, GlmmBlup, GlmmConfig, GlmmData, GlmmFit,
    GlmmFixed, GlmmForecast, GlmmRows, HESSIAN_MAX_OBS, HESSIAN_MAX_PARAMS, INTERCEPT,
    RandomEffects, SimulatedBinomialGrowth, VcovChoice, VcovMethod, fit_glmm, glmm_deviance,
    simulate_binomial,
};
pub use goal::{GOAL_OFFSET, Goal, GoalBasis, TARGET_WEEKS, growth_goal};
pub use lmm::{
    Blup, FixedEffect, LmmConfig, LmmFit, LmmMethod, SINGULAR_TOL, VarianceComponents, fit_lmm,
    lmm_criterion,
};
pub use sim::{GrowthSimSpec, SimulatedGrowth, simulate};

/// Errors of the growth models.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum GrowthError {
    /// The rows cannot be used (lengths differ, no rows, a non-finite value, a group
    /// index without rows); the message names the problem.
    #[error("invalid growth data: {0}")]
    InvalidInput(String),
    /// Fewer groups than the covariance of the random effects needs.
    #[error("too few groups: {groups} (need at least {min})")]
    TooFewGroups {
        /// Groups in the data.
        groups: usize,
        /// Minimum accepted ([`MIN_GROUPS`]).
        min: usize,
    },
    /// As lme4's `check.nobs.vs.nRE`: no more rows than random effects.
    #[error(
        "number of observations ({n_obs}) <= number of random effects ({n_random_effects}) for (time | group): the random-effects parameters and the residual variance are probably unidentifiable"
    )]
    TooFewObservations {
        /// Rows in the data.
        n_obs: usize,
        /// 2 × groups.
        n_random_effects: usize,
    },
    /// The slope (fixed or random) cannot be estimated from these times.
    #[error("slope not identifiable: {0}")]
    SlopeNotIdentifiable(String),
    /// A setting or prior is out of range; the message names it.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The data admit no non-degenerate fit (e.g. zero residual variance).
    #[error("degenerate fit: {0}")]
    Degenerate(String),
    /// The NUTS sampler failed.
    #[error("sampler failed: {0}")]
    Sampler(String),
    /// A parameter's R̂ exceeds the threshold (from [`BayesFit::check_rhat`]).
    #[error("not converged: R-hat of {parameter} is {rhat:.4} (max {max})")]
    NotConverged {
        /// Worst parameter.
        parameter: String,
        /// Its R̂.
        rhat: f64,
        /// Threshold.
        max: f64,
    },
}

/// Result alias of the growth models.
pub type Result<T, E = GrowthError> = std::result::Result<T, E>;
