//! Characteristic-curve linking: Stocking–Lord and Haebara (Kolen & Brennan, 2014, ch. 6).
//!
//! Both minimise a weighted squared distance, over a θ grid on the base scale, between
//! the base anchors' curves and the curves of the new anchors transformed by (A, B).
//! Both are nonlinear least squares in two parameters; they are minimised here by
//! Levenberg–Marquardt (Marquardt, 1963) with the analytic Jacobian, over (ln A, B) so
//! that A stays positive, starting from the mean/sigma constants (mean/mean when the
//! difficulties do not vary).
//!
//! For a new item (a, b, c) transformed by (A, B), P*(θ) = c + (1 − c)σ(z) with
//! z = (a/A)(θ − B) − a·b, so ∂z/∂ln A = −(a/A)(θ − B) and ∂z/∂B = −a/A.

use super::{LinkingConstants, checked, mean_mean, mean_sigma, validate_anchors};
use crate::irt::{IrtError, ItemParams, Quadrature, Result};

/// Which criterion to minimise.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Criterion {
    /// Σ_k w_k [Σ_j P_j(θ_k; base) − Σ_j P*_j(θ_k)]².
    StockingLord,
    /// Σ_k w_k Σ_j [P_j(θ_k; base) − P*_j(θ_k)]².
    Haebara,
}

impl Criterion {
    fn name(self) -> &'static str {
        match self {
            Criterion::StockingLord => "Stocking–Lord",
            Criterion::Haebara => "Haebara",
        }
    }
}

/// Logistic σ(z).
#[inline]
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The transformed new item's P* and its derivatives with respect to (ln A, B).
#[inline]
fn p_star(item: &ItemParams, theta: f64, a_scale: f64, b_shift: f64) -> (f64, f64, f64) {
    let slope = item.a / a_scale;
    let z = slope * (theta - b_shift) - item.a * item.b;
    let s = sigmoid(z);
    let dp_dz = (1.0 - item.c) * s * (1.0 - s);
    (
        item.c + (1.0 - item.c) * s,
        dp_dz * (-slope * (theta - b_shift)),
        dp_dz * (-slope),
    )
}

/// Criterion value F, gradient Jᵀr and Gauss–Newton matrix JᵀJ at (ln A, B).
/// Residuals r = √w (P_base − P*), so ∂r/∂x = −√w ∂P*/∂x. No allocation.
fn evaluate(
    crit: Criterion,
    new: &[ItemParams],
    base: &[ItemParams],
    quad: &Quadrature,
    (log_a, b_shift): (f64, f64),
) -> (f64, [f64; 2], [f64; 3]) {
    let a_scale = log_a.exp();
    let mut f = 0.0;
    let mut g = [0.0; 2];
    let mut h = [0.0; 3]; // h11, h12, h22
    let mut add = |r: f64, j1: f64, j2: f64| {
        f += r * r;
        g[0] += r * j1;
        g[1] += r * j2;
        h[0] += j1 * j1;
        h[1] += j1 * j2;
        h[2] += j2 * j2;
    };
    for (&theta, &w) in quad.nodes.iter().zip(quad.weights.iter()) {
        let sw = w.sqrt();
        match crit {
            Criterion::StockingLord => {
                let (mut diff, mut d1, mut d2) = (0.0, 0.0, 0.0);
                for (pn, pb) in new.iter().zip(base.iter()) {
                    let (p, dla, db) = p_star(pn, theta, a_scale, b_shift);
                    diff += pb.p(theta) - p;
                    d1 += dla;
                    d2 += db;
                }
                add(sw * diff, -sw * d1, -sw * d2);
            }
            Criterion::Haebara => {
                for (pn, pb) in new.iter().zip(base.iter()) {
                    let (p, dla, db) = p_star(pn, theta, a_scale, b_shift);
                    add(sw * (pb.p(theta) - p), -sw * dla, -sw * db);
                }
            }
        }
    }
    (f, g, h)
}

fn validate_quadrature(quad: &Quadrature) -> Result<()> {
    let ok = !quad.nodes.is_empty()
        && quad.nodes.len() == quad.weights.len()
        && quad.nodes.iter().all(|x| x.is_finite())
        && quad.weights.iter().all(|w| w.is_finite() && *w >= 0.0)
        && quad.weights.iter().sum::<f64>() > 0.0;
    if ok {
        Ok(())
    } else {
        Err(IrtError::InvalidConfig(
            "linking quadrature needs as many finite weights (>= 0, positive sum) as finite nodes"
                .to_string(),
        ))
    }
}

/// Maximum Levenberg–Marquardt iterations.
const MAX_ITER: usize = 500;
/// Convergence: largest accepted step in (ln A, B) below this.
const STEP_TOL: f64 = 1e-12;

fn characteristic_curve(
    crit: Criterion,
    new: &[ItemParams],
    base: &[ItemParams],
    quad: &Quadrature,
) -> Result<LinkingConstants> {
    validate_anchors(new, base)?;
    validate_quadrature(quad)?;
    let start = mean_sigma(new, base).or_else(|_| mean_mean(new, base))?;
    minimise(crit, new, base, quad, start)
}

