//! Parameter priors for Bayes-modal (MAP) item calibration.
//!
//! Each prior adds its log-density to the M-step objective of every estimated item, as
//! `mirt`'s `parprior` does (Chalmers, 2012, *J. Stat. Softw.* 48(6); Mislevy, 1986,
//! *Psychometrika* 51(2) for Bayes modal estimation in IRT). The log-likelihood reported
//! by a fit excludes the prior terms (as `mirt`'s `logLik`).
//!
//! The estimation works in `mirt`'s slope–intercept metric (a, d = −a·b, g = logit c);
//! the priors are stated on the IRT metric and enter through the chain rule:
//! * [`LogNormalPrior`] on `a` (`mirt`'s `lnorm` on `a1`),
//! * [`NormalPrior`] on the difficulty `b = −d/a` (note: `mirt`'s `norm` priors sit on the
//!   intercept `d` instead),
//! * [`BetaPrior`] on `c`, as `mirt`'s `expbeta` behaves. `mirt` estimates `g = logit c`
//!   and its M-step gradient adds the beta score *on the c scale*,
//!   `(α − 1)/c − (β − 1)/(1 − c)`, to the gradient in `g` (no chain-rule factor
//!   `c(1 − c)`); its estimates therefore solve `∂ℓ/∂g + (α − 1)/c − (β − 1)/(1 − c) = 0`.
//!   Here the log-prior is the function with exactly that derivative,
//!   `h(g) = (α − 1)(g − e^−g) − (β − 1)(g + e^g)`, so the estimates agree with `mirt`'s
//!   (LSAT7 3PL with Beta(5, 17): c within 1e-4). Its mode is the beta mode
//!   `c = (α − 1)/(α + β − 2)` (0.2 for Beta(5, 17)), but near the mode it is
//!   `1/(c(1 − c))` ≈ 6× more concentrated than a Beta(α, β) density on c would be.

use serde::{Deserialize, Serialize};

use super::estep::sigmoid;
use super::params::{IrtError, Model, Result};

/// Normal prior N(`mean`, `sd`²) on the difficulty `b` (θ units).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormalPrior {
    /// Mean (θ units).
    pub mean: f64,
    /// Standard deviation (θ units), > 0.
    pub sd: f64,
}

/// Log-normal prior on the discrimination `a`: `ln a ~ N(meanlog, sdlog²)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogNormalPrior {
    /// Mean of `ln a`.
    pub meanlog: f64,
    /// Standard deviation of `ln a`, > 0.
    pub sdlog: f64,
}

/// Beta(`alpha`, `beta`) prior on the lower asymptote `c`, applied as `mirt`'s `expbeta`
/// (see the module documentation); e.g. the common Beta(5, 17), whose mode is c = 0.2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BetaPrior {
    /// First shape parameter, ≥ 1 (so that the log-density is bounded above).
    pub alpha: f64,
    /// Second shape parameter, ≥ 1.
    pub beta: f64,
}

/// The priors of a calibration; `None` = flat (maximum likelihood for that parameter).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Priors {
    /// Prior on the discrimination `a` (2PL and 3PL only).
    pub a: Option<LogNormalPrior>,
    /// Prior on the difficulty `b`.
    pub b: Option<NormalPrior>,
    /// Prior on the lower asymptote `c` (3PL only).
    pub c: Option<BetaPrior>,
}

impl Priors {
    /// Checks the hyper-parameters and that each prior applies to `model`.
    pub fn validate(&self, model: Model) -> Result<()> {
        if let Some(p) = self.a {
            if model == Model::Rasch {
                return Err(IrtError::InvalidConfig(
                    "a prior on a is meaningless for the Rasch model (a = 1 is fixed)".into(),
                ));
            }
            if !(p.meanlog.is_finite() && p.sdlog.is_finite() && p.sdlog > 0.0) {
                return Err(IrtError::InvalidConfig(format!(
                    "log-normal prior on a needs finite meanlog and sdlog > 0, got ({}, {})",
                    p.meanlog, p.sdlog
                )));
            }
        }
        if let Some(p) = self.b
            && !(p.mean.is_finite() && p.sd.is_finite() && p.sd > 0.0)
        {
            return Err(IrtError::InvalidConfig(format!(
                "normal prior on b needs finite mean and sd > 0, got ({}, {})",
                p.mean, p.sd
            )));
        }
        if let Some(p) = self.c {
            if model != Model::ThreePl {
                return Err(IrtError::InvalidConfig(format!(
                    "a prior on c needs the 3PL model, not {model}"
                )));
            }
            if !(p.alpha.is_finite() && p.beta.is_finite() && p.alpha >= 1.0 && p.beta >= 1.0) {
                return Err(IrtError::InvalidConfig(format!(
                    "beta prior on c needs finite alpha >= 1 and beta >= 1, got ({}, {})",
                    p.alpha, p.beta
                )));
            }
        }
        Ok(())
    }

