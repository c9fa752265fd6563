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
//!
//! # Layout
//!
//! * `priors`: [`BayesPriors`] and [`CorrelationPrior`];
//! * `density`: the marginal log posterior of the hyperparameters and its gradient
//!   (the unconstrained parameterisation, the Woodbury marginal likelihood, the priors'
//!   terms) as nuts-rs's log-density function;
//! * `sampler`: [`BayesConfig`] and [`fit_bayes`] (seeded parallel NUTS chains from
//!   jittered pooled-OLS starts);
//! * `posterior`: [`BayesFit`] and its draws, summaries, R̂ gate, per-group forecasts
//!   and random-effect draws.

mod density;
mod posterior;
mod priors;
mod sampler;

pub use posterior::{
    BayesFit, ChainStats, DEFAULT_MAX_RHAT, GroupForecast, ParamSummary, PosteriorDraw,
};
pub use priors::{BayesPriors, CorrelationPrior};
pub use sampler::{BayesConfig, fit_bayes};
