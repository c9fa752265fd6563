//! Simulator of linear growth data, for recovery tests and benchmarks.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::lmm::VarianceComponents;
use super::{GrowthError, Result};

/// What to simulate: `n_groups` groups observed at times 0, 1, …, `n_times − 1` (weeks),
/// each time kept with probability 1 − `p_missing` (at least one row per group), with
/// yᵢₜ = β₀ + u₀ᵢ + (β₁ + u₁ᵢ)t + εᵢₜ.
#[derive(Debug, Clone, PartialEq)]
pub struct GrowthSimSpec {
    /// Number of groups (students).
    pub n_groups: usize,
    /// Number of time points per group before dropping.
    pub n_times: usize,
    /// Probability that a (group, time) row is missing.
    pub p_missing: f64,
    /// Fixed effects (β₀, β₁).
    pub beta: [f64; 2],
    /// True variance components.
    pub variance: VarianceComponents,
}

/// A simulated data set in row form, with the true random effects.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedGrowth {
    /// Group index per row (dense, 0..n_groups).
    pub group: Vec<usize>,
    /// Time per row.
    pub time: Vec<f64>,
    /// Response per row.
    pub y: Vec<f64>,
    /// True (u₀ᵢ, u₁ᵢ) per group.
    pub effects: Vec<[f64; 2]>,
}

/// Simulates `spec` deterministically from `seed` (rand's `StdRng`).
pub fn simulate(spec: &GrowthSimSpec, seed: u64) -> Result<SimulatedGrowth> {
    spec.variance.validate()?;
    if spec.n_groups == 0 || spec.n_times == 0 || !(0.0..1.0).contains(&spec.p_missing) {
        return Err(GrowthError::InvalidConfig(format!(
            "simulation needs n_groups >= 1, n_times >= 1, p_missing in [0, 1); got {spec:?}"
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let l = spec.variance.chol();
    let mut out = SimulatedGrowth {
        group: Vec::new(),
        time: Vec::new(),
        y: Vec::new(),
        effects: Vec::with_capacity(spec.n_groups),
    };
    for g in 0..spec.n_groups {
        let z0: f64 = StandardNormal.sample(&mut rng);
        let z1: f64 = StandardNormal.sample(&mut rng);
        let u = [l[0] * z0, l[1] * z0 + l[2] * z1];
        out.effects.push(u);
        let keep: Vec<bool> = (0..spec.n_times)
            .map(|_| rng.random::<f64>() >= spec.p_missing)
            .collect();
        let forced = if keep.iter().any(|&k| k) {
            None
        } else {
            Some(rng.random_range(0..spec.n_times))
        };
        for (t, &k) in keep.iter().enumerate() {
            if !(k || forced == Some(t)) {
                continue;
            }
            let tf = t as f64;
            let e: f64 = StandardNormal.sample(&mut rng);
            out.group.push(g);
            out.time.push(tf);
            out.y.push(
                spec.beta[0] + u[0] + (spec.beta[1] + u[1]) * tf + spec.variance.sd_residual * e,
            );
        }
    }
    Ok(out)
}
