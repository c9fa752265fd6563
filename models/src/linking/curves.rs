//! Characteristic-curve linking: Stocking–Lord and Haebara (Kolen & Brennan, 2014, ch. 6).
//!
//! Both minimise a weighted squared distance, over a θ grid on the base scale, between
//! the base anchors' curves and the curves of the new anchors transformed by (A, B);
//! the symmetric form (Haebara, 1980; Kim & Lee, 2006) adds the same distance over a
//! grid on the new scale, between the new anchors' curves and the base anchors moved
//! onto the new scale. Both are nonlinear least squares in two parameters; they are
//! minimised here by Levenberg–Marquardt (Marquardt, 1963) with the analytic Jacobian,
//! over (ln A, B) so that A stays positive, starting from the mean/sigma constants
//! (mean/mean when the difficulties do not vary).
//!
//! The criterion's value is reported as R `plink` (Weeks, 2010) reports it: each term
//! divided by the sum of its grid's weights, and, for Haebara, by the number of anchors.
//!
//! For a new item (a, b, c) moved to the base scale by (A, B), P*(θ) = c + (1 − c)σ(z)
//! with z = (a/A)(θ − B) − a·b, so ∂z/∂ln A = −(a/A)(θ − B) and ∂z/∂B = −a/A. For a
//! base item moved to the new scale, z = a(A·θ + B − b), so ∂z/∂ln A = a·A·θ and
//! ∂z/∂B = a. A scaling constant D (P = c + (1 − c)σ(D·a(θ − b))) multiplies every slope
//! of both lists, which leaves the constants' meaning unchanged.

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

/// Settings of a characteristic-curve link beyond the anchors themselves.
#[derive(Debug, Clone, Copy)]
pub struct CurveSettings<'a> {
    /// θ points and weights on the base (to) scale: the criterion's main term. Weights
    /// need not sum to 1 (each term is divided by their sum).
    pub to_grid: &'a Quadrature,
    /// `Some`: the symmetric criterion, which adds the term over these θ points and
    /// weights on the new (from) scale. `None`: the base-scale term only (the usual
    /// choice, and R plink's and STUIRT's default).
    pub from_grid: Option<&'a Quadrature>,
    /// Scaling constant D of the logistic, P = c + (1 − c)/(1 + exp(−D·a(θ − b))): 1 for
    /// parameters on the logistic metric, 1.7 for the normal-ogive-like metric of BILOG.
    pub d: f64,
}

impl<'a> CurveSettings<'a> {
    /// Base-scale term over `grid`, D = 1: what [`stocking_lord`] and [`haebara`] use.
    pub fn on(grid: &'a Quadrature) -> Self {
        CurveSettings {
            to_grid: grid,
            from_grid: None,
            d: 1.0,
        }
    }
}

/// The result of a characteristic-curve link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveLink {
    /// The constants A, B (θ_base = A·θ_new + B).
    pub constants: LinkingConstants,
    /// The criterion at the constants, as R plink reports it (see the module docs).
    pub criterion: f64,
    /// Levenberg–Marquardt iterations (accepted and rejected steps).
    pub iterations: usize,
}

use crate::numeric::logistic as sigmoid;

/// A new item moved to the base scale by (A, B) at base-scale θ: P* and its
/// derivatives with respect to (ln A, B).
#[inline]
fn new_on_base(item: &ItemParams, theta: f64, a_scale: f64, b_shift: f64) -> (f64, f64, f64) {
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

/// A base item moved to the new scale by (A, B) at new-scale θ: P' and its
/// derivatives with respect to (ln A, B).
#[inline]
fn base_on_new(item: &ItemParams, theta: f64, a_scale: f64, b_shift: f64) -> (f64, f64, f64) {
    let z = item.a * (a_scale * theta + b_shift - item.b);
    let s = sigmoid(z);
    let dp_dz = (1.0 - item.c) * s * (1.0 - s);
    (
        item.c + (1.0 - item.c) * s,
        dp_dz * item.a * a_scale * theta,
        dp_dz * item.a,
    )
}

/// P and its derivatives with respect to (ln A, B) of an item moved by (A, B), at θ:
/// [`new_on_base`] or [`base_on_new`].
type Moved = fn(&ItemParams, f64, f64, f64) -> (f64, f64, f64);

/// One term of the criterion: the distance over `grid` between the `fixed` items' curves
/// and the `moving` items' curves after `moved` (same order).
struct Term<'a> {
    grid: &'a Quadrature,
    fixed: &'a [ItemParams],
    moving: &'a [ItemParams],
    moved: Moved,
}

/// The anchors (slopes already multiplied by D) and the criterion's terms.
struct Problem<'a> {
    crit: Criterion,
    new: &'a [ItemParams],
    base: &'a [ItemParams],
    to_grid: &'a Quadrature,
    from_grid: Option<&'a Quadrature>,
}

