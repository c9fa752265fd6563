//! Drift over time inside one calibration window: has an anchor's difficulty changed
//! between the window's earlier answers and its most recent ones?
//!
//! The estimate screen ([`super::screen_and_link`]) compares an anchor's estimate over
//! the whole window with its known parameters. A shift that began a few days before a
//! calibration moves that estimate only by the share of the window's answers given
//! after it (3 of 17 days: a −1.0 shift reads as −0.2), so a weekly calibration could
//! not flag it until weeks later. This test reads the recent answers on their own.
//!
//! **Method.** Lord's (1980, *Applications of Item Response Theory to Practical Testing
//! Problems*, ch. 14) Wald test of an item's difficulty between two groups, here two
//! periods of one calibration (item parameter drift as DIF over time; DeMars, 2004,
//! "Detection of item parameter drift over multiple test administrations", *Applied
//! Measurement in Education* 17(3)), with the abilities held at the calibration's:
//! 1. For every student, the posterior over the quadrature nodes given all their answers
//!    in the window, at the calibrated items and latent distribution, leaving out the
//!    answer being tested (its own outcome must not pull θ toward it).
//! 2. For each anchor, expected counts per node (answers, right answers) of the earlier
//!    and of the recent answers separately, and b re-estimated on each by Fisher scoring
//!    with a and c held at the calibration's estimates (fixed-parameter calibration of
//!    one item; Kim, 2006, *Journal of Educational Measurement* 43(4)):
//!    ℓ(b) = Σ_k r_k ln P_k(b) + (n_k − r_k) ln(1 − P_k(b)), SE(b) = 1/√I(b).
//! 3. shift = b_recent − b_earlier with SE = √(SE_recent² + SE_earlier²).
//!
//! **Centring.** Students learn: a student's recent answers come from a higher θ than
//! the window's single θ, so every item looks easier recently. That shift is common to
//! all items; the screen compares each anchor's shift with the median over the anchors
//! tested, d = shift − median, by the robust z of [`super::DriftRules`] (z = d /
//! (0.74·IQR)), and flags when |z| > `z_threshold` and |d|·A ≥ `min_b_shift` (anchor-scale
//! θ units), as the estimate screen does, and |d| > `min_split_se_ratio`·SE. Both parts
//! need at least `min_split_answers` answers; an anchor with fewer is not tested.
//!
//! **Why 4 standard errors, not the estimate screen's 5.** The estimate screen needs 5
//! because an item's ordinary misfit (constant over time) reaches 3–4 SE against its
//! known parameters in a large calibration; here misfit is in both periods and cancels,
//! leaving sampling error (on the demo, the 47 stable anchors stay within 3.2 SE over
//! eight weekly calibrations, ≈ 380 tests, as normal noise would). 4 SE is a two-sided
//! p of 6e-5 per test, and with the size floor (0.3 θ units, which binds once the SE is
//! below 0.075, i.e. in any large bank) a false flag needs 5 SE there too. Power: a
//! recent week of about 150 answers gives SE ≈ 0.18, so a −1.0 shift present through
//! the whole recent period reads as 5–6 SE; one present for only 3–4 of its 7 days
//! reads as 0.5 ± 0.2 and usually waits for the next calibration, where the estimate
//! screen also sees it.

use crate::irt::{IrtError, ItemParams, Quadrature, ResponseMatrix, Result};

/// The time-split test of one anchor (fit scale: multiply differences and SEs by the
/// linking constant A for the anchor scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecentShift {
    /// Answers before the recent period.
    pub n_earlier: usize,
    /// Answers in the recent period.
    pub n_recent: usize,
    /// b re-estimated on the earlier answers (fit scale).
    pub b_earlier: f64,
    /// b re-estimated on the recent answers (fit scale).
    pub b_recent: f64,
    /// b_recent − b_earlier minus the median of that difference over the anchors tested
    /// (fit scale; negative: the anchor got easier than the others).
    pub shift: f64,
    /// Standard error of the difference (fit scale).
    pub se: f64,
    /// Robust z of `shift` among the anchors tested.
    pub z: f64,
    /// Whether the rules flag it.
    pub flagged: bool,
}

