//! The M-step of Bock–Aitkin EM: per-item Newton–Raphson on the expected complete-data
//! log-likelihood (plus log-priors), and the latent-distribution update.
//!
//! Items are parameterised internally as `mirt` does (slope–intercept): `x = [a, d, g]`
//! with `P(θ) = c + (1 − c) σ(aθ + d)`, `c = σ(g)`, and `b = −d/a` in the IRT metric.
//! Free components: Rasch `d` (a = 1), 2PL `a, d`, 3PL `a, d, g`.
//!
//! Given the E-step counts `r1_k` (expected correct) and `n_k` (expected responses) at the
//! nodes `θ_k`, item `i` maximises
//! `Q_i(x) = Σ_k r1_k ln P(θ_k) + (n_k − r1_k) ln(1 − P(θ_k)) + ln prior(x)`
//! (Baker & Kim, *Item Response Theory*, 2nd ed., 2004, ch. 6). Newton steps use the exact
//! (observed) Hessian; when it is not negative definite (3PL, priors) it is shifted
//! Levenberg–Marquardt style until it is, and every step is halved until the objective
//! does not decrease, so each M-step is an ascent.

use super::estep::sigmoid;
use super::params::{ItemParams, Model};
use super::priors::Priors;
use crate::numeric::{LogisticPair, normal_quantile};

/// Index of the slope `a` in an internal parameter vector.
pub(crate) const A: usize = 0;
/// Index of the intercept `d`.
pub(crate) const D: usize = 1;
/// Index of the logit guessing `g`.
pub(crate) const G: usize = 2;

/// The free internal components of `model`.
pub(crate) fn free_indices(model: Model) -> &'static [usize] {
    match model {
        Model::Rasch => &[D],
        Model::TwoPl => &[A, D],
        Model::ThreePl => &[A, D, G],
    }
}

/// `c` of internal parameters under `model` (0 unless 3PL).
#[inline]
pub(crate) fn guess(model: Model, x: &[f64; 3]) -> f64 {
    if model == Model::ThreePl {
        sigmoid(x[G])
    } else {
        0.0
    }
}

/// IRT-metric parameters of internal ones.
pub(crate) fn to_irt(model: Model, x: &[f64; 3]) -> ItemParams {
    ItemParams {
        a: x[A],
        b: -x[D] / x[A],
        c: guess(model, x),
    }
}

/// Objective value, gradient and Hessian over all three internal components (the
/// components that are not free are to be ignored by the caller).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Eval {
    pub f: f64,
    pub grad: [f64; 3],
    pub hess: [[f64; 3]; 3],
}

/// Score vectors `∂ ln P(y | θ)/∂x` for `y = 0` and `y = 1` at one node, stable in the tails.
#[inline]
pub(crate) fn scores(model: Model, x: &[f64; 3], theta: f64) -> ([f64; 3], [f64; 3]) {
    let eta = x[A] * theta + x[D];
    let (s, sm) = LogisticPair::new(eta).logistic();
    if model == Model::ThreePl {
        let c = sigmoid(x[G]);
        let p = s + c * sm;
        let k = (1.0 - c) * s * sm / p;
        let e_p = [k * theta, k, sm * c * (1.0 - c) / p];
        let e_q = [s * theta, s, c];
        ([-e_q[0], -e_q[1], -e_q[2]], e_p)
    } else {
        ([-s * theta, -s, 0.0], [sm * theta, sm, 0.0])
    }
}

