//! Penalised iteratively reweighted least squares and the Laplace deviance (private).
//!
//! Spherical random effects uᵢ ~ N(0, I₂) per group, bᵢ = Λuᵢ with Λ = [[λ₀, 0], [λ₁, λ₂]]
//! (the intercept-only model is λ₁ = λ₂ = 0: the second coordinate of uᵢ then has zero
//! gradient, stays 0 and adds nothing). Row r of group i has ηᵣ = xᵣᵀβ + (Λᵀzᵣ)ᵀuᵢ with
//! zᵣ = (1, tᵣ). Half the penalised deviance of group i (without the constant
//! log-binomial coefficients) is
//!
//! φᵢ(uᵢ) = Σᵣ [mᵣ·s(ηᵣ) − kᵣηᵣ] + ½‖uᵢ‖², s = softplus,
//!
//! with gradient Gᵢ = Λᵀ Σᵣ zᵣ(mᵣμᵣ − kᵣ) + uᵢ and Hessian Hᵢ = I + ΛᵀZᵢᵀWᵢZᵢΛ,
//! Wᵣ = mᵣμᵣ(1 − μᵣ) (the logit link is canonical, so the observed and expected
//! information agree and PIRLS is exactly Newton's method). Each step solves Hᵢδ = −Gᵢ
//! and is halved until φ decreases (lme4's step-halving), stopping when the Newton
//! decrement GᵀH⁻¹G falls below the tolerance.
//!
//! The Laplace deviance (lme4's `devfun` with nAGQ = 1: the penalised least-squares
//! formulation of Bates et al. 2015 carried to GLMMs as in lme4's `glmerLaplace`) at the
//! conditional mode û is
//!
//! d(θ, β) = −2 Σᵣ log p(kᵣ | ûᵣ) + ‖û‖² + Σᵢ log det Hᵢ(ûᵢ),
//!
//! with the full binomial log-likelihood (log C(mᵣ, kᵣ) included), so −d/2 is lme4's
//! `logLik()`. The joint version updates β with u (lme4's first stage, nAGQ = 0); its
//! Newton system is solved blockwise through the Schur complement
//! S = XᵀWX − Σᵢ CᵢᵀHᵢ⁻¹Cᵢ, Cᵢ = ΛᵀZᵢᵀWᵢXᵢ, which at the mode is lme4's RXᵀRX.

use super::super::linalg::{Sym, sym_det, sym_inv, sym_vec};
use super::data::GlmmData;
use super::dense::{chol_solve, cholesky};
use super::family::logistic;
use crate::numeric::LogisticPair;

/// Below this Newton decrement (half-deviance units) a step is taken in full without
/// the step-halving check: Newton's method is then in its quadratic region, and the
/// decrease of φ (about half the decrement) can be below the rounding of φ itself.
const FULL_STEP_DEC: f64 = 1e-6;

/// Lower-triangular Λ as (λ₀, λ₁, λ₂).
pub(crate) type Lam = [f64; 3];

/// Settings of the inner (PIRLS) iterations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PirlsOptions {
    /// Converged once a step was taken with Newton decrement below this (half-deviance
    /// units; the step itself then leaves an error of order tol²).
    pub tol: f64,
    /// Newton steps per mode (each with up to 40 halvings).
    pub max_iter: usize,
}

/// A Laplace evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Eval {
    /// d(θ, β) (+∞ where the modes could not be computed).
    pub deviance: f64,
    /// Whether every mode met the tolerance.
    pub converged: bool,
}

impl Eval {
    /// The evaluation at `deviance`, +∞ when it is not finite.
    fn new(deviance: f64, converged: bool) -> Self {
        Eval {
            deviance: if deviance.is_finite() {
                deviance
            } else {
                f64::INFINITY
            },
            converged,
        }
    }
}

