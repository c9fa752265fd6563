//! Standard errors of the item parameters from the observed-data information, by Louis'
//! formula (Louis, 1982, *J. R. Stat. Soc. B* 44(2)):
//!
//! `I_obs = −∂²Q(ψ|ψ̂)/∂ψ² − Σ_s Cov_post(S_s)`,
//!
//! the complete-data information (analytic, from the final E-step counts, including the
//! curvature of the log-priors: the SEs of a Bayes-modal fit are posterior-mode SEs) minus
//! the missing information, the sum over students of the posterior covariance of each
//! student's complete-data score `S_s(θ) = Σ_i ∂ ln P_i(y_si | θ)/∂ψ + ∂ ln φ(θ)/∂(μ, σ²)`.
//!
//! * With at most [`FULL_MAX_PARAMS`] estimated parameters, and if the work
//!   Σ_s p_s² (p_s = parameters of the items student s answered) is at most
//!   [`FULL_MAX_WORK`], the full matrix is formed (cost Σ_s p_s² · nodes / 2; on tests
//!   of up to ~64 items the students' posteriors are first summed per pair of outcomes,
//!   k² times less work, [`missing_paired`]) and inverted by Cholesky; estimated latent
//!   mean/variance are part of it.
//! * Otherwise the item-block approximation: only the item's own block of `I_obs`
//!   (cross-item and item–latent terms dropped), one pass over the responses — about the
//!   cost of one E-step. Cross-item terms come from the posterior uncertainty of θ shared
//!   by items answered together; dropping them makes the SEs slightly smaller: within 5 %
//!   (mean 1 %) when students answer 20 of 150 items, up to 15 % on a complete 20-item
//!   test (unit test `item_block_ses_approximate_the_full_matrix`).
//!
//! * If the full matrix is not positive definite (typically a 3PL c estimated at its
//!   bound, whose information is 0), the item-block approximation is used instead and
//!   only the affected items get no SE.
//!
//! SEs of the internal parameters (a, d, logit c) are mapped to a, b = −d/a and c by the
//! delta method.

use std::ops::Range;

use rayon::prelude::*;

use super::estep::{EStepStats, ItemTables, chunk_ranges, student_posterior};
use super::mstep::{self, A, D, G, free_indices};
use super::params::{ItemParams, Model, ResponseMatrix};
use super::priors::Priors;

/// Largest number of estimated parameters for which the full information matrix is used.
pub const FULL_MAX_PARAMS: usize = 600;

/// Largest work Σ_s p_s² (p_s = parameters touched by student s) for the full matrix:
/// 1e8 pairs ≈ 1.5e9 multiply–adds over a ~30-node posterior window, ≈ 0.3–0.6 s on two
/// cores. Beyond it (e.g. a complete 300-item test taken by 100,000 students, ~1e12) the
/// item-block approximation is used even with few parameters.
pub const FULL_MAX_WORK: f64 = 1e8;

/// `se_method` of a fit with the full observed information matrix.
pub const SE_FULL: &str = "observed information (Louis), full matrix; delta method for b, c";
/// `se_method` of a fit with the item-block approximation.
pub const SE_BLOCK: &str =
    "observed information (Louis), item-block approximation; delta method for b, c";
/// `se_method` when standard errors were not requested.
pub const SE_NONE: &str = "none (not requested)";
/// `se_method` when the full matrix was singular and item blocks were used instead.
pub const SE_BLOCK_FALLBACK: &str = "observed information (Louis), item-block approximation \
     (full matrix not positive definite); delta method for b, c";
/// `se_method` when the log-likelihood at the estimates was not finite.
pub const SE_SINGULAR: &str = "none (log-likelihood not finite)";

/// Everything the SE computation needs from a converged calibration.
pub(crate) struct SeInput<'a> {
    pub model: Model,
    pub priors: &'a Priors,
    pub nodes: &'a [f64],
    /// Responses actually used (excluded items and students removed).
    pub responses: &'a ResponseMatrix,
    pub tables: &'a ItemTables,
    pub log_prior: &'a [f64],
    /// The E-step at the final estimates.
    pub stats: &'a EStepStats,
    /// Item index of each estimated item (slot).
    pub free: &'a [usize],
    /// Internal parameters of each slot.
    pub x: &'a [[f64; 3]],
    /// Slot of each item, `u32::MAX` when not estimated.
    pub slot_of: &'a [u32],
    pub mean: f64,
    pub var: f64,
    pub est_mean: bool,
    pub est_var: bool,
}

