//! MCMC convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
//! "Rank-normalization, folding, and localization: an improved R̂ for assessing
//! convergence of MCMC", Bayesian Analysis 16(2): rank-normalised split-R̂ (the maximum
//! of the bulk and the folded-tail R̂), bulk and tail effective sample sizes, with the
//! autocorrelations combined over chains and truncated by Geyer's initial monotone
//! sequence (as Stan and ArviZ compute them).
//!
//! Every function takes `chains[c][d]`: draw `d` of chain `c` (equal lengths, at least
//! 4 draws per chain; shorter chains give NaN).

use crate::numeric::{normal_quantile, quantile_sorted};

/// Splits each chain into its first and last halves (the middle draw of an odd-length
/// chain is dropped).
fn split(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(2 * chains.len());
    for c in chains {
        let half = c.len() / 2;
        out.push(c[..half].to_vec());
        out.push(c[c.len() - half..].to_vec());
    }
    out
}

/// Replaces every draw by Φ⁻¹((r − 3/8)/(S + 1/4)) of its pooled rank r (ties get the
/// average rank), S = total number of draws.
fn rank_normalize(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut all: Vec<(f64, usize, usize)> = chains
        .iter()
        .enumerate()
        .flat_map(|(c, v)| v.iter().enumerate().map(move |(d, &x)| (x, c, d)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let s = all.len() as f64;
    let mut out: Vec<Vec<f64>> = chains.iter().map(|c| vec![0.0; c.len()]).collect();
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = 0.5 * ((i + 1) as f64 + (j + 1) as f64);
        let z = normal_quantile((rank - 0.375) / (s + 0.25));
        for &(_, c, d) in &all[i..=j] {
            out[c][d] = z;
        }
        i = j + 1;
    }
    out
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn var1(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0)
}

/// Classic R̂ of (already split) chains: √(((n−1)/n · W + B/n) / W).
fn rhat_raw(chains: &[Vec<f64>]) -> f64 {
    let n = chains[0].len() as f64;
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let w = mean(&chains.iter().map(|c| var1(c)).collect::<Vec<_>>());
    let b = n * var1(&means);
    (((n - 1.0) / n * w + b / n) / w).sqrt()
}

/// Effective sample size of (already split) chains: combined autocorrelation
/// (Stan's formula with the between-chain variance), Geyer's initial positive then
/// monotone sequence, τ̂ ≥ 1/log₁₀(S).
fn ess_raw(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains[0].len();
    let nf = n as f64;
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    // Biased (÷n) autocovariance of every chain at lag t, averaged over chains.
    let acov = |t: usize| -> f64 {
        chains
            .iter()
            .zip(&means)
            .map(|(c, mu)| {
                c[..n - t]
                    .iter()
                    .zip(&c[t..])
                    .map(|(a, b)| (a - mu) * (b - mu))
                    .sum::<f64>()
                    / nf
            })
            .sum::<f64>()
            / m as f64
    };
    let acov0 = acov(0);
    let mean_var = acov0 * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += var1(&means);
    }
    if var_plus.is_nan() || var_plus <= 0.0 {
        return f64::NAN;
    }
    let mut rho = vec![0.0; n];
    let mut even = 1.0;
    rho[0] = even;
    let mut odd = 1.0 - (mean_var - acov(1)) / var_plus;
    rho[1] = odd;
    let mut t = 1;
    while t + 3 < n && even + odd > 0.0 {
        even = 1.0 - (mean_var - acov(t + 1)) / var_plus;
        odd = 1.0 - (mean_var - acov(t + 2)) / var_plus;
        if even + odd >= 0.0 {
            rho[t + 1] = even;
            rho[t + 2] = odd;
        }
        t += 2;
    }
    // max_t = t − 2 may be −1 when the very first pair is already negative.
    let max_t = t as isize - 2;
    let next = (max_t + 1) as usize;
    if even > 0.0 {
        rho[next] = even;
    }
    // Initial monotone sequence.
    let mut t = 1;
    while (t as isize) <= max_t - 2 {
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t] {
            rho[t + 1] = 0.5 * (rho[t - 1] + rho[t]);
            rho[t + 2] = rho[t + 1];
        }
        t += 2;
    }
    let s = (m * n) as f64;
    let tau = -1.0 + 2.0 * rho[..next].iter().sum::<f64>() + rho[next];
    let tau = tau.max(1.0 / s.log10());
    s / tau
}

