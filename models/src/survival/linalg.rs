//! Small dense symmetric positive-definite algebra for the Cox information matrix
//! (p ≤ ~10): [`crate::numeric`]'s Cholesky with the Cox pivot tolerance. Matrices are
//! row-major `p × p` slices.

/// A pivot counts as zero when it is at most this fraction of its column's original
/// diagonal, i.e. when the column is explained by the earlier ones up to R² > 1 − 1e-10
/// in the metric of the matrix. (R's `coxph` uses `toler.chol = eps^0.75` ≈ 1.8e-12
/// relative to the largest diagonal element.)
pub(crate) const PIVOT_TOL: f64 = 1e-10;

/// Lower Cholesky factor L of `a` ([`crate::numeric::cholesky`] with [`PIVOT_TOL`]):
/// `Err(k)` names the first column that is (numerically) a linear combination of columns
/// `0..k`, or carries no information.
pub(crate) fn cholesky(a: &[f64], p: usize) -> Result<Vec<f64>, usize> {
    crate::numeric::cholesky(a, p, PIVOT_TOL)
}

pub(crate) use crate::numeric::{cholesky_inverse, cholesky_solve};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_spd_matrix_times_matrix_is_identity() {
        // A = B Bᵀ + I for a fixed B: symmetric positive definite
        let a = [
            5.0, 2.0, -1.0, 0.5, //
            2.0, 4.0, 0.3, -0.2, //
            -1.0, 0.3, 3.0, 0.7, //
            0.5, -0.2, 0.7, 2.0,
        ];
        let p = 4;
        let l = cholesky(&a, p).unwrap();
        // L Lᵀ reproduces A
        for i in 0..p {
            for j in 0..p {
                let s: f64 = (0..p).map(|k| l[i * p + k] * l[j * p + k]).sum();
                assert!((s - a[i * p + j]).abs() < 1e-14);
            }
        }
        let inv = cholesky_inverse(&l, p);
        for i in 0..p {
            for j in 0..p {
                let s: f64 = (0..p).map(|k| a[i * p + k] * inv[k * p + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-14, "({i},{j}) = {s}");
            }
        }
        let x = cholesky_solve(&l, p, &[1.0, 2.0, 3.0, 4.0]);
        for i in 0..p {
            let s: f64 = (0..p).map(|k| a[i * p + k] * x[k]).sum();
            assert!((s - (i + 1) as f64).abs() < 1e-13);
        }
    }

    #[test]
    fn dependent_column_is_named() {
        // column 2 = column 0 + column 1
        let a = [
            2.0, 1.0, 3.0, //
            1.0, 2.0, 3.0, //
            3.0, 3.0, 6.0,
        ];
        assert_eq!(cholesky(&a, 3), Err(2));
        // a zero column carries no information
        let z = [1.0, 0.0, 0.0, 0.0];
        assert_eq!(cholesky(&z, 2), Err(1));
    }
}