/// Latent complete-data scores ∂ ln φ(θ; μ, v)/∂(μ, v) at one node.
#[inline]
fn latent_scores(theta: f64, mean: f64, var: f64) -> [f64; 2] {
    let z = theta - mean;
    [z / var, -0.5 / var + z * z / (2.0 * var * var)]
}

/// Which information matrix to form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeMode {
    /// Full up to [`FULL_MAX_PARAMS`] parameters, item blocks beyond.
    Auto,
    /// Always the full matrix.
    #[cfg_attr(not(test), allow(dead_code))]
    Full,
    /// Always item blocks.
    #[cfg_attr(not(test), allow(dead_code))]
    Block,
    /// Always the full matrix, its missing information student by student
    /// ([`missing_direct`]) even where [`missing_paired`] applies: the reference the
    /// paired sums are tested against.
    #[cfg_attr(not(test), allow(dead_code))]
    FullDirect,
}

/// Standard errors of every estimated item (by slot) and the method used.
pub(crate) fn standard_errors(
    inp: &SeInput,
    mode: SeMode,
) -> (Vec<Option<ItemParams>>, &'static str) {
    let k = free_indices(inp.model).len();
    let n_lat = inp.est_mean as usize + inp.est_var as usize;
    let n_par = inp.free.len() * k + n_lat;
    if n_par == 0 {
        return (Vec::new(), SE_FULL);
    }
    let use_full = match mode {
        SeMode::Auto => n_par <= FULL_MAX_PARAMS && full_work(inp, k, n_lat) <= FULL_MAX_WORK,
        SeMode::Full | SeMode::FullDirect => true,
        SeMode::Block => false,
    };
    if use_full {
        let paired = mode != SeMode::FullDirect;
        match full(inp, k, n_lat, n_par, paired) {
            Some(cov_blocks) => (delta(inp, k, &cov_blocks), SE_FULL),
            // e.g. a 3PL c at its bound: keep the SEs of the items whose block is fine
            None => (delta(inp, k, &block(inp, k)), SE_BLOCK_FALLBACK),
        }
    } else {
        let blocks = block(inp, k);
        (delta(inp, k, &blocks), SE_BLOCK)
    }
}

/// Σ_s p_s², the number of parameter pairs the full matrix visits.
fn full_work(inp: &SeInput, k: usize, n_lat: usize) -> f64 {
    let r = inp.responses;
    (0..r.n_students())
        .map(|s| {
            let (its, _) = r.row(s);
            let p = its
                .iter()
                .filter(|&&i| inp.slot_of[i as usize] != u32::MAX)
                .count()
                * k
                + n_lat;
            (p * p) as f64
        })
        .sum()
}

/// Maps per-slot covariance blocks of the free internal parameters to SEs of a, b, c.
fn delta(inp: &SeInput, k: usize, cov: &[Option<Vec<f64>>]) -> Vec<Option<ItemParams>> {
    let free = free_indices(inp.model);
    cov.iter()
        .zip(inp.x)
        .map(|(c, x)| {
            let c = c.as_ref()?;
            // full 3×3 covariance of (a, d, g) with zeros for fixed components
            let mut v = [[0.0; 3]; 3];
            for (i, &fi) in free.iter().enumerate() {
                for (j, &fj) in free.iter().enumerate() {
                    v[fi][fj] = c[i * k + j];
                }
            }
            let (a, d) = (x[A], x[D]);
            let jb = [d / (a * a), -1.0 / a, 0.0];
            let mut var_b = 0.0;
            for i in 0..3 {
                for j in 0..3 {
                    var_b += jb[i] * v[i][j] * jb[j];
                }
            }
            let cc = mstep::guess(inp.model, x);
            let se = ItemParams {
                a: v[A][A].max(0.0).sqrt(),
                b: var_b.max(0.0).sqrt(),
                c: (cc * (1.0 - cc)) * v[G][G].max(0.0).sqrt(),
            };
            (se.a.is_finite() && se.b.is_finite() && se.c.is_finite()).then_some(se)
        })
        .collect()
}

