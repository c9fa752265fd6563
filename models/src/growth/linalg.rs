//! 2 × 2 matrix helpers (private). Symmetric matrices are stored as `[m00, m01, m11]`,
//! general ones row-major as `[[m00, m01], [m10, m11]]`.

pub(crate) type Sym = [f64; 3];
pub(crate) type Mat = [[f64; 2]; 2];

#[inline]
pub(crate) fn sym_det(s: &Sym) -> f64 {
    s[0] * s[2] - s[1] * s[1]
}

/// Inverse of a symmetric 2 × 2 matrix (caller checks the determinant).
#[inline]
pub(crate) fn sym_inv(s: &Sym) -> Sym {
    let d = sym_det(s);
    [s[2] / d, -s[1] / d, s[0] / d]
}

#[inline]
pub(crate) fn full(s: &Sym) -> Mat {
    [[s[0], s[1]], [s[1], s[2]]]
}

#[inline]
pub(crate) fn mul(a: &Mat, b: &Mat) -> Mat {
    [
        [
            a[0][0] * b[0][0] + a[0][1] * b[1][0],
            a[0][0] * b[0][1] + a[0][1] * b[1][1],
        ],
        [
            a[1][0] * b[0][0] + a[1][1] * b[1][0],
            a[1][0] * b[0][1] + a[1][1] * b[1][1],
        ],
    ]
}

#[inline]
pub(crate) fn transpose(a: &Mat) -> Mat {
    [[a[0][0], a[1][0]], [a[0][1], a[1][1]]]
}

#[inline]
pub(crate) fn mat_vec(a: &Mat, v: &[f64; 2]) -> [f64; 2] {
    [
        a[0][0] * v[0] + a[0][1] * v[1],
        a[1][0] * v[0] + a[1][1] * v[1],
    ]
}

#[inline]
pub(crate) fn sym_vec(s: &Sym, v: &[f64; 2]) -> [f64; 2] {
    [s[0] * v[0] + s[1] * v[1], s[1] * v[0] + s[2] * v[1]]
}

/// The symmetric part of a product known to be symmetric.
#[inline]
pub(crate) fn symmetrize(a: &Mat) -> Sym {
    [a[0][0], 0.5 * (a[0][1] + a[1][0]), a[1][1]]
}

/// tr(S T) for symmetric S, T.
#[inline]
pub(crate) fn tr_sym(s: &Sym, t: &Sym) -> f64 {
    s[0] * t[0] + 2.0 * s[1] * t[1] + s[2] * t[2]
}

/// Lᵀ S L for a lower-triangular L = [[l0, 0], [l1, l2]] and symmetric S.
#[inline]
pub(crate) fn lt_s_l(l: &[f64; 3], s: &Sym) -> Sym {
    // S L
    let sl00 = s[0] * l[0] + s[1] * l[1];
    let sl01 = s[1] * l[2];
    let sl10 = s[1] * l[0] + s[2] * l[1];
    let sl11 = s[2] * l[2];
    [
        l[0] * sl00 + l[1] * sl10,
        l[0] * sl01 + l[1] * sl11,
        l[2] * sl11,
    ]
}

/// L S Lᵀ for a lower-triangular L = [[l0, 0], [l1, l2]] and symmetric S.
#[inline]
pub(crate) fn l_s_lt(l: &[f64; 3], s: &Sym) -> Sym {
    // L S
    let ls00 = l[0] * s[0];
    let ls01 = l[0] * s[1];
    let ls10 = l[1] * s[0] + l[2] * s[1];
    let ls11 = l[1] * s[1] + l[2] * s[2];
    [
        ls00 * l[0],
        ls00 * l[1] + ls01 * l[2],
        ls10 * l[1] + ls11 * l[2],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangular_products_match_full_products() {
        let l = [1.3, -0.4, 0.7];
        let lm: Mat = [[l[0], 0.0], [l[1], l[2]]];
        let s: Sym = [2.0, 0.3, 1.5];
        let want = symmetrize(&mul(&transpose(&lm), &mul(&full(&s), &lm)));
        let got = lt_s_l(&l, &s);
        let want2 = symmetrize(&mul(&lm, &mul(&full(&s), &transpose(&lm))));
        let got2 = l_s_lt(&l, &s);
        for k in 0..3 {
            assert!((want[k] - got[k]).abs() < 1e-12);
            assert!((want2[k] - got2[k]).abs() < 1e-12);
        }
        let inv = sym_inv(&s);
        let id = mul(&full(&s), &full(&inv));
        assert!((id[0][0] - 1.0).abs() < 1e-12 && id[0][1].abs() < 1e-12);
        assert!((tr_sym(&s, &inv) - 2.0).abs() < 1e-12);
    }
}
