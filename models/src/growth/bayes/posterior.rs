//! The posterior: its draws ([`PosteriorDraw`]), per-parameter summaries with R̂ and
//! ESS ([`ParamSummary`]), per-chain statistics, and [`BayesFit`] with its R̂ gate,
//! the Rao–Blackwellised per-group forecasts ([`BayesFit::forecast`]) and the draws of
//! a group's random effects from their exact conditional.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::sampler::splitmix;
use crate::growth::data::GrowthData;
use crate::growth::diagnostics::{ess_bulk, ess_mean, ess_tail, rhat};
use crate::growth::linalg::{Sym, l_s_lt, lt_s_l, sym_inv, sym_vec};
use crate::growth::{GrowthError, Result};
use crate::numeric::normal_cdf;
use crate::numeric::quantile_sorted;

/// The R̂ threshold of [`BayesFit::check_rhat`] used by the pipeline.
pub const DEFAULT_MAX_RHAT: f64 = 1.05;

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

/// Result of [`fit_bayes`](super::fit_bayes).
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
    pub(super) data: GrowthData,
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

pub(super) fn summarize(name: &str, draws: &[Vec<PosteriorDraw>]) -> ParamSummary {
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
        self.group_summaries(data, target_time, goal, true)
    }

    /// The fitted groups' random effects only: the posterior means and SDs of u₀ᵢ and
    /// u₁ᵢ, bit for bit those of [`BayesFit::forecast`], with `mean`, `sd` and `p_goal`
    /// NaN. The forecast's per-draw normal CDF is most of its cost; a caller that needs
    /// only the BLUPs (the growth stage's `growth_fit` rows of a fit sample that is not
    /// its own shard) skips it.
    pub fn blups(&self) -> Vec<GroupForecast> {
        self.group_summaries(&self.data, 0.0, 0.0, false)
    }

    /// Per group of `data`: posterior summaries of the random effects and, with
    /// `with_goal`, of μᵢ at `target_time` and P(μᵢ ≥ `goal`) (NaN without).
    fn group_summaries(
        &self,
        data: &GrowthData,
        target_time: f64,
        goal: f64,
        with_goal: bool,
    ) -> Vec<GroupForecast> {
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
                        let a = &mut acc[k];
                        if with_goal {
                            let m = base + ph[0] * b[0] + ph[1] * b[1];
                            let prob = if sd > 0.0 {
                                normal_cdf((m - goal) / sd)
                            } else {
                                f64::from(u8::from(m >= goal))
                            };
                            a[0] += m;
                            a[1] += m * m;
                            a[2] += v;
                            a[3] += prob;
                        }
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
                                mean: if with_goal { a[0] } else { f64::NAN },
                                sd: if with_goal {
                                    var(a[1], a[0], a[2])
                                } else {
                                    f64::NAN
                                },
                                p_goal: if with_goal { a[3] } else { f64::NAN },
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