/// Score tables `S[((slot·2 + y)·k + p)·Q + node]` of the free components.
fn score_tables(inp: &SeInput, k: usize) -> Vec<f64> {
    let q = inp.nodes.len();
    let free = free_indices(inp.model);
    let mut s = vec![0.0; inp.free.len() * 2 * k * q];
    for (slot, x) in inp.x.iter().enumerate() {
        for (kk, &t) in inp.nodes.iter().enumerate() {
            let (s0, s1) = mstep::scores(inp.model, x, t);
            for (p, &fp) in free.iter().enumerate() {
                s[((slot * 2) * k + p) * q + kk] = s0[fp];
                s[((slot * 2 + 1) * k + p) * q + kk] = s1[fp];
            }
        }
    }
    s
}

/// Complete-data information of one item (minus the Hessian of Q_i plus log-prior), k×k.
fn item_complete_info(inp: &SeInput, slot: usize, k: usize) -> Vec<f64> {
    let item = inp.free[slot];
    let ev = mstep::item_eval(
        inp.model,
        inp.stats.item_r1(item),
        inp.stats.item_n(item),
        inp.nodes,
        &inp.x[slot],
        inp.priors,
    );
    let free = free_indices(inp.model);
    let mut m = vec![0.0; k * k];
    for (i, &fi) in free.iter().enumerate() {
        for (j, &fj) in free.iter().enumerate() {
            m[i * k + j] = -ev.hess[fi][fj];
        }
    }
    m
}

/// Complete-data information of the estimated latent parameters (n_lat × n_lat), and
/// their complete-data score tables `[p·Q + node]`.
fn latent_parts(inp: &SeInput, n_lat: usize) -> (Vec<f64>, Vec<f64>) {
    let q = inp.nodes.len();
    let which: Vec<usize> = [inp.est_mean, inp.est_var]
        .iter()
        .enumerate()
        .filter_map(|(i, &e)| e.then_some(i))
        .collect();
    let mut info = vec![0.0; n_lat * n_lat];
    let mut tab = vec![0.0; n_lat * q];
    let (mu, v) = (inp.mean, inp.var);
    for (kk, (&t, &m)) in inp.nodes.iter().zip(&inp.stats.node_mass).enumerate() {
        let z = t - mu;
        // −∂² ln φ: μμ 1/v, μv z/v², vv z²/v³ − 1/(2v²)
        let h = [
            [1.0 / v, z / (v * v)],
            [z / (v * v), z * z / (v * v * v) - 0.5 / (v * v)],
        ];
        let sc = latent_scores(t, mu, v);
        for (i, &wi) in which.iter().enumerate() {
            tab[i * q + kk] = sc[wi];
            for (j, &wj) in which.iter().enumerate() {
                info[i * n_lat + j] += m * h[wi][wj];
            }
        }
    }
    (info, tab)
}

/// Full matrix: returns the k×k covariance block of every slot, or `None` if singular.
/// The missing information is summed by [`missing_paired`] when `paired` and its table
/// is small enough, otherwise by [`missing_direct`].
fn full(
    inp: &SeInput,
    k: usize,
    n_lat: usize,
    n_par: usize,
    paired: bool,
) -> Option<Vec<Option<Vec<f64>>>> {
    let (lat_info, latent) = latent_parts(inp, n_lat);
    let lat0 = inp.free.len() * k;
    let tables = ScoreTables {
        k,
        n_lat,
        n_par,
        lat0,
        q: inp.nodes.len(),
        items: score_tables(inp, k),
        latent,
    };
    let miss = if paired && paired_table_len(inp.free.len(), tables.q) <= PAIRED_MAX_TABLE {
        missing_paired(inp, &tables)
    } else {
        missing_direct(inp, &tables)
    };
    // information = complete − missing (upper triangle of `miss` is filled)
    let mut info = vec![0.0; n_par * n_par];
    for i in 0..n_par {
        for j in i..n_par {
            let v = -miss[i * n_par + j];
            info[i * n_par + j] = v;
            info[j * n_par + i] = v;
        }
    }
    for slot in 0..inp.free.len() {
        let ci = item_complete_info(inp, slot, k);
        for i in 0..k {
            for j in 0..k {
                info[(slot * k + i) * n_par + slot * k + j] += ci[i * k + j];
            }
        }
    }
    for i in 0..n_lat {
        for j in 0..n_lat {
            info[(lat0 + i) * n_par + lat0 + j] += lat_info[i * n_lat + j];
        }
    }
    let l = cholesky(&info, n_par)?;
    let linv = lower_inverse(&l, n_par);
    // (I⁻¹)_{ij} = Σ_{m ≥ max(i,j)} Linv[m][i] Linv[m][j]
    let blocks = (0..inp.free.len())
        .map(|slot| {
            let mut c = vec![0.0; k * k];
            for i in 0..k {
                for j in 0..k {
                    let (gi, gj) = (slot * k + i, slot * k + j);
                    let mut s = 0.0;
                    for m in gi.max(gj)..n_par {
                        s += linv[m * n_par + gi] * linv[m * n_par + gj];
                    }
                    c[i * k + j] = s;
                }
            }
            Some(c)
        })
        .collect();
    Some(blocks)
}

