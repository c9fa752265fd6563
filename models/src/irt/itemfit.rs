//! Item fit: the S-X² statistic (Orlando & Thissen, 2000) and the infit/outfit mean
//! squares (Wright & Masters, 1982), computed as R `mirt`'s `itemfit()` computes them.
//!
//! **S-X²** compares, per summed score s = 1 … n − 1 of the n-item test, the observed
//! numbers of right and wrong answers to item i with those the model expects given s:
//! E_s(y_i = 1) = Σ_q L₋ᵢ(s − 1 | θ_q) P_i(θ_q) π_q / Σ_q L(s | θ_q) π_q, where L is the
//! summed-score likelihood of the Lord–Wingersky (1984) recursion (L₋ᵢ without item i)
//! and (θ_q, π_q) are 61 points on [−6, 6] with the fitted latent normal's weights.
//! Sparse groups are merged as mirt's `collapseCells` does (`mincell = 1`): groups no one
//! is in are dropped; a group of exactly one person is added to the next group (top to
//! bottom; a last group of one to the one before); then, while a group has an expected
//! count 0 < E < 1 in either cell, the first such group is merged into its only
//! neighbour, or into the neighbour with the smaller observed total (ties upward).
//! S-X² = Σ (O − E)²/E over the groups' cells; df = groups − estimated parameters of the
//! item − estimated latent parameters (mirt ≥ 1.20.1); p is the chi-square upper tail.
//! Like mirt's `na.rm = TRUE`, only students who answered every item of the test count.
//!
//! **Infit/outfit**: with each student's θ (EAP), r = y − P, W = P(1 − P) (floored as
//! mirt does, W ≥ √1e-5 when W² < 1e-5) and C = P(1 − P)((1 − P)³ + P³) (the fourth
//! central moment): outfit = Σ r²/W / N, infit = Σ r² / Σ W, with the Wilson–Hilferty
//! standardisation z = (MS^(1/3) − 1)·3/q + q/3, q²(outfit) = Σ C/W² / N² − 1/N,
//! q²(infit) = Σ (C − W²) / (Σ W)², q ≤ √2. Sums are over the item's responses, so
//! incomplete designs are fine.

use super::{IrtError, ItemParams, Quadrature, ResponseMatrix, Result};
use crate::survival::chi_square_sf;

/// S-X² of one item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SX2 {
    /// The statistic Σ (O − E)²/E over the collapsed score groups.
    pub stat: f64,
    /// Degrees of freedom: groups − estimated parameters (item and latent).
    pub df: usize,
    /// Upper-tail chi-square probability of `stat` on `df`.
    pub p: f64,
}

/// Infit and outfit mean squares of one item, with their standardised z.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSquares {
    /// Information-weighted mean square Σ r² / Σ W (expected 1).
    pub infit: f64,
    /// Unweighted mean square Σ (r²/W) / N (expected 1).
    pub outfit: f64,
    /// Wilson–Hilferty z of the infit.
    pub z_infit: f64,
    /// Wilson–Hilferty z of the outfit.
    pub z_outfit: f64,
}

/// What S-X² needs besides the responses.
#[derive(Debug, Clone, Copy)]
pub struct SX2Config {
    /// Mean of the fitted latent normal (θ units).
    pub latent_mean: f64,
    /// SD of the fitted latent normal (θ units, > 0).
    pub latent_sd: f64,
    /// Latent parameters estimated in the fit (mean and/or variance: 0, 1 or 2), taken
    /// off every item's df.
    pub latent_params: usize,
    /// Fewest students with every item answered for S-X² to be computed (at least 1):
    /// on a sparse bank the few who answered everything are no sample of anyone.
    pub min_complete: usize,
}

/// mirt's `mincell`: expected counts below this (and above 0) are merged.
const MIN_CELL: f64 = 1.0;