/// xᵣᵀβ for every row.
pub(crate) fn offsets(d: &GlmmData, beta: &[f64]) -> Vec<f64> {
    d.x.chunks_exact(d.p)
        .map(|row| row.iter().zip(beta).map(|(a, b)| a * b).sum())
        .collect()
}

/// Λᵀzᵣ for zᵣ = (1, t).
#[inline]
fn zl(lam: &Lam, t: f64) -> [f64; 2] {
    [lam[0] + lam[1] * t, lam[2] * t]
}

/// φᵢ, Gᵢ, Hᵢ of group i at uᵢ.
#[derive(Debug, Clone, Copy)]
struct Terms {
    phi: f64,
    g: [f64; 2],
    h: Sym,
}

fn group_terms(d: &GlmmData, i: usize, lam: &Lam, off: &[f64], u: [f64; 2]) -> Terms {
    let (mut phi, mut g, mut h) = (0.0, [0.0; 2], [0.0; 3]);
    let rows = d.starts[i]..d.starts[i + 1];
    let cols = d.t[rows.clone()]
        .iter()
        .zip(&d.k[rows.clone()])
        .zip(&d.m[rows.clone()])
        .zip(&off[rows]);
    for (((&t, &k), &m), &o) in cols {
        let z = zl(lam, t);
        let eta = o + z[0] * u[0] + z[1] * u[1];
        let pair = LogisticPair::new(eta);
        let (mu, sp) = (pair.logistic().0, pair.softplus().0);
        phi += m * sp - k * eta;
        let res = m * mu - k;
        let w = m * mu * (1.0 - mu);
        g[0] += res * z[0];
        g[1] += res * z[1];
        h[0] += w * z[0] * z[0];
        h[1] += w * z[0] * z[1];
        h[2] += w * z[1] * z[1];
    }
    phi += 0.5 * (u[0] * u[0] + u[1] * u[1]);
    g[0] += u[0];
    g[1] += u[1];
    h[0] += 1.0;
    h[2] += 1.0;
    Terms { phi, g, h }
}

/// Conditional mode of uᵢ given β (through `off`) by Newton with step halving, from
/// the `u` passed in (updated in place); returns the terms at the mode.
fn group_mode(
    d: &GlmmData,
    i: usize,
    lam: &Lam,
    off: &[f64],
    u: &mut [f64; 2],
    opts: &PirlsOptions,
) -> (Terms, bool) {
    let mut cur = group_terms(d, i, lam, off, *u);
    for _ in 0..opts.max_iter {
        let hinv = sym_inv(&cur.h);
        let step = sym_vec(&hinv, &cur.g);
        let dec = cur.g[0] * step[0] + cur.g[1] * step[1];
        if !dec.is_finite() {
            return (cur, false);
        }
        if dec <= 0.0 {
            return (cur, true);
        }
        if dec < FULL_STEP_DEC {
            // Quadratic convergence region: the full step, whose decrease of φ may be
            // below rounding and so cannot be checked.
            *u = [u[0] - step[0], u[1] - step[1]];
            cur = group_terms(d, i, lam, off, *u);
            if dec < opts.tol {
                return (cur, true);
            }
            continue;
        }
        let mut s = 1.0;
        let mut moved = false;
        for _ in 0..40 {
            let cand = [u[0] - s * step[0], u[1] - s * step[1]];
            let next = group_terms(d, i, lam, off, cand);
            if next.phi <= cur.phi {
                *u = cand;
                cur = next;
                moved = true;
                break;
            }
            s *= 0.5;
        }
        if !moved {
            return (cur, false);
        }
    }
    (cur, false)
}

/// Laplace deviance with β fixed and every uᵢ at its conditional mode (u warm-started
/// from and written back to `u`).
pub(crate) fn laplace_u(
    d: &GlmmData,
    lam: &Lam,
    beta: &[f64],
    u: &mut [[f64; 2]],
    opts: &PirlsOptions,
) -> Eval {
    let off = offsets(d, beta);
    let mut total = 0.0;
    let mut converged = true;
    for (i, ui) in u.iter_mut().enumerate() {
        let (t, ok) = group_mode(d, i, lam, &off, ui, opts);
        converged &= ok;
        total += 2.0 * t.phi + sym_det(&t.h).ln();
    }
    let deviance = total - 2.0 * d.ln_choose_sum;
    Eval::new(deviance, converged)
}