fn usable(chains: &[Vec<f64>]) -> bool {
    !chains.is_empty()
        && chains[0].len() >= 4
        && chains.iter().all(|c| c.len() == chains[0].len())
        && chains.iter().flatten().all(|x| x.is_finite())
}

/// Rank-normalised split-R̂: max(bulk R̂, tail R̂) where the bulk R̂ is computed on the
/// rank-normalised split chains and the tail R̂ on the rank-normalised split chains of
/// |x − median| (Vehtari et al. 2021, eq. 4–5). NaN for unusable input (fewer than 4
/// draws, unequal chains, non-finite draws, or a constant parameter).
pub fn rhat(chains: &[Vec<f64>]) -> f64 {
    if !usable(chains) {
        return f64::NAN;
    }
    let bulk = rhat_raw(&rank_normalize(&split(chains)));
    let med = median(chains.iter().flatten().copied().collect());
    let folded: Vec<Vec<f64>> = chains
        .iter()
        .map(|c| c.iter().map(|x| (x - med).abs()).collect())
        .collect();
    let tail = rhat_raw(&rank_normalize(&split(&folded)));
    if bulk.is_nan() || tail.is_nan() {
        f64::NAN
    } else {
        bulk.max(tail)
    }
}

/// Bulk effective sample size: ESS of the rank-normalised split chains (Vehtari et
/// al. 2021, §4.3). NaN for unusable input.
pub fn ess_bulk(chains: &[Vec<f64>]) -> f64 {
    if !usable(chains) {
        return f64::NAN;
    }
    ess_raw(&rank_normalize(&split(chains)))
}

/// Tail effective sample size: the smaller ESS of the indicators I(x ≤ q₀.₀₅) and
/// I(x ≤ q₀.₉₅) on split chains (Vehtari et al. 2021, §4.3). NaN for unusable input.
pub fn ess_tail(chains: &[Vec<f64>]) -> f64 {
    if !usable(chains) {
        return f64::NAN;
    }
    let mut pooled: Vec<f64> = chains.iter().flatten().copied().collect();
    pooled.sort_by(f64::total_cmp);
    let q05 = quantile_sorted(&pooled, 0.05);
    let q95 = quantile_sorted(&pooled, 0.95);
    let ind = |q: f64| -> Vec<Vec<f64>> {
        chains
            .iter()
            .map(|c| c.iter().map(|&x| f64::from(u8::from(x <= q))).collect())
            .collect()
    };
    ess_raw(&split(&ind(q05))).min(ess_raw(&split(&ind(q95))))
}

/// ESS for the posterior mean (split chains, not rank-normalised); the Monte Carlo
/// standard error of the mean is sd / √ess_mean. NaN for unusable input.
pub fn ess_mean(chains: &[Vec<f64>]) -> f64 {
    if !usable(chains) {
        return f64::NAN;
    }
    ess_raw(&split(chains))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AR(1) chains x_t = φ x_{t−1} + e_t from a deterministic generator.
    fn ar1(phi: f64, chains: usize, n: usize, offset: &[f64]) -> Vec<Vec<f64>> {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut unif = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..chains)
            .map(|c| {
                let mut x = 0.0;
                (0..n)
                    .map(|_| {
                        // Box–Muller.
                        let (u1, u2) = (unif().max(1e-300), unif());
                        let e = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                        x = phi * x + e * (1.0 - phi * phi).sqrt();
                        x + offset[c]
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn ess_of_ar1_matches_theory_and_rhat_detects_shift() {
        // τ = (1 + φ)/(1 − φ) = 3 for φ = 0.5: ESS ≈ 4·4000/3 ≈ 5333.
        let ch = ar1(0.5, 4, 4000, &[0.0; 4]);
        let ess = ess_mean(&ch);
        assert!((ess / 5333.0 - 1.0).abs() < 0.15, "ess = {ess}");
        let bulk = ess_bulk(&ch);
        assert!((bulk / 5333.0 - 1.0).abs() < 0.15, "bulk = {bulk}");
        let r = rhat(&ch);
        assert!(r < 1.01, "rhat = {r}");
        // One chain shifted by 1 SD: R̂ well above 1.05.
        let bad = ar1(0.5, 4, 1000, &[0.0, 0.0, 0.0, 1.0]);
        assert!(rhat(&bad) > 1.05, "rhat = {}", rhat(&bad));
        assert!(rhat(&[vec![1.0; 10]]).is_nan());
    }
}