/// S-X² for every item of the test. `items[j]`: the parameters of column j of `m`, or
/// `None` for a column that is not part of the test (an excluded item). `free[j]`: the
/// item's estimated parameters (1 Rasch, 2 2PL, 3 3PL, 0 fixed). Returns `None` for
/// columns outside the test, and for items whose df would be ≤ 0 (mirt prints NaN).
/// Errors: lengths that differ from the matrix's columns, fewer than 3 items, fewer than
/// `config.min_complete` students who answered them all, or an invalid parameter.
pub fn s_x2(
    m: &ResponseMatrix,
    items: &[Option<ItemParams>],
    free: &[usize],
    config: &SX2Config,
) -> Result<Vec<Option<SX2>>> {
    if items.len() != m.n_items || free.len() != m.n_items {
        return Err(IrtError::InvalidConfig(format!(
            "S-X2 needs one parameter set and one count per column: {} columns, {} sets, {} counts",
            m.n_items,
            items.len(),
            free.len()
        )));
    }
    let test: Vec<usize> = (0..items.len()).filter(|&j| items[j].is_some()).collect();
    let n = test.len();
    if n < 3 {
        return Err(IrtError::InvalidConfig(format!(
            "S-X2 needs a test of at least 3 items, got {n}"
        )));
    }
    for &j in &test {
        if let Some(p) = &items[j] {
            p.validate(j)?;
        }
    }
    let quad = Quadrature::with_normal(61, -6.0, 6.0, config.latent_mean, config.latent_sd)?;
    let nq = quad.len();
    // position of each column in the test
    let mut pos = vec![usize::MAX; items.len()];
    for (k, &j) in test.iter().enumerate() {
        pos[j] = k;
    }
    // observed: students who answered every item of the test
    let mut n_score = vec![0.0; n + 1];
    let mut right = vec![vec![0.0; n + 1]; n];
    let mut complete = 0usize;
    for s in 0..m.n_students() {
        let (cols, ys) = m.row(s);
        let answered = cols
            .iter()
            .filter(|&&c| pos[c as usize] != usize::MAX)
            .count();
        if answered != n {
            continue;
        }
        complete += 1;
        let total = cols
            .iter()
            .zip(ys)
            .filter(|&(&c, &y)| y && pos[c as usize] != usize::MAX)
            .count();
        n_score[total] += 1.0;
        for (&c, &y) in cols.iter().zip(ys) {
            if y && pos[c as usize] != usize::MAX {
                right[pos[c as usize]][total] += 1.0;
            }
        }
    }
    if complete < config.min_complete.max(1) {
        return Err(IrtError::InvalidConfig(format!(
            "S-X2 needs at least {} students who answered every item of the test; there are {complete}",
            config.min_complete.max(1)
        )));
    }
    let p: Vec<Vec<f64>> = test
        .iter()
        .map(|&j| {
            let it = items[j].as_ref().map_or(ItemParams::new(1.0, 0.0), |x| *x);
            quad.nodes.iter().map(|&t| it.p(t)).collect()
        })
        .collect();
    let all = lord_wingersky(&p, None, nq);
    let p_score: Vec<f64> = (0..=n)
        .map(|s| (0..nq).map(|q| all[s * nq + q] * quad.weights[q]).sum())
        .collect();

    let mut out = vec![None; items.len()];
    for (k, &j) in test.iter().enumerate() {
        let rest = lord_wingersky(&p, Some(k), nq);
        // rows s = 1 … n − 1: [O wrong, O right, E wrong, E right]
        let mut rows: Vec<[f64; 4]> = Vec::with_capacity(n - 1);
        for s in 1..n {
            let e_right: f64 = (0..nq)
                .map(|q| rest[(s - 1) * nq + q] * p[k][q] * quad.weights[q])
                .sum::<f64>()
                / p_score[s];
            let ns = n_score[s];
            rows.push([
                ns - right[k][s],
                right[k][s],
                ns * (1.0 - e_right),
                ns * e_right,
            ]);
        }
        let rows = collapse(rows);
        let (mut stat, mut cells) = (0.0, 0usize);
        for r in &rows {
            for (o, e) in [(r[0], r[2]), (r[1], r[3])] {
                if e != 0.0 {
                    stat += (o - e) * (o - e) / e;
                    cells += 1;
                }
            }
        }
        let used = rows.len() + free[j] + config.latent_params;
        if cells > used {
            let df = cells - used;
            out[j] = Some(SX2 {
                stat,
                df,
                p: chi_square_sf(stat, df),
            });
        }
    }
    Ok(out)
}