/// The complete-data score tables of a full-matrix computation, and its sizes.
struct ScoreTables {
    /// Free parameters per item.
    k: usize,
    /// Estimated latent parameters (mean, variance).
    n_lat: usize,
    /// Size of the information matrix.
    n_par: usize,
    /// Index of the first latent parameter (after the items' `slots · k`).
    lat0: usize,
    /// Quadrature nodes.
    q: usize,
    /// Item score tables ([`score_tables`]).
    items: Vec<f64>,
    /// Latent score tables `[p·Q + node]` ([`latent_parts`]).
    latent: Vec<f64>,
}

/// Largest `(2·slots)(2·slots + 1)/2 · nodes` table of [`missing_paired`] (4 MB per
/// chunk, at most 64 MB over 16 chunks): complete tests up to ~64 items with 61 nodes.
const PAIRED_MAX_TABLE: usize = 1 << 19;

/// Length of [`missing_paired`]'s table: one node vector per unordered pair of outcomes
/// `2·slot + y` (a pair with itself included).
fn paired_table_len(n_slots: usize, q: usize) -> usize {
    let n_out = 2 * n_slots;
    n_out * (n_out + 1) / 2 * q
}

/// Calls `f(s, lo, post)` for each student `s` of `range` with a usable posterior:
/// `post` is its normalised posterior on the nodes `lo..lo + post.len()` (the window of
/// [`student_posterior`]); students without responses or with a non-finite likelihood
/// are skipped, as in the E-step.
fn for_each_posterior(inp: &SeInput, range: Range<usize>, mut f: impl FnMut(usize, usize, &[f64])) {
    let mut buf = vec![0.0; inp.nodes.len()];
    for s in range {
        let Some((lo, hi, ll)) =
            student_posterior(inp.responses, s, inp.tables, inp.log_prior, &mut buf)
        else {
            continue;
        };
        if ll.is_finite() && lo < hi {
            f(s, lo, &buf[lo..hi]);
        }
    }
}

/// Index of the unordered pair of outcomes `a ≤ b` in [`missing_paired`]'s table.
#[inline]
fn pair_index(a: usize, b: usize) -> usize {
    b * (b + 1) / 2 + a
}

