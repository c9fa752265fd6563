//! The penalised least-squares problem behind the MAP fit, on its Gram matrix: the
//! exact θ step by feature-sign search, the exact σ step, their alternation and the
//! objective F (module docs of [`forecast`](super)).

use super::config::SIGMA_FLOOR;

/// Prior SD of the half-normal prior on σ (Prophet's `normal(0, 0.5)`).
const SIGMA_PRIOR_SD: f64 = 0.5;

/// The penalised least-squares problem behind the MAP fit, on its Gram matrix
/// (θ = `[m, k, δ…, β…]`).
pub(super) struct Problem<'a> {
    n: usize,
    p: usize,
    x: &'a [f64],
    y: &'a [f64],
    gram: Vec<f64>,
    xty: Vec<f64>,
    /// Prior precision (1/variance) of each coefficient (0 for δ).
    ridge: Vec<f64>,
    /// Laplace weight 1/τ of each coefficient (0 except δ).
    l1: Vec<f64>,
}

impl<'a> Problem<'a> {
    pub(super) fn new(
        x: &'a [f64],
        y: &'a [f64],
        n: usize,
        p: usize,
        ridge: Vec<f64>,
        l1: Vec<f64>,
    ) -> Self {
        let mut gram = vec![0.0; p * p];
        let mut xty = vec![0.0; p];
        for i in 0..n {
            let row = &x[i * p..(i + 1) * p];
            for a in 0..p {
                xty[a] += row[a] * y[i];
                for b in a..p {
                    gram[a * p + b] += row[a] * row[b];
                }
            }
        }
        for a in 0..p {
            for b in 0..a {
                gram[a * p + b] = gram[b * p + a];
            }
        }
        Self {
            n,
            p,
            x,
            y,
            gram,
            xty,
            ridge,
            l1,
        }
    }

    /// Residual sum of squares, from the residuals themselves (no cancellation).
    pub(super) fn rss(&self, theta: &[f64]) -> f64 {
        (0..self.n)
            .map(|i| {
                let row = &self.x[i * self.p..(i + 1) * self.p];
                let f: f64 = row.iter().zip(theta).map(|(a, b)| a * b).sum();
                (self.y[i] - f).powi(2)
            })
            .sum()
    }

    /// The conditional minimiser of F over σ for a given RSS, floored.
    pub(super) fn sigma_hat(&self, rss: f64) -> f64 {
        let n = self.n as f64;
        // 4σ⁴ + nσ² − RSS = 0 with the half-normal(0, 0.5) prior: σ² = 2 RSS / (n + √(n² + 16 RSS)).
        let s2 = 2.0 * rss / (n + (n * n + 4.0 * rss / (SIGMA_PRIOR_SD * SIGMA_PRIOR_SD)).sqrt());
        s2.sqrt().max(SIGMA_FLOOR)
    }

    /// The negative log posterior F (module docs).
    pub(super) fn objective(&self, theta: &[f64], sigma: f64) -> f64 {
        let rss = self.rss(theta);
        let mut f = self.n as f64 * sigma.ln()
            + rss / (2.0 * sigma * sigma)
            + sigma * sigma / (2.0 * SIGMA_PRIOR_SD * SIGMA_PRIOR_SD);
        for ((t, r), l) in theta.iter().zip(&self.ridge).zip(&self.l1) {
            f += 0.5 * r * t * t + l * t.abs();
        }
        f
    }