impl Problem<'_> {
    /// Criterion value F, gradient Jᵀr and Gauss–Newton matrix JᵀJ at (ln A, B).
    /// Residuals r = √(w/W) (P_fixed − P_moved), so ∂r/∂x = −√(w/W) ∂P_moved/∂x, where
    /// W is the sum of the term's weights (times the number of anchors for Haebara).
    /// No allocation.
    fn evaluate(&self, (log_a, b_shift): (f64, f64)) -> (f64, [f64; 2], [f64; 3]) {
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
        let to_term = Term {
            grid: self.to_grid,
            fixed: self.base,
            moving: self.new,
            moved: new_on_base,
        };
        let from_term = self.from_grid.map(|grid| Term {
            grid,
            fixed: self.new,
            moving: self.base,
            moved: base_on_new,
        });
        for Term {
            grid,
            fixed,
            moving,
            moved,
        } in std::iter::once(to_term).chain(from_term)
        {
            let mut total = grid.weights.iter().sum::<f64>();
            if self.crit == Criterion::Haebara {
                total *= fixed.len() as f64;
            }
            for (&theta, &w) in grid.nodes.iter().zip(grid.weights.iter()) {
                let sw = (w / total).sqrt();
                match self.crit {
                    Criterion::StockingLord => {
                        let (mut diff, mut d1, mut d2) = (0.0, 0.0, 0.0);
                        for (pm, pf) in moving.iter().zip(fixed.iter()) {
                            let (p, dla, db) = moved(pm, theta, a_scale, b_shift);
                            diff += pf.p(theta) - p;
                            d1 += dla;
                            d2 += db;
                        }
                        add(sw * diff, -sw * d1, -sw * d2);
                    }
                    Criterion::Haebara => {
                        for (pm, pf) in moving.iter().zip(fixed.iter()) {
                            let (p, dla, db) = moved(pm, theta, a_scale, b_shift);
                            add(sw * (pf.p(theta) - p), -sw * dla, -sw * db);
                        }
                    }
                }
            }
        }
        (f, g, h)
    }
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
    settings: &CurveSettings<'_>,
) -> Result<CurveLink> {
    validate_anchors(new, base)?;
    validate_quadrature(settings.to_grid)?;
    if let Some(q) = settings.from_grid {
        validate_quadrature(q)?;
    }
    let d = settings.d;
    if !(d.is_finite() && d > 0.0) {
        return Err(IrtError::InvalidConfig(format!(
            "linking scaling constant D must be finite and > 0, got {d}"
        )));
    }
    let start = mean_sigma(new, base).or_else(|_| mean_mean(new, base))?;
    let scaled = |list: &[ItemParams]| -> Vec<ItemParams> {
        list.iter()
            .map(|p| ItemParams { a: d * p.a, ..*p })
            .collect()
    };
    let (new_d, base_d);
    let (new, base) = if d == 1.0 {
        (new, base)
    } else {
        (new_d, base_d) = (scaled(new), scaled(base));
        (new_d.as_slice(), base_d.as_slice())
    };
    let problem = Problem {
        crit,
        new,
        base,
        to_grid: settings.to_grid,
        from_grid: settings.from_grid,
    };
    minimise(&problem, start)
}

/// The end of [`levenberg_marquardt_2`].
pub(super) struct LmResult {
    /// The last accepted point.
    pub(super) x: (f64, f64),
    /// The criterion there.
    pub(super) f: f64,
    /// Iterations run (accepted and rejected steps).
    pub(super) iterations: usize,
    /// Whether the step or no-decrease rule ended it (not the iteration limit).
    pub(super) converged: bool,
}

/// A two-parameter Levenberg–Marquardt minimisation (Marquardt, 1963) of a least-squares
/// criterion: `eval(x)` returns F, the gradient Jᵀr and the Gauss–Newton matrix JᵀJ
/// (h11, h12, h22) at x. Steps solve (JᵀJ + λ diag(JᵀJ)) δ = −Jᵀr in closed form.
/// Returns the last accepted x and its F, the iterations, and whether it converged (a step below
/// [`STEP_TOL`], or no step of any size decreasing F) within [`MAX_ITER`] iterations.
/// Shared by the characteristic-curve links and the drift screen's 2PL projection.
pub(super) fn levenberg_marquardt_2(
    eval: impl Fn((f64, f64)) -> (f64, [f64; 2], [f64; 3]),
    start: (f64, f64),
) -> LmResult {
    let mut x = start;
    let (mut f, mut g, mut h) = eval(x);
    let mut lambda = 1e-3;
    let mut iterations = 0;
    while iterations < MAX_ITER {
        iterations += 1;
        let d1 = h[0].max(1e-12);
        let d2 = h[2].max(1e-12);
        let (m11, m12, m22) = (h[0] + lambda * d1, h[1], h[2] + lambda * d2);
        let det = m11 * m22 - m12 * m12;
        if !(det.is_finite() && det > 0.0) {
            lambda *= 10.0;
            if lambda > 1e20 {
                return LmResult {
                    x,
                    f,
                    iterations,
                    converged: false,
                };
            }
            continue;
        }
        let step = (
            -(m22 * g[0] - m12 * g[1]) / det,
            -(m11 * g[1] - m12 * g[0]) / det,
        );
        if step.0.abs().max(step.1.abs()) < STEP_TOL {
            return LmResult {
                x,
                f,
                iterations,
                converged: true,
            };
        }
        let cand = (x.0 + step.0, x.1 + step.1);
        let (cf, cg, ch) = eval(cand);
        if cf.is_finite() && cf <= f {
            x = cand;
            (f, g, h) = (cf, cg, ch);
            lambda = (lambda * 0.1).max(1e-15);
        } else {
            lambda *= 10.0;
            // No step of any size decreases F: x is a (numerical) minimum.
            if lambda > 1e20 {
                return LmResult {
                    x,
                    f,
                    iterations,
                    converged: true,
                };
            }
        }
    }
    LmResult {
        x,
        f,
        iterations,
        converged: false,
    }
}