/// Missing information `Σ_s Cov_post(S_s)`, upper triangle, student by student: per
/// student `(k·p_s + n_lat)²/2 · w` multiply–adds (w nodes in the posterior window).
fn missing_direct(inp: &SeInput, t: &ScoreTables) -> Vec<f64> {
    let (k, n_lat, n_par, lat0, q) = (t.k, t.n_lat, t.n_par, t.lat0, t.q);
    let (sc, lat_tab) = (&t.items, &t.latent);
    let resp = inp.responses;
    let chunks = chunk_ranges(0..resp.n_students(), n_par * n_par);
    let parts: Vec<Vec<f64>> = chunks
        .into_par_iter()
        .map(|range| {
            let mut m = vec![0.0; n_par * n_par];
            // the student's parameter rows: (global index, latent?, score-table offset)
            let mut rows: Vec<(usize, bool, usize)> = Vec::new();
            // weighted scores π_k S_p(θ_k) (row-major) and raw scores S_p(θ_k) (node-major)
            let mut wrows: Vec<f64> = Vec::new();
            let mut tt: Vec<f64> = Vec::new();
            let mut means: Vec<f64> = Vec::new();
            let mut acc: Vec<f64> = Vec::new();
            for_each_posterior(inp, range, |s, lo, post| {
                let hi = lo + post.len();
                let w = hi - lo;
                rows.clear();
                let (r0, r1) = (resp.row_ptr[s], resp.row_ptr[s + 1]);
                for (&item, &y) in resp.items[r0..r1].iter().zip(&resp.correct[r0..r1]) {
                    let slot = inp.slot_of[item as usize];
                    if slot != u32::MAX {
                        let slot = slot as usize;
                        for p in 0..k {
                            rows.push((slot * k + p, false, ((slot * 2 + y as usize) * k + p) * q));
                        }
                    }
                }
                for p in 0..n_lat {
                    rows.push((lat0 + p, true, p * q));
                }
                let nr = rows.len();
                wrows.clear();
                wrows.resize(nr * w, 0.0);
                tt.clear();
                tt.resize(w * nr, 0.0);
                means.clear();
                for (r, &(_, lat, off)) in rows.iter().enumerate() {
                    let t = if lat {
                        &lat_tab[off + lo..off + hi]
                    } else {
                        &sc[off + lo..off + hi]
                    };
                    let mut mean = 0.0;
                    for (i, (&tv, &pv)) in t.iter().zip(post).enumerate() {
                        let v = tv * pv;
                        wrows[r * w + i] = v;
                        tt[i * nr + r] = tv;
                        mean += v;
                    }
                    means.push(mean);
                }
                // Cov_post(S_s) = Σ_k π_k S(θ_k) S(θ_k)ᵀ − E[S] E[S]ᵀ, one row at a time as
                // axpy updates over the nodes (vectorisable, no reduction chains); global
                // indices increase with r, so only the upper triangle of m is touched
                for r in 0..nr {
                    acc.clear();
                    acc.resize(nr - r, 0.0);
                    for (i, &wv) in wrows[r * w..(r + 1) * w].iter().enumerate() {
                        let trow = &tt[i * nr + r..(i + 1) * nr];
                        for (a, &t) in acc.iter_mut().zip(trow) {
                            *a += wv * t;
                        }
                    }
                    let base = rows[r].0 * n_par;
                    let mr = means[r];
                    for ((&a, row), &mc) in acc.iter().zip(&rows[r..]).zip(&means[r..]) {
                        m[base + row.0] += a - mr * mc;
                    }
                }
            });
            m
        })
        .collect();
    let mut miss = vec![0.0; n_par * n_par];
    for p in parts {
        add_into(&mut miss, &p);
    }
    miss
}