/// Summed-score likelihoods L(s | θ_q), s = 0 … n (without item `skip`), row-major
/// [s · nq + q], by the Lord–Wingersky (1984) recursion over the items' P(θ_q).
fn lord_wingersky(p: &[Vec<f64>], skip: Option<usize>, nq: usize) -> Vec<f64> {
    let n = p.len();
    let mut l = vec![0.0; (n + 1) * nq];
    l[..nq].fill(1.0);
    let mut added = 0;
    for (k, pk) in p.iter().enumerate() {
        if Some(k) == skip {
            continue;
        }
        added += 1;
        for s in (0..=added).rev() {
            for q in 0..nq {
                let stay = if s < added {
                    l[s * nq + q] * (1.0 - pk[q])
                } else {
                    0.0
                };
                let up = if s > 0 {
                    l[(s - 1) * nq + q] * pk[q]
                } else {
                    0.0
                };
                l[s * nq + q] = stay + up;
            }
        }
    }
    l
}

/// mirt's `collapseCells` for a dichotomous item (`mincell` = 1): rows of [O wrong,
/// O right, E wrong, E right]. See the module docs for the rules.
fn collapse(rows: Vec<[f64; 4]>) -> Vec<[f64; 4]> {
    let total = |r: &[f64; 4]| r[0] + r[1];
    let add = |into: &mut [f64; 4], from: &[f64; 4]| {
        for (a, b) in into.iter_mut().zip(from) {
            *a += b;
        }
    };
    // groups no one is in
    let mut rows: Vec<[f64; 4]> = rows.into_iter().filter(|r| total(r) != 0.0).collect();
    // a group of exactly one person goes into the next one, top to bottom
    let mut kept = Vec::with_capacity(rows.len());
    let last = rows.len().saturating_sub(1);
    for j in 0..rows.len() {
        if j < last && total(&rows[j]) == 1.0 {
            let r = rows[j];
            add(&mut rows[j + 1], &r);
        } else {
            kept.push(rows[j]);
        }
    }
    let mut rows = kept;
    if rows.len() >= 2 && total(&rows[rows.len() - 1]) == 1.0 {
        let r = rows.pop().unwrap_or_default();
        let at = rows.len() - 1;
        add(&mut rows[at], &r);
    }
    // merge groups with an expected count in (0, 1)
    let sparse =
        |r: &[f64; 4]| (r[2] < MIN_CELL && r[2] != 0.0) || (r[3] < MIN_CELL && r[3] != 0.0);
    while rows.len() > 1 {
        let Some(w) = rows.iter().position(sparse) else {
            break;
        };
        let r = rows.remove(w);
        // after the removal, rows[w − 1] is the group above and rows[w] the one below
        let into = if w == 0 {
            0
        } else if w == rows.len() || total(&rows[w - 1]) <= total(&rows[w]) {
            w - 1
        } else {
            w
        };
        add(&mut rows[into], &r);
    }
    rows
}