/// Expected counts of one anchor's answers per node: (answers, right answers).
#[derive(Clone)]
struct Counts {
    n: Vec<f64>,
    r: Vec<f64>,
    answers: usize,
}

impl Counts {
    fn new(q: usize) -> Self {
        Self {
            n: vec![0.0; q],
            r: vec![0.0; q],
            answers: 0,
        }
    }
}

/// b maximising ℓ(b) of `counts` at `nodes` with a and c of `item` fixed, and its SE
/// (Fisher scoring from the item's b, steps capped at 1 θ unit; `None` when it does not
/// converge in 100 steps or the information vanishes).
fn refit_b(item: &ItemParams, nodes: &[f64], counts: &Counts) -> Option<(f64, f64)> {
    let mut b = item.b;
    for _ in 0..100 {
        let (mut score, mut info) = (0.0, 0.0);
        for ((&x, &n), &r) in nodes.iter().zip(&counts.n).zip(&counts.r) {
            let s = 1.0 / (1.0 + (-item.a * (x - b)).exp());
            let p = (item.c + (1.0 - item.c) * s).clamp(1e-12, 1.0 - 1e-12);
            let dp = -item.a * (1.0 - item.c) * s * (1.0 - s);
            score += (r - n * p) / (p * (1.0 - p)) * dp;
            info += n * dp * dp / (p * (1.0 - p));
        }
        if !(info > 0.0 && info.is_finite()) {
            return None;
        }
        let step = (score / info).clamp(-1.0, 1.0);
        b += step;
        if step.abs() < 1e-9 {
            return Some((b, 1.0 / info.sqrt()));
        }
    }
    None
}

/// Per-node posterior accumulation for every anchor answer (see the module docs).
/// `recent` holds the subset of `responses` given in the recent period (same students
/// by row); `items[i]` the calibrated item (`None`: excluded, its answers ignored);
/// `prior` the latent (mean, SD) on the fit scale.
fn anchor_counts(
    responses: &ResponseMatrix,
    recent: &ResponseMatrix,
    items: &[Option<ItemParams>],
    anchors: &[usize],
    nodes: &[f64],
    prior: (f64, f64),
) -> Vec<[Counts; 2]> {
    let q = nodes.len();
    let mut slot = vec![usize::MAX; items.len()];
    for (k, &i) in anchors.iter().enumerate() {
        slot[i] = k;
    }
    // ln P(y | θ_k) per item, outcome and node
    let table: Vec<f64> = items
        .iter()
        .flat_map(|it| {
            [false, true].into_iter().flat_map(move |y| {
                nodes.iter().map(move |&x| match it {
                    Some(p) => {
                        let pr = p.p(x).clamp(1e-300, 1.0);
                        if y {
                            pr.ln()
                        } else {
                            (1.0 - pr).max(1e-300).ln()
                        }
                    }
                    None => 0.0,
                })
            })
        })
        .collect();
    let ll = |i: usize, y: bool| &table[(2 * i + usize::from(y)) * q..][..q];
    let log_prior: Vec<f64> = nodes
        .iter()
        .map(|&x| -0.5 * ((x - prior.0) / prior.1).powi(2))
        .collect();
    let mut counts = vec![[Counts::new(q), Counts::new(q)]; anchors.len()];
    let (mut total, mut post) = (vec![0.0; q], vec![0.0; q]);
    for s in 0..responses.row_ptr.len() - 1 {
        let row = responses.row_ptr[s]..responses.row_ptr[s + 1];
        let row_items = &responses.items[row.clone()];
        if !row_items.iter().any(|&i| slot[i as usize] != usize::MAX) {
            continue;
        }
        let recent_row = recent.row_ptr[s]..recent.row_ptr[s + 1];
        let recent_items = &recent.items[recent_row];
        total.copy_from_slice(&log_prior);
        for (&i, &y) in row_items.iter().zip(&responses.correct[row.clone()]) {
            if items[i as usize].is_some() {
                for (t, l) in total.iter_mut().zip(ll(i as usize, y)) {
                    *t += l;
                }
            }
        }
        for (&i, &y) in row_items.iter().zip(&responses.correct[row]) {
            let k = slot[i as usize];
            if k == usize::MAX || items[i as usize].is_none() {
                continue;
            }
            let mut max = f64::NEG_INFINITY;
            for ((p, t), l) in post.iter_mut().zip(&total).zip(ll(i as usize, y)) {
                *p = t - l;
                max = max.max(*p);
            }
            let mut sum = 0.0;
            for p in post.iter_mut() {
                *p = (*p - max).exp();
                sum += *p;
            }
            let c = &mut counts[k][usize::from(recent_items.contains(&i))];
            c.answers += 1;
            for ((n, r), p) in c.n.iter_mut().zip(c.r.iter_mut()).zip(&post) {
                let w = p / sum;
                *n += w;
                if y {
                    *r += w;
                }
            }
        }
    }
    counts
}

