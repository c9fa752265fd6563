//! The numeric toolbox shared by the models: the logistic function and its log-partition
//! (softplus), and small dense symmetric positive-definite algebra (Cholesky
//! factorisation, solves, inverse) on row-major `p × p` slices. One implementation of
//! each, tested here; the models call these instead of keeping their own copies. The
//! normal distribution (erfc, Φ, Φ⁻¹) and sample quantiles are in the `normal` module,
//! re-exported here.

mod normal;

pub use normal::{erfc, normal_cdf, normal_quantile, quantile_sorted};

/// The logistic function 1/(1 + e^−x), accurate in both tails (no overflow).
#[inline]
pub fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + eˣ) (softplus) without overflow or loss of precision for large |x|.
#[inline]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// The logistic function and softplus at `x` and at `−x` from the one exponential they
/// all compute, e^−|x|, and (for softplus) one ln(1 + e^−|x|): each value is bit for bit
/// what [`logistic`] and [`softplus`] return, at a third to a fifth of the transcendental
/// calls where a likelihood needs several of them (an IRT item's ln P, ln(1 − P) and
/// their derivatives at a node).
#[derive(Debug, Clone, Copy)]
pub struct LogisticPair {
    x: f64,
    /// e^−|x|
    e: f64,
}

impl LogisticPair {
    /// Computes e^−|x|.
    #[inline]
    pub fn new(x: f64) -> Self {
        Self {
            x,
            e: (-x.abs()).exp(),
        }
    }

    /// (σ(x), σ(−x)) = ([`logistic`]`(x)`, [`logistic`]`(−x)`).
    #[inline]
    pub fn logistic(self) -> (f64, f64) {
        let (big, small) = (1.0 / (1.0 + self.e), self.e / (1.0 + self.e));
        // logistic(y) is 1/(1 + e^−y) for y ≥ 0 (−0 included) and e^y/(1 + e^y) below
        let at_x = if self.x >= 0.0 { big } else { small };
        let at_minus_x = if -self.x >= 0.0 { big } else { small };
        (at_x, at_minus_x)
    }

    /// ([`softplus`]`(x)`, [`softplus`]`(−x)`) = (ln(1 + eˣ), ln(1 + e⁻ˣ)), one `ln_1p`.
    #[inline]
    pub fn softplus(self) -> (f64, f64) {
        let l = self.e.ln_1p();
        let of = |y: f64| if y > 0.0 { y + l } else { l };
        (of(self.x), of(-self.x))
    }
}

/// Lower Cholesky factor L (row-major, zeros above the diagonal) of the symmetric `p × p`
/// matrix `a`, with a = L Lᵀ. `Err(k)` names the first column whose pivot is not finite
/// or not above `rel_tol` times the column's original diagonal (`rel_tol = 0`: not
/// positive): column `k` is, numerically, a combination of columns `0..k`.
pub fn cholesky(a: &[f64], p: usize, rel_tol: f64) -> Result<Vec<f64>, usize> {
    debug_assert_eq!(a.len(), p * p);
    let mut l = vec![0.0; p * p];
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= l[j * p + k] * l[j * p + k];
        }
        let ajj = a[j * p + j];
        if !(d.is_finite() && ajj.is_finite() && d > rel_tol * ajj.abs() && d > 0.0) {
            return Err(j);
        }
        let ljj = d.sqrt();
        l[j * p + j] = ljj;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            l[i * p + j] = s / ljj;
        }
    }
    Ok(l)
}

/// Solves L Lᵀ x = b in place (b becomes x), L from [`cholesky`].
pub fn cholesky_solve_in_place(l: &[f64], p: usize, b: &mut [f64]) {
    // forward: L y = b
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * b[k];
        }
        b[i] = s / l[i * p + i];
    }
    // backward: Lᵀ x = y
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in i + 1..p {
            s -= l[k * p + i] * b[k];
        }
        b[i] = s / l[i * p + i];
    }
}

/// Solves L Lᵀ x = b, L from [`cholesky`].
pub fn cholesky_solve(l: &[f64], p: usize, b: &[f64]) -> Vec<f64> {
    let mut x = b.to_vec();
    cholesky_solve_in_place(l, p, &mut x);
    x
}

/// The inverse (L Lᵀ)⁻¹ (row-major, exactly symmetric) from the factor `l`.
pub fn cholesky_inverse(l: &[f64], p: usize) -> Vec<f64> {
    let mut inv = vec![0.0; p * p];
    let mut e = vec![0.0; p];
    for j in 0..p {
        e.fill(0.0);
        e[j] = 1.0;
        cholesky_solve_in_place(l, p, &mut e);
        for i in 0..p {
            inv[i * p + j] = e[i];
        }
    }
    for i in 0..p {
        for j in 0..i {
            let m = 0.5 * (inv[i * p + j] + inv[j * p + i]);
            inv[i * p + j] = m;
            inv[j * p + i] = m;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logistic_pair_is_the_functions_bit_for_bit() {
        let mut xs = vec![
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            1.0,
            -1.0,
            36.0,
            -36.0,
            745.0,
            -745.0,
            800.0,
            -800.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        xs.extend((-2000..=2000).map(|i| f64::from(i) * 0.0137));
        for x in xs {
            let pair = LogisticPair::new(x);
            let ((p, q), (sp, sm)) = (pair.logistic(), pair.softplus());
            assert_eq!(p.to_bits(), logistic(x).to_bits(), "logistic at {x}");
            assert_eq!(q.to_bits(), logistic(-x).to_bits(), "logistic at -{x}");
            assert_eq!(sp.to_bits(), softplus(x).to_bits(), "softplus at {x}");
            assert_eq!(sm.to_bits(), softplus(-x).to_bits(), "softplus at -{x}");
        }
    }

    #[test]
    fn logistic_and_softplus_are_stable_and_consistent() {
        assert_eq!(logistic(0.0), 0.5);
        assert!((logistic(800.0) - 1.0).abs() < 1e-300 && logistic(-800.0) >= 0.0);
        assert!((softplus(800.0) - 800.0).abs() < 1e-12);
        assert!((softplus(-40.0) - (-40f64).exp()).abs() < 1e-30);
        // d softplus / dx = logistic
        for x in [-5.0, -0.3, 0.0, 2.0, 9.0] {
            let h = 1e-6;
            let fd = (softplus(x + h) - softplus(x - h)) / (2.0 * h);
            assert!((fd - logistic(x)).abs() < 1e-9, "{x}");
        }
    }

    #[test]
    fn cholesky_solves_and_inverts_and_names_a_dependent_column() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3, 0.0).unwrap();
        let x = cholesky_solve(&l, 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let ax: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
            assert!((ax - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        let inv = cholesky_inverse(&l, 3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        // third column = first + second
        let b = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0];
        assert_eq!(cholesky(&b, 3, 1e-10), Err(2));
    }
}