/// Missing information `Σ_s Cov_post(S_s)`, upper triangle, as [`missing_direct`] but
/// summed over students before the products of scores: a student's complete-data score
/// is a sum of per-outcome tables (`S_{i,y}(θ)` of the items it answered), so
///
/// `Σ_s E_s[S Sᵀ]_{(i,p),(j,q)} = Σ_k S_{i,y,p}(θ_k) S_{j,y',q}(θ_k) N_{(i,y),(j,y')}(k)`
///
/// with `N_{(i,y),(j,y')}(k)` the posterior mass at node k of the students who answered
/// i with y and j with y' (`N_{(i,y),(i,y)}` are the E-step's expected counts, which
/// also give the item–latent terms). Per student `p_s²/2 · w` additions (k² = 9 times
/// fewer than [`missing_direct`] for the 3PL), plus `Σ_s E_s[S] E_s[S]ᵀ` without the
/// node factor; the same sums in another order (results agree to rounding,
/// `paired_and_direct_missing_information_agree`).
fn missing_paired(inp: &SeInput, t: &ScoreTables) -> Vec<f64> {
    let (k, n_lat, n_par, lat0, q) = (t.k, t.n_lat, t.n_par, t.lat0, t.q);
    let (sc, lat_tab) = (&t.items, &t.latent);
    let n_out = 2 * inp.free.len();
    let table_len = paired_table_len(inp.free.len(), q);
    let resp = inp.responses;
    // per chunk: the pair table, the node mass, Σ_s E[S] E[S]ᵀ
    let chunks = chunk_ranges(0..resp.n_students(), table_len + q + n_par * n_par);
    let parts: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = chunks
        .into_par_iter()
        .map(|range| {
            let mut pairs = vec![0.0; table_len];
            let mut mass = vec![0.0; q];
            let mut mm = vec![0.0; n_par * n_par];
            let mut outcomes: Vec<usize> = Vec::new();
            let mut rows: Vec<usize> = Vec::new();
            let mut means: Vec<f64> = Vec::new();
            for_each_posterior(inp, range, |s, lo, post| {
                let hi = lo + post.len();
                outcomes.clear();
                let (r0, r1) = (resp.row_ptr[s], resp.row_ptr[s + 1]);
                for (&item, &y) in resp.items[r0..r1].iter().zip(&resp.correct[r0..r1]) {
                    let slot = inp.slot_of[item as usize];
                    if slot != u32::MAX {
                        outcomes.push(slot as usize * 2 + y as usize);
                    }
                }
                for (i, &a) in outcomes.iter().enumerate() {
                    for &b in &outcomes[i..] {
                        let off = pair_index(a.min(b), a.max(b)) * q;
                        for (d, &p) in pairs[off + lo..off + hi].iter_mut().zip(post) {
                            *d += p;
                        }
                    }
                }
                for (d, &p) in mass[lo..hi].iter_mut().zip(post) {
                    *d += p;
                }
                rows.clear();
                means.clear();
                for &o in &outcomes {
                    for p in 0..k {
                        let off = (o * k + p) * q;
                        rows.push((o / 2) * k + p);
                        means.push(dot(&sc[off + lo..off + hi], post));
                    }
                }
                for l in 0..n_lat {
                    rows.push(lat0 + l);
                    means.push(dot(&lat_tab[l * q + lo..l * q + hi], post));
                }
                for (r, (&gr, &mr)) in rows.iter().zip(&means).enumerate() {
                    for (&gc, &mc) in rows[r..].iter().zip(&means[r..]) {
                        mm[gr.min(gc) * n_par + gr.max(gc)] += mr * mc;
                    }
                }
            });
            (pairs, mass, mm)
        })
        .collect();
    let mut pairs = vec![0.0; table_len];
    let mut mass = vec![0.0; q];
    let mut miss = vec![0.0; n_par * n_par];
    for (p, m, e) in parts {
        add_into(&mut pairs, &p);
        add_into(&mut mass, &m);
        // − Σ_s E[S] E[S]ᵀ
        for (d, s) in miss.iter_mut().zip(&e) {
            *d -= s;
        }
    }
    let weighted = |x: &[f64], y: &[f64], w: &[f64]| -> f64 {
        x.iter()
            .zip(y)
            .zip(w)
            .map(|((a, b), c)| a * b * c)
            .sum::<f64>()
    };
    for b in 0..n_out {
        for a in 0..=b {
            let (sa, sb) = (a / 2, b / 2);
            if sa == sb && a != b {
                continue; // one item, two outcomes: no student has both
            }
            let n = &pairs[pair_index(a, b) * q..][..q];
            for p in 0..k {
                let sp = &sc[(a * k + p) * q..][..q];
                // within one item only the upper triangle p ≤ q of its block
                for qq in if sa == sb { p } else { 0 }..k {
                    let sq = &sc[(b * k + qq) * q..][..q];
                    miss[(sa * k + p) * n_par + sb * k + qq] += weighted(sp, sq, n);
                }
            }
        }
    }
    for o in 0..n_out {
        let n = &pairs[pair_index(o, o) * q..][..q];
        for p in 0..k {
            let sp = &sc[(o * k + p) * q..][..q];
            for l in 0..n_lat {
                let sl = &lat_tab[l * q..][..q];
                miss[((o / 2) * k + p) * n_par + lat0 + l] += weighted(sp, sl, n);
            }
        }
    }
    for l in 0..n_lat {
        for l2 in l..n_lat {
            let (x, y) = (&lat_tab[l * q..][..q], &lat_tab[l2 * q..][..q]);
            miss[(lat0 + l) * n_par + lat0 + l2] += weighted(x, y, &mass);
        }
    }
    miss
}