/// Every group's terms plus the fixed-effect blocks at (β, u).
struct Full {
    phi: f64,
    terms: Vec<Terms>,
    /// Cᵢ = ΛᵀZᵢᵀWᵢXᵢ, 2 × p per group, row-major, groups concatenated.
    c: Vec<f64>,
    /// Xᵀ(mμ − k).
    gb: Vec<f64>,
    /// XᵀWX, p × p.
    a: Vec<f64>,
}

fn full_terms(d: &GlmmData, lam: &Lam, beta: &[f64], u: &[[f64; 2]]) -> Full {
    let p = d.p;
    let off = offsets(d, beta);
    let n_groups = d.n_groups();
    let mut out = Full {
        phi: 0.0,
        terms: Vec::with_capacity(n_groups),
        c: vec![0.0; n_groups * 2 * p],
        gb: vec![0.0; p],
        a: vec![0.0; p * p],
    };
    for (i, ui) in u.iter().enumerate() {
        let ci = &mut out.c[i * 2 * p..(i + 1) * 2 * p];
        let rows = d.starts[i]..d.starts[i + 1];
        let cols = d.x[rows.start * p..rows.end * p]
            .chunks_exact(p)
            .zip(&d.t[rows.clone()])
            .zip(&d.k[rows.clone()])
            .zip(&d.m[rows.clone()])
            .zip(&off[rows]);
        for ((((xr, &t), &k), &m), &o) in cols {
            let z = zl(lam, t);
            let eta = o + z[0] * ui[0] + z[1] * ui[1];
            let mu = logistic(eta);
            let res = m * mu - k;
            let w = m * mu * (1.0 - mu);
            for j in 0..p {
                ci[j] += w * z[0] * xr[j];
                ci[p + j] += w * z[1] * xr[j];
                out.gb[j] += res * xr[j];
                for l in 0..=j {
                    out.a[j * p + l] += w * xr[j] * xr[l];
                }
            }
        }
        let t = group_terms(d, i, lam, &off, *ui);
        out.phi += t.phi;
        out.terms.push(t);
    }
    for j in 0..p {
        for l in 0..j {
            out.a[l * p + j] = out.a[j * p + l];
        }
    }
    out
}

/// Schur complement S = XᵀWX − Σᵢ CᵢᵀHᵢ⁻¹Cᵢ of a [`Full`], with `hinv[i]` = Hᵢ⁻¹.
fn schur(f: &Full, hinv: &[Sym], p: usize) -> Vec<f64> {
    let mut s = f.a.clone();
    for (i, hinv) in hinv.iter().enumerate() {
        let c = &f.c[i * 2 * p..(i + 1) * 2 * p];
        for j in 0..p {
            let hc0 = hinv[0] * c[j] + hinv[1] * c[p + j];
            let hc1 = hinv[1] * c[j] + hinv[2] * c[p + j];
            for l in 0..p {
                s[l * p + j] -= c[l] * hc0 + c[p + l] * hc1;
            }
        }
    }
    s
}

