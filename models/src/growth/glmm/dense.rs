//! Small dense symmetric matrices (private): the p × p blocks of the fixed effects,
//! stored row-major in a `Vec<f64>`.

/// Lower Cholesky factor L (LLᵀ = A) of a symmetric p × p matrix; `None` when A is not
/// positive definite (a pivot ≤ 0 or not finite). [`crate::numeric::cholesky`].
pub(crate) fn cholesky(a: &[f64], p: usize) -> Option<Vec<f64>> {
    crate::numeric::cholesky(a, p, 0.0).ok()
}

pub(crate) use crate::numeric::{
    cholesky_inverse as chol_inverse, cholesky_solve_in_place as chol_solve,
};

/// First column (in order) that is, up to `tol`, a linear combination of the columns
/// before it, from the Gram matrix `g` (p × p) of the columns: the Cholesky pivot of the
/// column-normalised Gram matrix is 1 − R² of that column on the earlier ones.
pub(crate) fn first_dependent_column(g: &[f64], p: usize, tol: f64) -> Option<usize> {
    let scale: Vec<f64> = (0..p)
        .map(|j| {
            let d = g[j * p + j];
            if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 }
        })
        .collect();
    let mut l = vec![0.0; p * p];
    for j in 0..p {
        if scale[j] == 0.0 {
            return Some(j);
        }
        let mut d = g[j * p + j] * scale[j] * scale[j];
        for k in 0..j {
            d -= l[j * p + k] * l[j * p + k];
        }
        if d.is_nan() || d <= tol {
            return Some(j);
        }
        let d = d.sqrt();
        l[j * p + j] = d;
        for i in j + 1..p {
            let mut s = g[i * p + j] * scale[i] * scale[j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            l[i * p + j] = s / d;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_inverts() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).expect("positive definite");
        let mut x = vec![1.0, 2.0, 3.0];
        chol_solve(&l, 3, &mut x);
        for i in 0..3 {
            let ax: f64 = (0..3).map(|k| a[i * 3 + k] * x[k]).sum();
            assert!((ax - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        let inv = chol_inverse(&l, 3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn finds_the_dependent_column() {
        // Columns: 1, x, 2x + 1 (dependent), z.
        let cols = [
            [1.0, 1.0, 1.0, 1.0],
            [0.0, 1.0, 2.0, 5.0],
            [1.0, 3.0, 5.0, 11.0],
            [1.0, -1.0, 0.5, 2.0],
        ];
        let g: Vec<f64> = (0..16)
            .map(|ij| {
                let (i, j) = (ij / 4, ij % 4);
                cols[i].iter().zip(&cols[j]).map(|(a, b)| a * b).sum()
            })
            .collect();
        assert_eq!(first_dependent_column(&g, 4, 1e-9), Some(2));
        let g3: Vec<f64> = [0, 1, 3]
            .iter()
            .flat_map(|&i| {
                let ci = cols[i];
                [0, 1, 3]
                    .iter()
                    .map(move |&j| ci.iter().zip(&cols[j]).map(|(a, b)| a * b).sum())
            })
            .collect();
        assert_eq!(first_dependent_column(&g3, 3, 1e-9), None);
    }
}
