//! The marginal log posterior of the hyperparameters that NUTS samples: the layout of
//! the unconstrained parameter vector (`Mode`), the marginal log-likelihood with the
//! random effects integrated out (`marginal_loglik`, by Woodbury through 2 × 2
//! systems per design pattern), the priors' terms with their Jacobians, the gradient,
//! and the nuts-rs log-density function (`Marginal`).

use nuts_rs::{CpuLogpFunc, CpuMathError, HasDims, LogpError};
use std::collections::HashMap;

use super::posterior::PosteriorDraw;
use super::priors::{BayesPriors, CorrelationPrior};
use crate::growth::data::GrowthData;
use crate::growth::linalg::{
    Sym, full, l_s_lt, lt_s_l, mul, sym_det, sym_inv, sym_vec, symmetrize, tr_sym, transpose,
};
use crate::growth::lmm::VarianceComponents;

/// Layout of the unconstrained parameter vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mode {
    /// [β₀, β₁, ln τ₀, ln τ₁, ln σ, atanh ρ]
    Full { eta: f64 },
    /// [β₀, β₁, ln τ₀, ln τ₁, ln σ]
    Independent,
    /// [β₀, β₁]
    Fixed(VarianceComponents),
}

impl Mode {
    pub(super) fn of(priors: &BayesPriors) -> Self {
        match (priors.fixed_variances, priors.correlation) {
            (Some(v), _) => Mode::Fixed(v),
            (None, CorrelationPrior::Independent) => Mode::Independent,
            (None, CorrelationPrior::Lkj { eta }) => Mode::Full { eta },
        }
    }
    pub(super) fn dim(&self) -> usize {
        match self {
            Mode::Full { .. } => 6,
            Mode::Independent => 5,
            Mode::Fixed(_) => 2,
        }
    }
    pub(super) fn names(&self) -> &'static [&'static str] {
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
    pub(super) fn constrain(&self, x: &[f64]) -> PosteriorDraw {
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

/// The log density could not be evaluated (overflow at an extreme position); NUTS
/// treats it as a divergence and moves on.
#[derive(Debug, thiserror::Error)]
#[error("log density is not finite at this position")]
pub(super) struct NonFinite;

impl LogpError for NonFinite {
    fn is_recoverable(&self) -> bool {
        true
    }
}

/// Marginal log posterior of the hyperparameters.
pub(super) struct Marginal<'a> {
    pub(super) data: &'a GrowthData,
    pub(super) priors: &'a BayesPriors,
    pub(super) mode: Mode,
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