/// Joint mode of (u, β) for given Λ by Newton with step halving (β and u warm-started
/// from and written back to the arguments); the Laplace deviance there.
pub(crate) fn laplace_joint(
    d: &GlmmData,
    lam: &Lam,
    beta: &mut [f64],
    u: &mut [[f64; 2]],
    opts: &PirlsOptions,
) -> Eval {
    let p = d.p;
    let mut converged = false;
    let mut cur = full_terms(d, lam, beta, u);
    'outer: for _ in 0..opts.max_iter {
        let hinv: Vec<Sym> = cur.terms.iter().map(|t| sym_inv(&t.h)).collect();
        let s = schur(&cur, &hinv, p);
        let Some(l) = cholesky(&s, p) else {
            break;
        };
        // rhs = −g_β + Σ CᵢᵀHᵢ⁻¹Gᵢ
        let mut db: Vec<f64> = cur.gb.iter().map(|v| -v).collect();
        for (i, t) in cur.terms.iter().enumerate() {
            let hg = sym_vec(&hinv[i], &t.g);
            let c = &cur.c[i * 2 * p..(i + 1) * 2 * p];
            for j in 0..p {
                db[j] += c[j] * hg[0] + c[p + j] * hg[1];
            }
        }
        chol_solve(&l, p, &mut db);
        let du: Vec<[f64; 2]> = cur
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let c = &cur.c[i * 2 * p..(i + 1) * 2 * p];
                let cd0: f64 = (0..p).map(|j| c[j] * db[j]).sum();
                let cd1: f64 = (0..p).map(|j| c[p + j] * db[j]).sum();
                let v = sym_vec(&hinv[i], &[t.g[0] + cd0, t.g[1] + cd1]);
                [-v[0], -v[1]]
            })
            .collect();
        let dec: f64 = -(cur
            .terms
            .iter()
            .zip(&du)
            .map(|(t, v)| t.g[0] * v[0] + t.g[1] * v[1])
            .sum::<f64>()
            + cur.gb.iter().zip(&db).map(|(g, v)| g * v).sum::<f64>());
        if !dec.is_finite() {
            break;
        }
        if dec <= 0.0 {
            converged = true;
            break;
        }
        let mut step = 1.0;
        for _ in 0..40 {
            let full = dec < FULL_STEP_DEC;
            let b2: Vec<f64> = beta.iter().zip(&db).map(|(b, v)| b + step * v).collect();
            let u2: Vec<[f64; 2]> = u
                .iter()
                .zip(&du)
                .map(|(a, v)| [a[0] + step * v[0], a[1] + step * v[1]])
                .collect();
            let next = full_terms(d, lam, &b2, &u2);
            if full || next.phi <= cur.phi {
                beta.copy_from_slice(&b2);
                u.copy_from_slice(&u2);
                cur = next;
                if dec < opts.tol {
                    converged = true;
                    break 'outer;
                }
                continue 'outer;
            }
            step *= 0.5;
        }
        break;
    }
    let logdet: f64 = cur.terms.iter().map(|t| sym_det(&t.h).ln()).sum();
    let deviance = 2.0 * cur.phi + logdet - 2.0 * d.ln_choose_sum;
    Eval::new(deviance, converged)
}

/// lme4's RXᵀRX at (β, u): S = XᵀWX − Σᵢ CᵢᵀHᵢ⁻¹Cᵢ (p × p). Its inverse is the PIRLS
/// approximation of the covariance of β̂ (lme4's `vcov(use.hessian = FALSE)`, σ = 1).
pub(crate) fn rx_cross(d: &GlmmData, lam: &Lam, beta: &[f64], u: &[[f64; 2]]) -> Vec<f64> {
    let full = full_terms(d, lam, beta, u);
    let hinv: Vec<Sym> = full.terms.iter().map(|t| sym_inv(&t.h)).collect();
    schur(&full, &hinv, d.p)
}

/// Hᵢ⁻¹ of every group at (β, u): the conditional covariance of uᵢ (Laplace), so that
/// Var(bᵢ | y) ≈ ΛHᵢ⁻¹Λᵀ (lme4's `condVar`).
pub(crate) fn group_hinv(d: &GlmmData, lam: &Lam, beta: &[f64], u: &[[f64; 2]]) -> Vec<Sym> {
    let off = offsets(d, beta);
    u.iter()
        .enumerate()
        .map(|(i, ui)| sym_inv(&group_terms(d, i, lam, &off, *ui).h))
        .collect()
}