/// Item-block approximation: the k×k covariance of every slot from its own block.
fn block(inp: &SeInput, k: usize) -> Vec<Option<Vec<f64>>> {
    let q = inp.nodes.len();
    let n_slots = inp.free.len();
    let sc = score_tables(inp, k);
    let resp = inp.responses;
    let kk2 = k * k;
    let chunks = chunk_ranges(0..resp.n_students(), n_slots * kk2);
    // Σ_s E[s_i] E[s_i]ᵀ per slot
    let parts: Vec<Vec<f64>> = chunks
        .into_par_iter()
        .map(|range| {
            let mut acc = vec![0.0; n_slots * kk2];
            let mut mean = [0.0; 3];
            for_each_posterior(inp, range, |s, lo, post| {
                let hi = lo + post.len();
                let (r0, r1) = (resp.row_ptr[s], resp.row_ptr[s + 1]);
                for (&item, &y) in resp.items[r0..r1].iter().zip(&resp.correct[r0..r1]) {
                    let slot = inp.slot_of[item as usize];
                    if slot == u32::MAX {
                        continue;
                    }
                    let slot = slot as usize;
                    for (p, mp) in mean.iter_mut().enumerate().take(k) {
                        let off = ((slot * 2 + y as usize) * k + p) * q;
                        let t = &sc[off + lo..off + hi];
                        *mp = dot(t, post);
                    }
                    let dst = &mut acc[slot * kk2..(slot + 1) * kk2];
                    for i in 0..k {
                        for j in 0..k {
                            dst[i * k + j] += mean[i] * mean[j];
                        }
                    }
                }
            });
            acc
        })
        .collect();
    let mut mm = vec![0.0; n_slots * kk2];
    for p in parts {
        add_into(&mut mm, &p);
    }
    (0..n_slots)
        .map(|slot| {
            let item = inp.free[slot];
            let r1 = inp.stats.item_r1(item);
            let n = inp.stats.item_n(item);
            let mut info = item_complete_info(inp, slot, k);
            // − (E[s sᵀ] − E[s] E[s]ᵀ), E[s sᵀ] summed from the expected counts
            for i in 0..k {
                for j in 0..k {
                    let mut e2 = 0.0;
                    for node in 0..q {
                        let y1 = r1[node];
                        let y0 = n[node] - y1;
                        let s0i = sc[((slot * 2) * k + i) * q + node];
                        let s0j = sc[((slot * 2) * k + j) * q + node];
                        let s1i = sc[((slot * 2 + 1) * k + i) * q + node];
                        let s1j = sc[((slot * 2 + 1) * k + j) * q + node];
                        e2 += y0 * s0i * s0j + y1 * s1i * s1j;
                    }
                    info[i * k + j] -= e2 - mm[slot * kk2 + i * k + j];
                }
            }
            let l = cholesky(&info, k)?;
            let linv = lower_inverse(&l, k);
            let mut c = vec![0.0; kk2];
            for i in 0..k {
                for j in 0..k {
                    let mut s = 0.0;
                    for m in i.max(j)..k {
                        s += linv[m * k + i] * linv[m * k + j];
                    }
                    c[i * k + j] = s;
                }
            }
            Some(c)
        })
        .collect()
}

/// `dst += src`, element by element (the reduction of per-chunk accumulators).
fn add_into(dst: &mut [f64], src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// Dot product with four independent accumulators (a plain fold is one serial chain of
/// floating-point adds that the compiler may not reorder or vectorise).
#[inline]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0.0; 4];
    let mut xc = x.chunks_exact(4);
    let mut yc = y.chunks_exact(4);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for l in 0..4 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut tail = 0.0;
    for (a, b) in xc.remainder().iter().zip(yc.remainder()) {
        tail += a * b;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Lower Cholesky factor of a symmetric `n × n` row-major matrix; `None` if not PD
/// ([`crate::numeric::cholesky`]).
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    crate::numeric::cholesky(a, n, 0.0).ok()
}

/// Inverse of a lower-triangular `n × n` matrix (row-major, lower triangle).
fn lower_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    for j in 0..n {
        inv[j * n + j] = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let mut s = 0.0;
            for m in j..i {
                s += l[i * n + m] * inv[m * n + j];
            }
            inv[i * n + j] = -s / l[i * n + i];
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_inverse_is_an_inverse() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let li = lower_inverse(&l, 3);
        // A⁻¹ = Liᵀ Li
        for i in 0..3 {
            for j in 0..3 {
                let mut inv_ij = 0.0;
                for m in 0..3 {
                    inv_ij += li[m * 3 + i] * li[m * 3 + j];
                }
                let mut prod = 0.0;
                for m in 0..3 {
                    let mut inv_mj = 0.0;
                    for r in 0..3 {
                        inv_mj += li[r * 3 + m] * li[r * 3 + j];
                    }
                    prod += a[i * 3 + m] * inv_mj;
                }
                assert!((prod - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
                assert!(inv_ij.is_finite());
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