    /// Exact minimiser over θ at noise variance `s2` of
    /// `½θᵀHθ − bᵀθ + Σ γ_j|θ_j|` with `H = XᵀX + s2·diag(ridge)`, `b = Xᵀy`,
    /// `γ = s2·l1` (F times σ², σ fixed), by feature-sign search (Lee, Battle, Raina &
    /// Ng 2007, "Efficient sparse coding algorithms", NIPS 19): starting from `theta`,
    /// repeatedly activate the zero δ_j that most violates `|∂_j| ≤ γ_j`, solve the
    /// smooth problem for the current signs on the active set (one Cholesky solve),
    /// and walk towards that solution, stopping at the best point where a coefficient
    /// crosses zero (which then leaves the active set). The objective falls strictly at
    /// every step, so it ends in finitely many steps at the exact optimum (when the
    /// optimality conditions hold). Returns the steps taken, or `None` if `max_steps`
    /// ran out or a system was not positive definite.
    fn feature_sign(&self, theta: &mut [f64], s2: f64, max_steps: usize) -> Option<usize> {
        let p = self.p;
        let mut h = self.gram.clone();
        for j in 0..p {
            h[j * p + j] += s2 * self.ridge[j];
        }
        let gamma: Vec<f64> = self.l1.iter().map(|l| s2 * l).collect();
        let b = &self.xty;
        let grad = |theta: &[f64], j: usize| -> f64 {
            h[j * p..(j + 1) * p]
                .iter()
                .zip(theta)
                .map(|(a, t)| a * t)
                .sum::<f64>()
                - b[j]
        };
        let objective = |theta: &[f64]| -> f64 {
            let mut f = 0.0;
            for j in 0..p {
                let hj: f64 = h[j * p..(j + 1) * p]
                    .iter()
                    .zip(theta)
                    .map(|(a, t)| a * t)
                    .sum();
                f += 0.5 * theta[j] * hj - b[j] * theta[j] + gamma[j] * theta[j].abs();
            }
            f
        };
        // Sign of each penalised coefficient in the active set (0: inactive).
        let mut sign: Vec<f64> = (0..p)
            .map(|j| {
                if gamma[j] > 0.0 && theta[j] != 0.0 {
                    theta[j].signum()
                } else {
                    0.0
                }
            })
            .collect();
        let mut steps = 0;
        let mut need_solve = true;
        loop {
            if !need_solve {
                // Activate the worst violator among the zero penalised coefficients.
                let mut worst: Option<(usize, f64)> = None;
                for j in 0..p {
                    if gamma[j] > 0.0 && sign[j] == 0.0 {
                        let g = grad(theta, j);
                        let excess = g.abs() - gamma[j];
                        if excess > 1e-12 * gamma[j].max(f64::MIN_POSITIVE)
                            && worst.is_none_or(|(_, e)| excess > e)
                        {
                            worst = Some((j, excess));
                        }
                    }
                }
                match worst {
                    None => return Some(steps),
                    Some((j, _)) => sign[j] = -grad(theta, j).signum(),
                }
            }
            // Feature-sign step, repeated until the full step is taken.
            loop {
                steps += 1;
                if steps > max_steps {
                    return None;
                }
                let active: Vec<usize> = (0..p)
                    .filter(|&j| gamma[j] == 0.0 || sign[j] != 0.0)
                    .collect();
                let na = active.len();
                let mut a = vec![0.0; na * na];
                let mut rhs = vec![0.0; na];
                for (r, &j) in active.iter().enumerate() {
                    for (c, &l) in active.iter().enumerate() {
                        a[r * na + c] = h[j * p + l];
                    }
                    rhs[r] = b[j] - gamma[j] * sign[j];
                }
                let sol = cholesky_solve(&mut a, &mut rhs, na)?;
                let mut target = vec![0.0; p];
                for (r, &j) in active.iter().enumerate() {
                    target[j] = sol[r];
                }
                // Discrete line search: the target and every zero crossing on the way.
                let mut best = target.clone();
                let mut best_f = objective(&target);
                let mut best_zero: Option<usize> = None;
                for &j in &active {
                    if gamma[j] > 0.0 && theta[j] != 0.0 && theta[j] * target[j] <= 0.0 {
                        let at = theta[j] / (theta[j] - target[j]);
                        let mut point: Vec<f64> = theta
                            .iter()
                            .zip(&target)
                            .map(|(c, t)| c + at * (t - c))
                            .collect();
                        point[j] = 0.0;
                        let f = objective(&point);
                        if f < best_f {
                            best_f = f;
                            best = point;
                            best_zero = Some(j);
                        }
                    }
                }
                theta.copy_from_slice(&best);
                // The step is final when the target was taken with the signs it was solved
                // for; otherwise re-solve with the signs reached.
                let consistent = best_zero.is_none()
                    && (0..p).all(|j| sign[j] == 0.0 || theta[j] * sign[j] > 0.0);
                for j in 0..p {
                    if gamma[j] > 0.0 {
                        sign[j] = if theta[j] == 0.0 {
                            0.0
                        } else {
                            theta[j].signum()
                        };
                    }
                }
                if consistent {
                    break;
                }
            }
            need_solve = false;
        }
    }

    /// Alternates the exact θ step ([`Self::feature_sign`]) and the exact σ step until σ
    /// changes by less than `tol` (relative); returns (rounds, converged).
    pub(super) fn solve(&self, theta: &mut [f64], max_iter: usize, tol: f64) -> (usize, bool) {
        let mut sigma = self.sigma_hat(self.rss(theta));
        for it in 1..=max_iter {
            if self
                .feature_sign(theta, sigma * sigma, MAX_FEATURE_SIGN_STEPS)
                .is_none()
            {
                return (it, false);
            }
            let new_sigma = self.sigma_hat(self.rss(theta));
            let ds = (new_sigma - sigma).abs() / new_sigma;
            sigma = new_sigma;
            if ds < tol {
                return (it, true);
            }
        }
        (max_iter, false)
    }
}

/// Most feature-sign steps in one θ step (each is one small Cholesky solve).
const MAX_FEATURE_SIGN_STEPS: usize = 10_000;

/// Solves the symmetric positive-definite system `a x = b` (`a` row-major n × n) by
/// Cholesky; `None` if `a` is not numerically positive definite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<Vec<f64>> {
    let l = crate::numeric::cholesky(a, n, 0.0).ok()?;
    crate::numeric::cholesky_solve_in_place(&l, n, b);
    Some(b.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] x = [2, 1] → x = [0.5, 0]
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        let x = cholesky_solve(&mut a, &mut b, 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-15 && x[1].abs() < 1e-15);
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(cholesky_solve(&mut singular, &mut [1.0, 1.0], 2).is_none());
    }
}