/// The time-split test of `anchors` (item indices into `items`), screened with `rules`
/// after centring on the median shift (see the module docs); `None` for an anchor
/// without `min_split_answers` answers in both periods or whose b cannot be refitted.
/// `a_scale` is the linking constant A (the size floor is in anchor-scale units).
/// Errors: `recent` without the rows and items of `responses`, `items` not one per item
/// of `responses`, or an anchor index out of range.
#[allow(clippy::too_many_arguments)]
pub fn recent_shifts(
    responses: &ResponseMatrix,
    recent: &ResponseMatrix,
    items: &[Option<ItemParams>],
    anchors: &[usize],
    quad: &Quadrature,
    prior: (f64, f64),
    a_scale: f64,
    rules: &super::DriftRules,
) -> Result<Vec<Option<RecentShift>>> {
    if recent.row_ptr.len() != responses.row_ptr.len()
        || recent.n_items != responses.n_items
        || items.len() != responses.n_items
        || anchors.iter().any(|&i| i >= items.len())
    {
        return Err(IrtError::InvalidResponses(format!(
            "time-split drift test: {} recent rows for {} students, {} / {} items, anchors up to {:?}",
            recent.row_ptr.len().saturating_sub(1),
            responses.row_ptr.len().saturating_sub(1),
            recent.n_items,
            items.len(),
            anchors.iter().max()
        )));
    }
    let counts = anchor_counts(responses, recent, items, anchors, &quad.nodes, prior);
    let raw: Vec<Option<RecentShift>> = anchors
        .iter()
        .zip(&counts)
        .map(|(&i, [earlier, late])| {
            let item = items[i].as_ref()?;
            if earlier.answers < rules.min_split_answers || late.answers < rules.min_split_answers {
                return None;
            }
            let (b_earlier, se_e) = refit_b(item, &quad.nodes, earlier)?;
            let (b_recent, se_r) = refit_b(item, &quad.nodes, late)?;
            Some(RecentShift {
                n_earlier: earlier.answers,
                n_recent: late.answers,
                b_earlier,
                b_recent,
                shift: b_recent - b_earlier,
                se: se_e.hypot(se_r),
                z: 0.0,
                flagged: false,
            })
        })
        .collect();
    let (median, spread) =
        super::drift::robust_centre_spread(raw.iter().flatten().map(|r| r.shift));
    Ok(raw
        .into_iter()
        .map(|r| {
            r.map(|mut r| {
                r.shift -= median;
                r.z = r.shift / spread;
                r.flagged = r.z.abs() > rules.z_threshold
                    && r.shift.abs() * a_scale >= rules.min_b_shift
                    && r.shift.abs() > rules.min_split_se_ratio * r.se;
                r
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refit recovers b from exact expected counts of a known item.
    #[test]
    fn refit_recovers_b_from_exact_counts() {
        let quad = Quadrature::default();
        let truth = ItemParams {
            a: 1.3,
            b: -0.4,
            c: 0.15,
        };
        let counts = Counts {
            n: quad.weights.iter().map(|w| 1000.0 * w).collect(),
            r: quad
                .nodes
                .iter()
                .zip(&quad.weights)
                .map(|(&x, w)| 1000.0 * w * truth.p(x))
                .collect(),
            answers: 1000,
        };
        let start = ItemParams { b: 0.7, ..truth };
        let (b, se) = refit_b(&start, &quad.nodes, &counts).expect("converges");
        assert!((b - truth.b).abs() < 1e-9, "{b}");
        assert!(se > 0.0 && se < 0.2, "{se}");
    }
}