/// `Q_i` (plus log-prior) at `x`, with its gradient and Hessian.
pub(crate) fn item_eval(
    model: Model,
    r1: &[f64],
    n: &[f64],
    nodes: &[f64],
    x: &[f64; 3],
    priors: &Priors,
) -> Eval {
    let mut f = 0.0;
    let mut grad = [0.0; 3];
    let mut hess = [[0.0; 3]; 3];
    let (a, d) = (x[A], x[D]);
    if model == Model::ThreePl {
        let c = sigmoid(x[G]);
        let l1c = (-c).ln_1p();
        let cc = c * (1.0 - c);
        for ((&t, &y1), &nk) in nodes.iter().zip(r1).zip(n) {
            if nk == 0.0 {
                continue;
            }
            let y0 = nk - y1;
            let eta = a * t + d;
            let pair = LogisticPair::new(eta);
            let (s, sm) = pair.logistic();
            let p = s + c * sm;
            f += y1 * p.ln() + y0 * (l1c - pair.softplus().0);
            // e_p = ∂P/P, e_q = ∂P/(1−P); d2p = ∂²P/P, d2q = ∂²P/(1−P)
            let k = (1.0 - c) * s * sm / p;
            let e_p = [k * t, k, sm * cc / p];
            let e_q = [s * t, s, c];
            let kk = k * (sm - s);
            let d2p = [
                [kk * t * t, kk * t, -k * t * c],
                [kk * t, kk, -k * c],
                [-k * t * c, -k * c, sm * cc * (1.0 - 2.0 * c) / p],
            ];
            let qq = s * (sm - s);
            let d2q = [
                [qq * t * t, qq * t, -s * t * c],
                [qq * t, qq, -s * c],
                [-s * t * c, -s * c, c * (1.0 - 2.0 * c)],
            ];
            for i in 0..3 {
                grad[i] += y1 * e_p[i] - y0 * e_q[i];
                for j in i..3 {
                    hess[i][j] +=
                        y1 * (d2p[i][j] - e_p[i] * e_p[j]) - y0 * (d2q[i][j] + e_q[i] * e_q[j]);
                }
            }
        }
    } else {
        for ((&t, &y1), &nk) in nodes.iter().zip(r1).zip(n) {
            if nk == 0.0 {
                continue;
            }
            let eta = a * t + d;
            let pair = LogisticPair::new(eta);
            f += y1 * eta - nk * pair.softplus().0;
            let (p, q) = pair.logistic();
            let w = nk * p * q;
            let res = y1 - nk * p;
            grad[A] += res * t;
            grad[D] += res;
            hess[A][A] -= w * t * t;
            hess[A][D] -= w * t;
            hess[D][D] -= w;
        }
    }
    for (i, j) in [(1, 0), (2, 0), (2, 1)] {
        hess[i][j] = hess[j][i];
    }
    priors.add_log_density(model, x, &mut f, &mut grad, &mut hess);
    if !f.is_finite() {
        f = f64::NEG_INFINITY;
    }
    Eval { f, grad, hess }
}

