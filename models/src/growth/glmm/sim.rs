//! Simulator of binomial growth data (logistic growth of the probability of a correct
//! answer), for recovery tests and benchmarks.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::super::{GrowthError, Result};

/// What to simulate: `n_groups` groups (students) observed at times 0, 1, …,
/// `n_times − 1` (weeks) with `trials` answers at each time, and
/// logit P(correct) = β₀ + b₀ᵢ + (β₁ + b₁ᵢ)·t, (b₀ᵢ, b₁ᵢ) ~ N(0, Σ) with SDs
/// (`sd_intercept`, `sd_slope`) and correlation `corr`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinomialGrowthSpec {
    /// Number of groups (students).
    pub n_groups: usize,
    /// Number of time points per group.
    pub n_times: usize,
    /// Trials (answers) per group and time, ≥ 1.
    pub trials: u32,
    /// Fixed effects (β₀, β₁) on the logit scale.
    pub beta: [f64; 2],
    /// SD of the random intercepts (≥ 0).
    pub sd_intercept: f64,
    /// SD of the random slopes (≥ 0).
    pub sd_slope: f64,
    /// Correlation of intercept and slope, in [−1, 1].
    pub corr: f64,
}

/// A simulated data set: one row per (group, time) with its successes and trials, and
/// the true random effects.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedBinomialGrowth {
    /// Group index per row (dense, 0..n_groups).
    pub group: Vec<usize>,
    /// Time per row.
    pub time: Vec<f64>,
    /// Successes per row.
    pub successes: Vec<f64>,
    /// Trials per row.
    pub trials: Vec<f64>,
    /// True (b₀ᵢ, b₁ᵢ) per group.
    pub effects: Vec<[f64; 2]>,
}

impl SimulatedBinomialGrowth {
    /// The same data as one 0/1 row per trial, (group, time, correct), the successes of
    /// each (group, time) first.
    pub fn bernoulli_rows(&self) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
        let (mut g, mut t, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..self.group.len() {
            for j in 0..self.trials[r] as usize {
                g.push(self.group[r]);
                t.push(self.time[r]);
                y.push(if (j as f64) < self.successes[r] {
                    1.0
                } else {
                    0.0
                });
            }
        }
        (g, t, y)
    }
}

/// Simulates `spec` deterministically from `seed` (rand's `StdRng`).
pub fn simulate_binomial(spec: &BinomialGrowthSpec, seed: u64) -> Result<SimulatedBinomialGrowth> {
    let ok = spec.n_groups >= 1
        && spec.n_times >= 1
        && spec.trials >= 1
        && spec.beta.iter().all(|b| b.is_finite())
        && spec.sd_intercept.is_finite()
        && spec.sd_intercept >= 0.0
        && spec.sd_slope.is_finite()
        && spec.sd_slope >= 0.0
        && spec.corr.is_finite()
        && spec.corr.abs() <= 1.0;
    if !ok {
        return Err(GrowthError::InvalidConfig(format!(
            "binomial simulation needs n_groups, n_times, trials >= 1, finite beta, SDs >= 0 and |corr| <= 1; got {spec:?}"
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let r = spec.corr;
    let l = [
        spec.sd_intercept,
        r * spec.sd_slope,
        spec.sd_slope * (1.0 - r * r).max(0.0).sqrt(),
    ];
    let n = spec.n_groups * spec.n_times;
    let mut out = SimulatedBinomialGrowth {
        group: Vec::with_capacity(n),
        time: Vec::with_capacity(n),
        successes: Vec::with_capacity(n),
        trials: Vec::with_capacity(n),
        effects: Vec::with_capacity(spec.n_groups),
    };
    for g in 0..spec.n_groups {
        let z0: f64 = StandardNormal.sample(&mut rng);
        let z1: f64 = StandardNormal.sample(&mut rng);
        let b = [l[0] * z0, l[1] * z0 + l[2] * z1];
        out.effects.push(b);
        for t in 0..spec.n_times {
            let tf = t as f64;
            let eta = spec.beta[0] + b[0] + (spec.beta[1] + b[1]) * tf;
            let prob = 1.0 / (1.0 + (-eta).exp());
            let k = (0..spec.trials)
                .filter(|_| rng.random::<f64>() < prob)
                .count();
            out.group.push(g);
            out.time.push(tf);
            out.successes.push(k as f64);
            out.trials.push(f64::from(spec.trials));
        }
    }
    Ok(out)
}