/// Levenberg–Marquardt from `start` (inputs already validated).
fn minimise(
    crit: Criterion,
    new: &[ItemParams],
    base: &[ItemParams],
    quad: &Quadrature,
    start: LinkingConstants,
) -> Result<LinkingConstants> {
    let mut x = (start.a.ln(), start.b);
    let (mut f, mut g, mut h) = evaluate(crit, new, base, quad, x);
    let mut lambda = 1e-3;
    let mut converged = false;
    for _ in 0..MAX_ITER {
        // (JᵀJ + λ diag(JᵀJ)) δ = −Jᵀr, solved in closed form (2 × 2).
        let d1 = h[0].max(1e-12);
        let d2 = h[2].max(1e-12);
        let (m11, m12, m22) = (h[0] + lambda * d1, h[1], h[2] + lambda * d2);
        let det = m11 * m22 - m12 * m12;
        if !(det.is_finite() && det > 0.0) {
            lambda *= 10.0;
            if lambda > 1e20 {
                break;
            }
            continue;
        }
        let step = (
            -(m22 * g[0] - m12 * g[1]) / det,
            -(m11 * g[1] - m12 * g[0]) / det,
        );
        let size = step.0.abs().max(step.1.abs());
        if size < STEP_TOL {
            converged = true;
            break;
        }
        let cand = (x.0 + step.0, x.1 + step.1);
        let (cf, cg, ch) = evaluate(crit, new, base, quad, cand);
        if cf.is_finite() && cf <= f {
            x = cand;
            (f, g, h) = (cf, cg, ch);
            lambda = (lambda * 0.1).max(1e-15);
        } else {
            lambda *= 10.0;
            // No step of any size decreases F: x is a (numerical) minimum.
            if lambda > 1e20 {
                converged = true;
                break;
            }
        }
    }
    if !converged {
        return Err(IrtError::InvalidConfig(format!(
            "{} linking did not converge in {MAX_ITER} iterations (last A = {}, B = {})",
            crit.name(),
            x.0.exp(),
            x.1
        )));
    }
    checked(
        crit.name(),
        LinkingConstants {
            a: x.0.exp(),
            b: x.1,
        },
    )
}

/// Stocking–Lord linking (Stocking & Lord, 1983; Kolen & Brennan, 2014, ch. 6):
/// minimises Σ_k w_k [Σ_j P_j(θ_k; base) − Σ_j P_j(θ_k; a_j/A, A·b_j + B, c_j)]² over
/// (A, B), where (θ_k, w_k) are `quad`'s nodes and weights, read as base-scale abilities
/// (the default grid: 61 nodes on [-6, 6] with standard-normal weights).
///
/// `new`: anchors as estimated on the new scale; `base`: the same anchors on the base
/// scale (same order). Minimised by Levenberg–Marquardt from the mean/sigma constants.
/// Errors: different lengths, fewer than 2 anchors, an invalid parameter, an invalid
/// grid, no convergence, or non-finite constants.
pub fn stocking_lord(
    new: &[ItemParams],
    base: &[ItemParams],
    quad: &Quadrature,
) -> Result<LinkingConstants> {
    characteristic_curve(Criterion::StockingLord, new, base, quad)
}

/// Haebara linking (Haebara, 1980; Kolen & Brennan, 2014, ch. 6): minimises
/// Σ_k w_k Σ_j [P_j(θ_k; base) − P_j(θ_k; a_j/A, A·b_j + B, c_j)]² over (A, B), with
/// `quad`'s nodes and weights on the base scale, as [`stocking_lord`].
///
/// Inputs, method and errors as [`stocking_lord`].
pub fn haebara(
    new: &[ItemParams],
    base: &[ItemParams],
    quad: &Quadrature,
) -> Result<LinkingConstants> {
    characteristic_curve(Criterion::Haebara, new, base, quad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public functions start from mean/sigma, which is exact for noise-free anchors;
    /// here the minimiser itself must travel from far-off starts to the known optimum.
    #[test]
    fn minimiser_converges_from_poor_starts() {
        let base: Vec<ItemParams> = (0..12)
            .map(|j| {
                let x = j as f64;
                ItemParams::new_3pl(
                    0.6 + 0.1 * x,
                    -2.0 + 0.35 * x,
                    if j % 3 == 0 { 0.2 } else { 0.0 },
                )
            })
            .collect();
        let (a, b) = (0.8, -0.6);
        let new: Vec<ItemParams> = base
            .iter()
            .map(|p| ItemParams::new_3pl(p.a * a, (p.b - b) / a, p.c))
            .collect();
        let quad = Quadrature::default();
        for crit in [Criterion::StockingLord, Criterion::Haebara] {
            for (sa, sb) in [(2.5, 1.5), (0.3, -2.0), (1.0, 0.0)] {
                let k =
                    minimise(crit, &new, &base, &quad, LinkingConstants { a: sa, b: sb }).unwrap();
                // the criterion is exactly 0 at the truth; 1e-8 is far above LM's step tolerance
                assert!(
                    (k.a - a).abs() < 1e-8,
                    "{} from ({sa}, {sb}): A = {}",
                    crit.name(),
                    k.a
                );
                assert!(
                    (k.b - b).abs() < 1e-8,
                    "{} from ({sa}, {sb}): B = {}",
                    crit.name(),
                    k.b
                );
            }
        }
    }
}