/// Infit and outfit mean squares per column of `m` (see the module docs), with `theta[s]`
/// each student's ability (students with `None` are left out) and `items[j]` the
/// column's parameters (`None`: not computed). `None` for columns without responses.
pub fn mean_squares(
    m: &ResponseMatrix,
    items: &[Option<ItemParams>],
    theta: &[Option<f64>],
) -> Result<Vec<Option<MeanSquares>>> {
    if items.len() != m.n_items || theta.len() != m.n_students() {
        return Err(IrtError::InvalidConfig(format!(
            "infit/outfit need one parameter set per column and one θ per student: \
             {} x {} matrix, {} sets, {} θ",
            m.n_students(),
            m.n_items,
            items.len(),
            theta.len()
        )));
    }
    // per column: Σ r², Σ r²/W, Σ W, Σ C/W², Σ (C − W²), N
    let mut acc = vec![[0.0f64; 6]; m.n_items];
    for (s, t) in theta.iter().enumerate() {
        let Some(t) = *t else { continue };
        let (cols, ys) = m.row(s);
        for (&c, &y) in cols.iter().zip(ys) {
            let Some(it) = &items[c as usize] else {
                continue;
            };
            let p = it.p(t);
            let r = f64::from(u8::from(y)) - p;
            let mut w = p * (1.0 - p);
            let cm = p * (1.0 - p) * ((1.0 - p).powi(3) + p.powi(3));
            if w * w < 1e-5 {
                w = 1e-5f64.sqrt();
            }
            let a = &mut acc[c as usize];
            a[0] += r * r;
            a[1] += r * r / w;
            a[2] += w;
            a[3] += cm / (w * w);
            a[4] += cm - w * w;
            a[5] += 1.0;
        }
    }
    let z = |ms: f64, q: f64| (ms.cbrt() - 1.0) * (3.0 / q) + q / 3.0;
    Ok(acc
        .iter()
        .map(|a| {
            let n = a[5];
            (n > 0.0).then(|| {
                let outfit = a[1] / n;
                let infit = a[0] / a[2];
                let q_out = (a[3] / (n * n) - 1.0 / n)
                    .max(0.0)
                    .sqrt()
                    .min(std::f64::consts::SQRT_2);
                let q_in = (a[4] / (a[2] * a[2]))
                    .max(0.0)
                    .sqrt()
                    .min(std::f64::consts::SQRT_2);
                MeanSquares {
                    infit,
                    outfit,
                    z_infit: z(infit, q_in),
                    z_outfit: z(outfit, q_out),
                }
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lord–Wingersky gives the summed-score distribution: with two items at one node it
    /// is the convolution (1 − p1)(1 − p2), p1(1 − p2) + (1 − p1)p2, p1p2.
    #[test]
    fn lord_wingersky_is_the_convolution() {
        let p = vec![vec![0.3], vec![0.6], vec![0.9]];
        let l = lord_wingersky(&p, Some(2), 1);
        let expect = [0.7 * 0.4, 0.3 * 0.4 + 0.7 * 0.6, 0.3 * 0.6, 0.0];
        for (a, b) in l.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15, "{l:?}");
        }
        let full = lord_wingersky(&p, None, 1);
        assert!((full.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!((full[3] - 0.3 * 0.6 * 0.9).abs() < 1e-15);
    }

    /// The collapsing rules, case by case (each mirrors a branch of mirt's collapseCells).
    #[test]
    fn collapse_follows_mirts_rules() {
        // an empty group is dropped; a single person joins the next group
        let rows = vec![
            [0.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.6, 0.4],
            [3.0, 4.0, 3.5, 3.5],
            [2.0, 5.0, 2.5, 4.5],
        ];
        let c = collapse(rows);
        assert_eq!(c, vec![[4.0, 4.0, 4.1, 3.9], [2.0, 5.0, 2.5, 4.5]]);
        // a last group of one joins the one before
        let c = collapse(vec![[3.0, 4.0, 3.5, 3.5], [0.0, 1.0, 0.2, 0.8]]);
        assert_eq!(c, vec![[3.0, 5.0, 3.7, 4.3]]);
        // an interior sparse group joins the neighbour with the smaller observed total
        let rows = vec![
            [5.0, 5.0, 5.0, 5.0],
            [1.0, 2.0, 0.5, 2.5],
            [2.0, 2.0, 2.0, 2.0],
        ];
        assert_eq!(
            collapse(rows),
            vec![[5.0, 5.0, 5.0, 5.0], [3.0, 4.0, 2.5, 4.5]]
        );
        // ties go upward
        let rows = vec![
            [2.0, 2.0, 2.0, 2.0],
            [1.0, 2.0, 0.5, 2.5],
            [2.0, 2.0, 2.0, 2.0],
        ];
        assert_eq!(
            collapse(rows),
            vec![[3.0, 4.0, 2.5, 4.5], [2.0, 2.0, 2.0, 2.0]]
        );
    }
}