/// Levenberg–Marquardt from `start` (inputs already validated) over (ln A, B).
fn minimise(problem: &Problem<'_>, start: LinkingConstants) -> Result<CurveLink> {
    let name = problem.crit.name();
    let LmResult {
        x,
        f,
        iterations,
        converged,
    } = levenberg_marquardt_2(|x| problem.evaluate(x), (start.a.ln(), start.b));
    if !converged {
        return Err(IrtError::InvalidConfig(format!(
            "{name} linking did not converge in {MAX_ITER} iterations (last A = {}, B = {})",
            x.0.exp(),
            x.1
        )));
    }
    let constants = checked(
        name,
        LinkingConstants {
            a: x.0.exp(),
            b: x.1,
        },
    )?;
    Ok(CurveLink {
        constants,
        criterion: f,
        iterations,
    })
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
    Ok(stocking_lord_with(new, base, &CurveSettings::on(quad))?.constants)
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
    Ok(haebara_with(new, base, &CurveSettings::on(quad))?.constants)
}

/// [`stocking_lord`] with a scaling constant D and, optionally, the symmetric criterion
/// (the base-scale term plus the same over `settings.from_grid` on the new scale, each
/// divided by its grid's weight sum, as R plink's `symmetric = TRUE`). Returns the
/// constants with the criterion's value and the iterations. Errors as
/// [`stocking_lord`], plus D not finite and positive.
pub fn stocking_lord_with(
    new: &[ItemParams],
    base: &[ItemParams],
    settings: &CurveSettings<'_>,
) -> Result<CurveLink> {
    characteristic_curve(Criterion::StockingLord, new, base, settings)
}

/// [`haebara`] with a scaling constant D and, optionally, the symmetric criterion (as
/// [`stocking_lord_with`]; each term also divided by the number of anchors). Errors as
/// [`stocking_lord_with`].
pub fn haebara_with(
    new: &[ItemParams],
    base: &[ItemParams],
    settings: &CurveSettings<'_>,
) -> Result<CurveLink> {
    characteristic_curve(Criterion::Haebara, new, base, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms() -> (Vec<ItemParams>, Vec<ItemParams>, f64, f64) {
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
        (new, base, a, b)
    }

    /// The public functions start from mean/sigma, which is exact for noise-free anchors;
    /// here the minimiser itself must travel from far-off starts to the known optimum,
    /// with the base-scale term only and with the symmetric criterion.
    #[test]
    fn minimiser_converges_from_poor_starts() {
        let (new, base, a, b) = forms();
        let quad = Quadrature::default();
        for crit in [Criterion::StockingLord, Criterion::Haebara] {
            for from_grid in [None, Some(&quad)] {
                let problem = Problem {
                    crit,
                    new: &new,
                    base: &base,
                    to_grid: &quad,
                    from_grid,
                };
                for (sa, sb) in [(2.5, 1.5), (0.3, -2.0), (1.0, 0.0)] {
                    let k = minimise(&problem, LinkingConstants { a: sa, b: sb })
                        .unwrap()
                        .constants;
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

    /// The symmetric term's analytic derivatives agree with central differences of the
    /// criterion (a wrong sign or factor in `base_on_new` fails by far more than 1e-6).
    #[test]
    fn symmetric_gradient_matches_finite_differences() {
        let (mut new, base, _, _) = forms();
        new[3].b += 0.4; // away from the exact fit, so the gradient is not ~0
        let quad = Quadrature::default();
        for crit in [Criterion::StockingLord, Criterion::Haebara] {
            let problem = Problem {
                crit,
                new: &new,
                base: &base,
                to_grid: &quad,
                from_grid: Some(&quad),
            };
            let x = (0.1_f64, -0.3);
            let (_, g, _) = problem.evaluate(x);
            let eps = 1e-6;
            let fd = |dx: (f64, f64)| {
                let up = problem.evaluate((x.0 + dx.0, x.1 + dx.1)).0;
                let down = problem.evaluate((x.0 - dx.0, x.1 - dx.1)).0;
                (up - down) / (2.0 * eps)
            };
            // F = Σ r², so ∂F/∂x = 2 Jᵀr = 2g
            for (k, dx) in [(0, (eps, 0.0)), (1, (0.0, eps))] {
                let numeric = fd(dx);
                assert!(
                    (2.0 * g[k] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()),
                    "{} ∂F/∂x{k}: analytic {} vs numeric {numeric}",
                    crit.name(),
                    2.0 * g[k]
                );
            }
        }
    }
}
