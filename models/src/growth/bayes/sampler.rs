//! Sampling: [`BayesConfig`] and [`fit_bayes`], which runs the seeded NUTS chains in
//! parallel (each from a jittered pooled-OLS start) on the marginal posterior and
//! gathers their draws and statistics into a [`BayesFit`].

use nuts_rs::rand::SeedableRng as _;
use nuts_rs::rand::rngs::ChaCha8Rng;
use nuts_rs::{Chain, CpuMath, DiagNutsSettings, Settings};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::density::{Marginal, Mode};
use super::posterior::{BayesFit, ChainStats, PosteriorDraw, summarize};
use super::priors::BayesPriors;
use crate::growth::data::GrowthData;
use crate::growth::linalg::{sym_inv, sym_vec};
use crate::growth::{GrowthError, Result};

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

/// SplitMix64 (Steele, Lea & Flood 2014): seeds and jitter from (seed, stream).
pub(super) fn splitmix(mut z: u64) -> u64 {
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