/// Solves `m · z = v` for a symmetric positive-definite `m` (size `k ≤ 3`) by Cholesky;
/// `None` if `m` is not (numerically) positive definite.
pub(crate) fn chol_solve(m: &[[f64; 3]; 3], v: &[f64; 3], k: usize) -> Option<[f64; 3]> {
    let mut l = [[0.0; 3]; 3];
    for i in 0..k {
        for j in 0..=i {
            let s = m[i][j] - (0..j).map(|p| l[i][p] * l[j][p]).sum::<f64>();
            if i == j {
                if s.is_nan() || s <= 1e-300 || !s.is_finite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut z = [0.0; 3];
    for i in 0..k {
        let mut s = v[i];
        for p in 0..i {
            s -= l[i][p] * z[p];
        }
        z[i] = s / l[i][i];
    }
    for i in (0..k).rev() {
        let mut s = z[i];
        for p in i + 1..k {
            s -= l[p][i] * z[p];
        }
        z[i] = s / l[i][i];
    }
    Some(z)
}

/// Bound on `g = logit c`: c stays within [9.4e-14, 1 − 9.4e-14]. Without a prior, c of an
/// item with no guessing drifts towards 0 (g → −∞) where the likelihood is flat; the bound
/// keeps the parameters finite and changes the likelihood by less than 1e-10.
pub(crate) const G_BOUND: f64 = 30.0;

/// Largest Newton step (in any internal component) per iteration.
const MAX_STEP: f64 = 2.0;
/// Newton iterations per item and M-step.
const MAX_NEWTON: usize = 100;
/// A Newton step below this (max-norm) ends the item's M-step.
const STEP_TOL: f64 = 1e-10;

/// Maximises `Q_i` for one item from `x0`; returns the new internal parameters.
///
/// Safeguarded Newton–Raphson: Levenberg–Marquardt shift when the Hessian is not
/// negative definite, step capped at 2 per component, halving until no decrease.
pub(crate) fn mstep_item(
    model: Model,
    r1: &[f64],
    n: &[f64],
    nodes: &[f64],
    x0: [f64; 3],
    priors: &Priors,
) -> [f64; 3] {
    let free = free_indices(model);
    let k = free.len();
    let mut x = x0;
    x[G] = x[G].clamp(-G_BOUND, G_BOUND);
    let mut ev = item_eval(model, r1, n, nodes, &x, priors);
    if !ev.f.is_finite() {
        return x0;
    }
    for _ in 0..MAX_NEWTON {
        let mut neg_h = [[0.0; 3]; 3];
        let mut g = [0.0; 3];
        let mut diag_max: f64 = 0.0;
        for (i, &fi) in free.iter().enumerate() {
            g[i] = ev.grad[fi];
            for (j, &fj) in free.iter().enumerate() {
                neg_h[i][j] = -ev.hess[fi][fj];
            }
            diag_max = diag_max.max(neg_h[i][i].abs());
        }
        if g[..k].iter().any(|v| !v.is_finite()) {
            break;
        }
        let mut lambda = 0.0;
        let mut delta = None;
        for _ in 0..40 {
            let mut m = neg_h;
            for (i, row) in m.iter_mut().enumerate().take(k) {
                row[i] += lambda;
            }
            if let Some(z) = chol_solve(&m, &g, k) {
                delta = Some(z);
                break;
            }
            lambda = if lambda == 0.0 {
                1e-8 * (1.0 + diag_max)
            } else {
                lambda * 10.0
            };
        }
        let Some(mut delta) = delta else {
            break;
        };
        let big = delta[..k].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if !big.is_finite() {
            break;
        }
        if big > MAX_STEP {
            let s = MAX_STEP / big;
            delta.iter_mut().for_each(|v| *v *= s);
        }
        let mut t = 1.0;
        let mut accepted = None;
        let slack = 1e-13 * (1.0 + ev.f.abs());
        for _ in 0..50 {
            let mut xn = x;
            for (i, &fi) in free.iter().enumerate() {
                xn[fi] = x[fi] + t * delta[i];
            }
            xn[G] = xn[G].clamp(-G_BOUND, G_BOUND);
            // With derivatives: the first trial is nearly always taken, and its
            // derivatives are the next iteration's (the same `f`, bit for bit).
            let trial = item_eval(model, r1, n, nodes, &xn, priors);
            if trial.f.is_finite() && trial.f >= ev.f - slack {
                accepted = Some((xn, trial));
                break;
            }
            t *= 0.5;
        }
        let Some((xn, trial)) = accepted else {
            break;
        };
        let step = (0..3).fold(0.0f64, |m, i| m.max((xn[i] - x[i]).abs()));
        x = xn;
        ev = trial;
        if step < STEP_TOL {
            break;
        }
    }
    x
}

/// mirt-style starting values: `a = 0.851` (= 0.5 × 1.702), `d = Φ⁻¹(p)/0.5088` with `p`
/// the item's proportion correct, and `c` at the prior mode or 0.15 (`mirt`'s defaults).
pub(crate) fn start_values(model: Model, p_correct: f64, priors: &Priors) -> [f64; 3] {
    let div = (0.75f64).sqrt() / 1.702;
    let p = p_correct.clamp(1e-3, 1.0 - 1e-3);
    let d = normal_quantile(p) / div;
    let a = match (model, priors.a) {
        (Model::Rasch, _) => 1.0,
        (_, Some(pa)) => pa.meanlog.exp(),
        _ => 0.5 * 1.702,
    };
    let c = match priors.c {
        Some(pc) if pc.alpha > 1.0 && pc.beta > 1.0 => {
            (pc.alpha - 1.0) / (pc.alpha + pc.beta - 2.0)
        }
        Some(pc) => pc.alpha / (pc.alpha + pc.beta),
        None => 0.15,
    };
    let c = c.clamp(1e-4, 0.9);
    let g = if model == Model::ThreePl {
        (c / (1.0 - c)).ln()
    } else {
        0.0
    };
    [a, d, g]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irt::priors::{BetaPrior, LogNormalPrior, NormalPrior};

    fn tables(x: &[f64; 3], model: Model) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let nodes: Vec<f64> = (0..31).map(|k| -4.0 + 8.0 * k as f64 / 30.0).collect();
        let c = guess(model, x);
        let n: Vec<f64> = nodes.iter().map(|t| 500.0 * (-0.5 * t * t).exp()).collect();
        let r1 = nodes
            .iter()
            .zip(&n)
            .map(|(t, nk)| nk * (c + (1.0 - c) * sigmoid(x[A] * t + x[D])))
            .collect();
        (nodes, r1, n)
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let priors = Priors {
            a: Some(LogNormalPrior {
                meanlog: 0.0,
                sdlog: 0.5,
            }),
            b: Some(NormalPrior { mean: 0.0, sd: 2.0 }),
            c: Some(BetaPrior {
                alpha: 5.0,
                beta: 17.0,
            }),
        };
        for model in [Model::Rasch, Model::TwoPl, Model::ThreePl] {
            let truth = [1.4, -0.5, -1.2];
            let (nodes, r1, n) = tables(&truth, model);
            let x = [1.1, -0.2, -1.6];
            let pr = if model == Model::ThreePl {
                priors
            } else if model == Model::TwoPl {
                Priors { c: None, ..priors }
            } else {
                Priors {
                    a: None,
                    c: None,
                    ..priors
                }
            };
            let ev = item_eval(model, &r1, &n, &nodes, &x, &pr);
            let eps = 1e-6;
            for &i in free_indices(model) {
                let mut xp = x;
                let mut xm = x;
                xp[i] += eps;
                xm[i] -= eps;
                let ep = item_eval(model, &r1, &n, &nodes, &xp, &pr);
                let em = item_eval(model, &r1, &n, &nodes, &xm, &pr);
                let fd = (ep.f - em.f) / (2.0 * eps);
                assert!(
                    (fd - ev.grad[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{model} g{i}"
                );
                for &j in free_indices(model) {
                    let fd = (ep.grad[j] - em.grad[j]) / (2.0 * eps);
                    assert!(
                        (fd - ev.hess[i][j]).abs() < 1e-5 * (1.0 + fd.abs()),
                        "{model} h{i}{j}: {fd} vs {}",
                        ev.hess[i][j]
                    );
                }
            }
        }
    }

    #[test]
    fn newton_recovers_the_generating_item_from_exact_counts() {
        for model in [Model::Rasch, Model::TwoPl, Model::ThreePl] {
            let truth = if model == Model::Rasch {
                [1.0, 0.7, 0.0]
            } else {
                [1.6, 0.7, -1.5]
            };
            let (nodes, r1, n) = tables(&truth, model);
            let x = mstep_item(
                model,
                &r1,
                &n,
                &nodes,
                start_values(model, 0.6, &Priors::default()),
                &Priors::default(),
            );
            for &i in free_indices(model) {
                assert!((x[i] - truth[i]).abs() < 1e-6, "{model}: {x:?}");
            }
        }
    }

    #[test]
    fn scores_are_log_probability_gradients() {
        let x = [1.3, 0.4, -1.0];
        for model in [Model::TwoPl, Model::ThreePl] {
            let (s0, s1) = scores(model, &x, 0.7);
            let lp = |x: &[f64; 3]| {
                let c = guess(model, x);
                let p = c + (1.0 - c) * sigmoid(x[A] * 0.7 + x[D]);
                (p.ln(), (1.0 - p).ln())
            };
            for &i in free_indices(model) {
                let mut xp = x;
                let mut xm = x;
                xp[i] += 1e-6;
                xm[i] -= 1e-6;
                let (p1, q1) = lp(&xp);
                let (p0, q0) = lp(&xm);
                assert!(((p1 - p0) / 2e-6 - s1[i]).abs() < 1e-6);
                assert!(((q1 - q0) / 2e-6 - s0[i]).abs() < 1e-6);
            }
        }
    }
}
