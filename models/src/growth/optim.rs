//! Derivative-free minimisation: Nelder–Mead simplex (Nelder & Mead 1965, with the
//! standard coefficients reflection 1, expansion 2, contraction ½, shrink ½ as in
//! Lagarias et al. 1998), restarted from the best vertex until a restart no longer
//! improves — the usual guard against the simplex collapsing early.

/// Settings of [`minimize`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NmOptions {
    /// Budget of function evaluations over all restarts.
    pub max_evals: usize,
    /// Converged when the spread of f over the simplex is ≤ `ftol_abs + ftol_rel·|f_best|`…
    pub ftol_abs: f64,
    /// …(relative part)…
    pub ftol_rel: f64,
    /// …and every vertex is within `xtol` (max-norm) of the best vertex.
    pub xtol: f64,
    /// Initial simplex edge.
    pub step: f64,
}

/// Result of [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NmResult {
    /// Best point found.
    pub x: Vec<f64>,
    /// f at `x`.
    pub f: f64,
    /// Function evaluations used.
    pub evals: usize,
    /// Whether the tolerances were met (and a restart confirmed it) within budget.
    pub converged: bool,
}

/// One Nelder–Mead run from `x0`; returns (x, f, evals, converged).
fn run<F: FnMut(&[f64]) -> f64>(
    f: &mut F,
    x0: &[f64],
    step: f64,
    opts: &NmOptions,
    budget: usize,
) -> (Vec<f64>, f64, usize, bool) {
    let n = x0.len();
    let mut evals = 0usize;
    let mut eval = |x: &[f64], evals: &mut usize| {
        *evals += 1;
        let v = f(x);
        if v.is_nan() { f64::INFINITY } else { v }
    };
    let mut simplex: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
    simplex.push(x0.to_vec());
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        simplex.push(x);
    }
    let mut fv: Vec<f64> = simplex.iter().map(|x| eval(x, &mut evals)).collect();
    let mut order: Vec<usize> = (0..=n).collect();
    loop {
        order.sort_by(|&a, &b| fv[a].total_cmp(&fv[b]));
        let (best, worst, second) = (order[0], order[n], order[n - 1]);
        let spread = fv[worst] - fv[best];
        let size = simplex
            .iter()
            .flat_map(|x| x.iter().zip(&simplex[best]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if fv[best].is_finite()
            && spread <= opts.ftol_abs + opts.ftol_rel * fv[best].abs()
            && size <= opts.xtol
        {
            return (simplex[best].clone(), fv[best], evals, true);
        }
        if evals >= budget {
            return (simplex[best].clone(), fv[best], evals, false);
        }
        let mut centroid = vec![0.0; n];
        for &i in &order[..n] {
            for (c, v) in centroid.iter_mut().zip(&simplex[i]) {
                *c += v / n as f64;
            }
        }
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[worst])
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let xr = along(1.0);
        let fr = eval(&xr, &mut evals);
        if fr < fv[best] {
            let xe = along(2.0);
            let fe = eval(&xe, &mut evals);
            if fe < fr {
                simplex[worst] = xe;
                fv[worst] = fe;
            } else {
                simplex[worst] = xr;
                fv[worst] = fr;
            }
            continue;
        }
        if fr < fv[second] {
            simplex[worst] = xr;
            fv[worst] = fr;
            continue;
        }
        // Outside contraction when the reflection beat the worst vertex, else inside.
        let xc = along(if fr < fv[worst] { 0.5 } else { -0.5 });
        let fc = eval(&xc, &mut evals);
        if fc < fv[worst].min(fr) {
            simplex[worst] = xc;
            fv[worst] = fc;
            continue;
        }
        let xb = simplex[best].clone();
        for &i in &order[1..] {
            for (v, b) in simplex[i].iter_mut().zip(&xb) {
                *v = b + 0.5 * (*v - b);
            }
            fv[i] = eval(&simplex[i], &mut evals);
        }
    }
}

/// Minimises `f` from `x0` by Nelder–Mead with restarts (see the module docs). NaN
/// values of `f` are treated as +∞.
pub(crate) fn minimize<F: FnMut(&[f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    opts: &NmOptions,
) -> NmResult {
    let (mut x, mut fx, mut evals, mut ok) = run(&mut f, x0, opts.step, opts, opts.max_evals);
    // Restart from the best vertex with a fresh simplex until no improvement.
    for _ in 0..10 {
        if !ok || evals >= opts.max_evals {
            break;
        }
        let scale = x.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let step = (0.1 * scale).max(10.0 * opts.xtol).min(opts.step);
        let (x2, f2, e2, ok2) = run(&mut f, &x, step, opts, opts.max_evals - evals);
        evals += e2;
        let improved = fx - f2 > opts.ftol_abs + opts.ftol_rel * fx.abs();
        if f2 < fx {
            x = x2;
            fx = f2;
        }
        ok = ok2;
        if !improved {
            break;
        }
    }
    NmResult {
        x,
        f: fx,
        evals,
        converged: ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rosenbrock_minimum() {
        let opts = NmOptions {
            max_evals: 20_000,
            ftol_abs: 1e-14,
            ftol_rel: 0.0,
            xtol: 1e-8,
            step: 0.5,
        };
        let r = minimize(
            |x| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2) + (x[2] - 3.0).powi(2),
            &[-1.2, 1.0, 0.0],
            &opts,
        );
        assert!(r.converged);
        assert!((r.x[0] - 1.0).abs() < 1e-6, "{:?}", r.x);
        assert!((r.x[1] - 1.0).abs() < 1e-6, "{:?}", r.x);
        assert!((r.x[2] - 3.0).abs() < 1e-6, "{:?}", r.x);
    }
}