    /// Whether any prior is set.
    pub fn any(&self) -> bool {
        self.a.is_some() || self.b.is_some() || self.c.is_some()
    }

    /// Log prior density (up to constants) of internal parameters `x = [a, d, g]` and its
    /// gradient and Hessian with respect to them, added into `f`, `g`, `h`.
    /// `g` (logit c) is only used by the 3PL; with `a ≤ 0` the a- and b-priors give −∞.
    pub(crate) fn add_log_density(
        &self,
        model: Model,
        x: &[f64; 3],
        f: &mut f64,
        grad: &mut [f64; 3],
        hess: &mut [[f64; 3]; 3],
    ) {
        let (a, d) = (x[0], x[1]);
        if let Some(p) = self.a {
            if a <= 0.0 {
                *f = f64::NEG_INFINITY;
                return;
            }
            let s2 = p.sdlog * p.sdlog;
            let la = a.ln();
            let z = la - p.meanlog;
            *f += -la - z * z / (2.0 * s2);
            grad[0] += -1.0 / a - z / (s2 * a);
            hess[0][0] += (1.0 - (1.0 - z) / s2) / (a * a);
        }
        if let Some(p) = self.b {
            if a == 0.0 {
                *f = f64::NEG_INFINITY;
                return;
            }
            // b = −d/a; ∂b = (−b/a, −1/a); ∂²b/∂a² = 2b/a², ∂²b/∂a∂d = 1/a², ∂²b/∂d² = 0
            let b = -d / a;
            let s2 = p.sd * p.sd;
            let u = b - p.mean;
            *f += -u * u / (2.0 * s2);
            let db = [-b / a, -1.0 / a];
            let d2b = [[2.0 * b / (a * a), 1.0 / (a * a)], [1.0 / (a * a), 0.0]];
            let rasch = model == Model::Rasch;
            for i in 0..2 {
                if rasch && i == 0 {
                    continue;
                }
                grad[i] += -u / s2 * db[i];
                for j in 0..2 {
                    if rasch && j == 0 {
                        continue;
                    }
                    hess[i][j] += -(db[i] * db[j] + u * d2b[i][j]) / s2;
                }
            }
        }
        if let (Some(p), Model::ThreePl) = (self.c, model) {
            let g = x[2];
            let c = sigmoid(g);
            let (al, be) = (p.alpha - 1.0, p.beta - 1.0);
            // mirt's expbeta: the c-scale beta score (α−1)/c − (β−1)/(1−c) is its gradient
            // in g; the log-prior with exactly that derivative is
            // h(g) = (α−1)(g − e^−g) − (β−1)(g + e^g).
            *f += al * (g - (-g).exp()) - be * (g + g.exp());
            grad[2] += al / c - be / (1.0 - c);
            hess[2][2] += -al * (-g).exp() - be * g.exp();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(p: &Priors, m: Model, x: [f64; 3]) -> (f64, [f64; 3], [[f64; 3]; 3]) {
        let (mut f, mut g, mut h) = (0.0, [0.0; 3], [[0.0; 3]; 3]);
        p.add_log_density(m, &x, &mut f, &mut g, &mut h);
        (f, g, h)
    }

    #[test]
    fn prior_derivatives_match_finite_differences() {
        let p = Priors {
            a: Some(LogNormalPrior {
                meanlog: 0.1,
                sdlog: 0.4,
            }),
            b: Some(NormalPrior { mean: 0.3, sd: 1.5 }),
            c: Some(BetaPrior {
                alpha: 5.0,
                beta: 17.0,
            }),
        };
        let x = [1.3, -0.7, -1.1];
        let (_, g, h) = eval(&p, Model::ThreePl, x);
        let eps = 1e-5;
        for i in 0..3 {
            let mut xp = x;
            let mut xm = x;
            xp[i] += eps;
            xm[i] -= eps;
            let (fp, gp, _) = eval(&p, Model::ThreePl, xp);
            let (fm, gm, _) = eval(&p, Model::ThreePl, xm);
            assert!(((fp - fm) / (2.0 * eps) - g[i]).abs() < 1e-7, "grad {i}");
            for j in 0..3 {
                assert!(
                    ((gp[j] - gm[j]) / (2.0 * eps) - h[i][j]).abs() < 1e-6,
                    "hess {i}{j}"
                );
            }
        }
    }

    #[test]
    fn priors_are_checked_against_the_model() {
        let beta = Priors {
            c: Some(BetaPrior {
                alpha: 5.0,
                beta: 17.0,
            }),
            ..Priors::default()
        };
        assert!(beta.validate(Model::ThreePl).is_ok());
        assert!(beta.validate(Model::TwoPl).is_err());
        let bad = Priors {
            b: Some(NormalPrior { mean: 0.0, sd: 0.0 }),
            ..Priors::default()
        };
        assert!(bad.validate(Model::TwoPl).is_err());
    }
}
