//! The E-step of Bock–Aitkin EM (Bock & Aitkin, 1981, *Psychometrika* 46(4)), shardable.
//!
//! For every student the posterior over the quadrature nodes is
//! `π(θ_k | y) ∝ w_k Π_i P_i(y_i | θ_k)`; its contributions are summed into the
//! "artificial data" of Bock & Aitkin: the expected number of responses `n_ik` and of
//! correct responses `r1_ik` at each item × node, and the expected number of students at
//! each node. The statistics of disjoint student shards add up exactly
//! ([`EStepStats::merge`]), so a calibration can be distributed over many workers.
//!
//! Numerics: per-item tables of `ln P` and `ln(1 − P)` over the nodes ([`ItemTables`]);
//! per student the log-likelihood is accumulated over blocks of up to 16 nodes whose sums
//! stay in registers while the student's responses are added in order (the same
//! additions, in the same order, as a plain loop over responses), the posterior is formed
//! with a max-shifted log-sum-exp, and nodes whose posterior is below `e^-36.8 ≈ 1e-16`
//! of the mode's are skipped when scattering (their contribution is below
//! double-precision rounding); the scatter also runs by node blocks held in registers. Students are processed in parallel (rayon) in a
//! fixed number of chunks that depends only on the shard size, so results are
//! bit-for-bit reproducible whatever the thread count; there is no allocation per
//! response or per student (one scratch buffer per chunk).

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::params::{ItemParams, Quadrature, ResponseMatrix};

/// Log-posterior values more than this many nats below the mode are treated as zero mass.
pub(crate) const LOG_CUTOFF: f64 = 36.8;

use crate::numeric::LogisticPair;
pub(crate) use crate::numeric::logistic as sigmoid;

/// `(ln P, ln(1 − P))` for `P = c + (1 − c) σ(η)`, stable for any `η` (natural logs):
/// ln(1 − P) = ln(1 − c) − softplus(η); ln P = −softplus(−η) when `c = 0`, else
/// ln(σ(η) + c σ(−η)). One exponential and one `ln_1p` ([`LogisticPair`]) give every
/// term; ln(1 − c) is computed only for `c ≠ 0` (ln(1 + ±0) = ±0 exactly).
#[inline]
pub(crate) fn log_pq(eta: f64, c: f64) -> (f64, f64) {
    let pair = LogisticPair::new(eta);
    let (sp, sp_minus) = pair.softplus();
    let l1c = if c == 0.0 { -c } else { (-c).ln_1p() };
    let log_q = l1c - sp;
    let log_p = if c > 0.0 {
        // P = σ(η) + c σ(−η) ≥ c > 0: no cancellation.
        let (s, sm) = pair.logistic();
        (s + c * sm).ln()
    } else {
        -sp_minus
    };
    (log_p, log_q)
}

/// Per item × node tables of `ln P(θ_k)` and `ln(1 − P(θ_k))` (natural logs), the only
/// thing the E-step needs from the item parameters.
///
/// Layout: `[(item * 2 + y) * n_nodes + k]` with `y = 1` for a correct response, so a
/// response indexes its row directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemTables {
    n_items: usize,
    n_nodes: usize,
    log_p: Vec<f64>,
}

impl ItemTables {
    /// Tables for `items` (IRT metric, 3PL form `P = c + (1 − c)/(1 + e^{−a(θ − b)})`) at the
    /// nodes of `quad`. Items are indexed as in the response matrix.
    pub fn new(items: &[ItemParams], quad: &Quadrature) -> Self {
        Self::from_fn(items.len(), &quad.nodes, |i, theta| {
            let it = &items[i];
            log_pq(it.a * (theta - it.b), it.c)
        })
    }

    /// Tables from a function `(item, θ) -> (ln P, ln(1 − P))`.
    pub(crate) fn from_fn(
        n_items: usize,
        nodes: &[f64],
        f: impl Fn(usize, f64) -> (f64, f64),
    ) -> Self {
        let q = nodes.len();
        let mut log_p = vec![0.0; n_items * 2 * q];
        for (i, rows) in log_p.chunks_exact_mut(2 * q).enumerate() {
            let (wrong, right) = rows.split_at_mut(q);
            for (k, &t) in nodes.iter().enumerate() {
                let (lp, lq) = f(i, t);
                right[k] = lp;
                wrong[k] = lq;
            }
        }
        Self {
            n_items,
            n_nodes: q,
            log_p,
        }
    }

    /// Number of items (table rows come in pairs: wrong, right).
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of quadrature nodes.
    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    /// All rows, `[(item * 2 + y) * n_nodes + k]`.
    pub(crate) fn log_p_rows(&self) -> &[f64] {
        &self.log_p
    }

    /// `ln P(θ_k)` of `item` (correct response).
    pub fn log_p(&self, item: usize, node: usize) -> f64 {
        self.log_p[(item * 2 + 1) * self.n_nodes + node]
    }

    /// `ln(1 − P(θ_k))` of `item` (wrong response).
    pub fn log_q(&self, item: usize, node: usize) -> f64 {
        self.log_p[item * 2 * self.n_nodes + node]
    }
}

/// Sufficient statistics of one E-step over a set of students ("artificial data").
///
/// Item-major layout: entry `item * n_nodes + k`. Shards merge by addition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EStepStats {
    /// Number of items.
    pub n_items: usize,
    /// Number of quadrature nodes.
    pub n_nodes: usize,
    /// Expected number of correct responses per item × node: Σ_s y_si π_s(θ_k).
    pub r1: Vec<f64>,
    /// Expected number of responses per item × node: Σ_{s answered i} π_s(θ_k).
    pub n: Vec<f64>,
    /// Expected number of students per node: Σ_s π_s(θ_k).
    pub node_mass: Vec<f64>,
    /// Marginal log-likelihood of the students, Σ_s ln Σ_k w_k L_s(θ_k) (natural log).
    pub loglik: f64,
    /// Number of students that contributed (students with no response are skipped).
    pub n_students: usize,
}

impl EStepStats {
    /// All-zero statistics (the identity of [`merge`](Self::merge)).
    pub fn zeros(n_items: usize, n_nodes: usize) -> Self {
        Self {
            n_items,
            n_nodes,
            r1: vec![0.0; n_items * n_nodes],
            n: vec![0.0; n_items * n_nodes],
            node_mass: vec![0.0; n_nodes],
            loglik: 0.0,
            n_students: 0,
        }
    }

    /// Adds the statistics of another (disjoint) shard of students.
    ///
    /// # Panics
    /// If the two were computed with different numbers of items or nodes.
    pub fn merge(&mut self, other: &EStepStats) {
        assert!(
            self.n_items == other.n_items && self.n_nodes == other.n_nodes,
            "EStepStats::merge: shape {}x{} vs {}x{}",
            self.n_items,
            self.n_nodes,
            other.n_items,
            other.n_nodes
        );
        add_into(&mut self.r1, &other.r1);
        add_into(&mut self.n, &other.n);
        add_into(&mut self.node_mass, &other.node_mass);
        self.loglik += other.loglik;
        self.n_students += other.n_students;
    }

    /// `r1` of one item over the nodes.
    pub fn item_r1(&self, item: usize) -> &[f64] {
        &self.r1[item * self.n_nodes..(item + 1) * self.n_nodes]
    }

    /// `n` of one item over the nodes.
    pub fn item_n(&self, item: usize) -> &[f64] {
        &self.n[item * self.n_nodes..(item + 1) * self.n_nodes]
    }
}

#[inline]
fn add_into(dst: &mut [f64], src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `out[k] = init[k] + Σ_r table[r + k]` over the row starts `r` of `rows`, added in
/// the order of `rows` (for every `k`, exactly the additions of a plain loop over rows).
///
/// The nodes are taken in blocks of 16, 8, 4, 2, 1 whose partial sums stay in registers
/// while the rows are added: one load per table entry instead of load, add and store on
/// `out`.
#[inline]
pub(crate) fn add_rows<I>(table: &[f64], rows: I, init: &[f64], out: &mut [f64])
where
    I: Iterator<Item = usize> + Clone,
{
    let q = out.len();
    let mut k0 = 0;
    while k0 < q {
        k0 += match q - k0 {
            16.. => add_rows_block::<16, I>(table, rows.clone(), init, out, k0),
            8.. => add_rows_block::<8, I>(table, rows.clone(), init, out, k0),
            4.. => add_rows_block::<4, I>(table, rows.clone(), init, out, k0),
            2.. => add_rows_block::<2, I>(table, rows.clone(), init, out, k0),
            _ => add_rows_block::<1, I>(table, rows.clone(), init, out, k0),
        };
    }
}

/// [`add_rows`] for the `N` nodes from `k0`; returns `N`.
#[inline(always)]
fn add_rows_block<const N: usize, I>(
    table: &[f64],
    rows: I,
    init: &[f64],
    out: &mut [f64],
    k0: usize,
) -> usize
where
    I: Iterator<Item = usize>,
{
    let mut acc = [0.0; N];
    acc.copy_from_slice(&init[k0..k0 + N]);
    for r in rows {
        for (a, t) in acc.iter_mut().zip(&table[r + k0..r + k0 + N]) {
            *a += t;
        }
    }
    out[k0..k0 + N].copy_from_slice(&acc);
    N
}

/// The posterior of student `s` over the nodes, left in `buf[k_lo..k_hi]` (normalised to
/// sum 1; nodes outside the window carry less than `e^-36.8` of the mode's mass).
///
/// Returns `None` for a student without responses, otherwise `(k_lo, k_hi, ln L_s)` with
/// `ln L_s = ln Σ_k w_k L_s(θ_k)`; a non-finite `ln L_s` means the window is empty.
#[inline]
pub(crate) fn student_posterior(
    responses: &ResponseMatrix,
    s: usize,
    tables: &ItemTables,
    log_prior: &[f64],
    buf: &mut [f64],
) -> Option<(usize, usize, f64)> {
    let rows = response_rows(responses, s, tables.n_nodes);
    (rows.len() > 0).then(|| posterior(&tables.log_p, rows, log_prior, buf))
}

/// The table row starts (`(2·item + y) · q`) of the responses of student `s`.
#[inline]
fn response_rows(
    responses: &ResponseMatrix,
    s: usize,
    q: usize,
) -> impl ExactSizeIterator<Item = usize> + Clone + '_ {
    let (lo, hi) = (responses.row_ptr[s], responses.row_ptr[s + 1]);
    responses.items[lo..hi]
        .iter()
        .zip(&responses.correct[lo..hi])
        .map(move |(&item, &y)| (item as usize * 2 + y as usize) * q)
}

/// [`student_posterior`] of a student whose log-likelihood is the sum of the `table` rows
/// starting at `rows` (at least one).
#[inline]
fn posterior<I>(table: &[f64], rows: I, log_prior: &[f64], buf: &mut [f64]) -> (usize, usize, f64)
where
    I: Iterator<Item = usize> + Clone,
{
    add_rows(table, rows, log_prior, buf);
    let m = buf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        // NaN or all -inf: no usable posterior.
        return (0, 0, if m.is_nan() { f64::NAN } else { m });
    }
    let cut = m - LOG_CUTOFF;
    let k_lo = buf.iter().position(|&l| l >= cut).unwrap_or(0);
    let k_hi = buf.iter().rposition(|&l| l >= cut).map_or(0, |k| k + 1);
    let win = &mut buf[k_lo..k_hi];
    let mut sum = 0.0;
    for l in win.iter_mut() {
        let e = (*l - m).exp();
        *l = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for l in win.iter_mut() {
        *l *= inv;
    }
    (k_lo, k_hi, m + sum.ln())
}

/// How many chunks a shard of `n` students is processed in: depends only on `n` and the
/// size of one accumulator (never on the thread count), so sums are reproducible.
pub(crate) fn chunk_ranges(range: Range<usize>, acc_len: usize) -> Vec<Range<usize>> {
    let n = range.len();
    if n == 0 {
        return Vec::new();
    }
    // at most 16 chunks, at least ~256 students each, and at most ~256 MB of accumulators
    let mem_cap = ((256usize << 20) / (8 * acc_len.max(1))).max(1);
    let n_chunks = n.div_ceil(256).clamp(1, 16).min(mem_cap);
    let size = n.div_ceil(n_chunks);
    (0..n_chunks)
        .map(|c| {
            let lo = range.start + c * size;
            lo..(lo + size).min(range.end)
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// E-step sums over a set of students with responses coded as table rows: expected
/// counts by row (outcome code `2·item + y`, or a pattern of a group of items), node
/// mass, log-likelihood and number of students.
pub(crate) struct RowSums {
    pub by_row: Vec<f64>,
    pub node_mass: Vec<f64>,
    pub loglik: f64,
    pub n_students: usize,
}

/// Adds `post[..N]` (posterior at the nodes `k0..k0 + N`) to the accumulator rows of a
/// student's responses; returns `N`.
#[inline(always)]
fn scatter<const N: usize, I>(rows: I, post: &[f64], by_row: &mut [f64], k0: usize) -> usize
where
    I: Iterator<Item = usize>,
{
    let mut p = [0.0; N];
    p.copy_from_slice(&post[..N]);
    for r in rows {
        for (a, v) in by_row[r + k0..r + k0 + N].iter_mut().zip(&p) {
            *a += v;
        }
    }
    N
}

/// The E-step over one chunk of students; `rows_of(s)` gives the table row starts of
/// student `s` (row index × `q`). With `counts` false only the log-likelihood and the
/// number of students (the accumulators stay empty).
fn estep_chunk<F, I>(
    students: Range<usize>,
    rows_of: &F,
    table: &[f64],
    log_prior: &[f64],
    counts: bool,
    mut by_row: Vec<f64>,
) -> RowSums
where
    F: Fn(usize) -> I,
    I: ExactSizeIterator<Item = usize> + Clone,
{
    let q = log_prior.len();
    by_row.clear();
    by_row.resize(if counts { table.len() } else { 0 }, 0.0);
    let mut acc = RowSums {
        by_row,
        node_mass: vec![0.0; if counts { q } else { 0 }],
        loglik: 0.0,
        n_students: 0,
    };
    let mut buf = vec![0.0; q];
    for s in students {
        let rows = rows_of(s);
        if rows.len() == 0 {
            continue;
        }
        let (k_lo, k_hi, ll) = posterior(table, rows.clone(), log_prior, &mut buf);
        acc.loglik += ll;
        acc.n_students += 1;
        if !counts || k_lo >= k_hi {
            continue;
        }
        add_into(&mut acc.node_mass[k_lo..k_hi], &buf[k_lo..k_hi]);
        let mut k0 = k_lo;
        while k0 < k_hi {
            let (post, by_row) = (&buf[k0..], &mut acc.by_row);
            k0 += match k_hi - k0 {
                16.. => scatter::<16, I>(rows.clone(), post, by_row, k0),
                8.. => scatter::<8, I>(rows.clone(), post, by_row, k0),
                4.. => scatter::<4, I>(rows.clone(), post, by_row, k0),
                2.. => scatter::<2, I>(rows.clone(), post, by_row, k0),
                _ => scatter::<1, I>(rows.clone(), post, by_row, k0),
            };
        }
    }
    acc
}

/// Buffers of E-step sums kept from one E-step to the next (`EM` runs one E-step per
/// cycle): the chunks' accumulators and the grouped table are the E-step's largest
/// allocations (a 400-item bank with groups: ~1.2 MB per chunk, up to 16 chunks), and
/// allocated afresh each cycle their pages were faulted in again each cycle. Reused,
/// they are only zeroed; the sums are the same, bit for bit.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    buffers: std::sync::Mutex<Vec<Vec<f64>>>,
}

impl Scratch {
    /// A buffer (empty; its capacity kept from an earlier use when there is one).
    pub(crate) fn take(&self) -> Vec<f64> {
        let mut v = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut b| b.pop())
            .unwrap_or_default();
        v.clear();
        v
    }

    /// Gives a buffer back for a later [`Scratch::take`].
    pub(crate) fn put(&self, v: Vec<f64>) {
        if let Ok(mut b) = self.buffers.lock() {
            b.push(v);
        }
    }
}

/// The E-step sums over `students`, whose responses are the rows `rows_of(s)` (row start
/// = row index × `q`) of `table` (`n_rows × q` log-probabilities, `q = log_prior.len()`).
/// Parallel over a fixed set of chunks ([`chunk_ranges`]), summed in chunk order. The
/// chunks' accumulators come from `scratch` and go back to it, except the returned
/// `by_row` (the caller may give it back).
pub(crate) fn estep_rows<F, I>(
    students: Range<usize>,
    rows_of: F,
    table: &[f64],
    log_prior: &[f64],
    scratch: &Scratch,
) -> RowSums
where
    F: Fn(usize) -> I + Sync,
    I: ExactSizeIterator<Item = usize> + Clone,
{
    let chunks: Vec<(Range<usize>, Vec<f64>)> = chunk_ranges(students, table.len())
        .into_iter()
        .map(|r| (r, scratch.take()))
        .collect();
    let parts: Vec<RowSums> = chunks
        .into_par_iter()
        .map(|(r, buf)| estep_chunk(r, &rows_of, table, log_prior, true, buf))
        .collect();
    let mut parts = parts.into_iter();
    let Some(mut total) = parts.next() else {
        let mut by_row = scratch.take();
        by_row.resize(table.len(), 0.0);
        return RowSums {
            by_row,
            node_mass: vec![0.0; log_prior.len()],
            loglik: 0.0,
            n_students: 0,
        };
    };
    for p in parts {
        add_into(&mut total.by_row, &p.by_row);
        add_into(&mut total.node_mass, &p.node_mass);
        total.loglik += p.loglik;
        total.n_students += p.n_students;
        scratch.put(p.by_row);
    }
    total
}

/// The log-likelihood of [`estep_rows`] alone (same chunks, same order, bit-for-bit the
/// same value), without the posterior scatter.
pub(crate) fn estep_rows_loglik<F, I>(
    students: Range<usize>,
    rows_of: F,
    table: &[f64],
    log_prior: &[f64],
) -> f64
where
    F: Fn(usize) -> I + Sync,
    I: ExactSizeIterator<Item = usize> + Clone,
{
    chunk_ranges(students, table.len())
        .into_par_iter()
        .map(|r| estep_chunk(r, &rows_of, table, log_prior, false, Vec::new()).loglik)
        .collect::<Vec<f64>>()
        .into_iter()
        .fold(0.0, |a, b| a + b)
}

impl EStepStats {
    /// The statistics of E-step sums whose first `2 · n_items` rows are the outcome codes
    /// `2·item + y` (any further rows are ignored); the sums' buffer goes back to `scratch`.
    pub(crate) fn from_code_sums(
        n_items: usize,
        q: usize,
        sums: RowSums,
        scratch: &Scratch,
    ) -> Self {
        let mut stats = EStepStats::zeros(n_items, q);
        for (i, rows) in sums.by_row[..n_items * 2 * q]
            .chunks_exact(2 * q)
            .enumerate()
        {
            let (wrong, right) = rows.split_at(q);
            let r1 = &mut stats.r1[i * q..(i + 1) * q];
            let n = &mut stats.n[i * q..(i + 1) * q];
            for k in 0..q {
                r1[k] = right[k];
                n[k] = right[k] + wrong[k];
            }
        }
        stats.node_mass = sums.node_mass;
        stats.loglik = sums.loglik;
        stats.n_students = sums.n_students;
        scratch.put(sums.by_row);
        stats
    }
}

/// One E-step over the students `students` (a shard of the rows of `responses`).
///
/// `tables` holds the current item parameters (one entry per item of the matrix), and
/// `log_prior[k]` the natural log of the prior weight of node `k` (normalised weights, e.g.
/// `ln` of [`Quadrature::weights`]). Students without responses are skipped. Parallel over
/// students; the statistics of disjoint shards merge exactly with [`EStepStats::merge`]
/// (up to floating-point summation order).
///
/// # Panics
/// If `students` is outside `0..responses.n_students()`, if `log_prior.len()` differs from
/// `tables.n_nodes()`, or if `responses` has more items than `tables`.
pub fn estep(
    responses: &ResponseMatrix,
    students: Range<usize>,
    tables: &ItemTables,
    log_prior: &[f64],
) -> EStepStats {
    estep_in(responses, students, tables, log_prior, &Scratch::default())
}

/// [`estep`] with its buffers from (and back to) `scratch`.
pub(crate) fn estep_in(
    responses: &ResponseMatrix,
    students: Range<usize>,
    tables: &ItemTables,
    log_prior: &[f64],
    scratch: &Scratch,
) -> EStepStats {
    assert!(
        students.start <= students.end && students.end <= responses.n_students(),
        "estep: students {students:?} outside 0..{}",
        responses.n_students()
    );
    assert_eq!(
        log_prior.len(),
        tables.n_nodes,
        "estep: log_prior has {} entries for {} nodes",
        log_prior.len(),
        tables.n_nodes
    );
    assert!(
        responses.n_items <= tables.n_items,
        "estep: responses have {} items, tables {}",
        responses.n_items,
        tables.n_items
    );
    let q = tables.n_nodes;
    let sums = estep_rows(
        students,
        |s| response_rows(responses, s, q),
        &tables.log_p,
        log_prior,
        scratch,
    );
    EStepStats::from_code_sums(tables.n_items, q, sums, scratch)
}

/// The marginal log-likelihood `Σ_s ln Σ_k w_k L_s(θ_k)` of [`estep`] alone (same
/// arguments, bit-for-bit the same value), without the expected counts: the posterior
/// scatter is skipped.
pub(crate) fn estep_loglik(
    responses: &ResponseMatrix,
    students: Range<usize>,
    tables: &ItemTables,
    log_prior: &[f64],
) -> f64 {
    assert!(students.end <= responses.n_students() && log_prior.len() == tables.n_nodes);
    let q = tables.n_nodes;
    estep_rows_loglik(
        students,
        |s| response_rows(responses, s, q),
        &tables.log_p,
        log_prior,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_pq_is_stable_and_consistent() {
        for &eta in &[-800.0, -30.0, -1.0, 0.0, 2.5, 40.0, 800.0] {
            for &c in &[0.0, 0.2] {
                let (lp, lq) = log_pq(eta, c);
                assert!(lp.is_finite() && lq.is_finite(), "eta {eta} c {c}");
                let p = c + (1.0 - c) * sigmoid(eta);
                if (-30.0..=30.0).contains(&eta) {
                    assert!((lp.exp() - p).abs() < 1e-14);
                    assert!((lq.exp() - (1.0 - p)).abs() < 1e-14);
                }
            }
        }
    }

    #[test]
    fn single_student_posterior_matches_direct_computation() {
        let quad = Quadrature::new(21, -4.0, 4.0).unwrap();
        let items = [
            ItemParams::new(1.2, -0.3),
            ItemParams::new_3pl(0.8, 0.5, 0.2),
        ];
        let m = ResponseMatrix::from_triplets(1, 2, &[(0, 0, true), (0, 1, false)]).unwrap();
        let t = ItemTables::new(&items, &quad);
        let lp: Vec<f64> = quad.weights.iter().map(|w| w.ln()).collect();
        let st = estep(&m, 0..1, &t, &lp);
        let lik: Vec<f64> = quad
            .nodes
            .iter()
            .zip(&quad.weights)
            .map(|(&th, w)| w * items[0].p(th) * (1.0 - items[1].p(th)))
            .collect();
        let tot: f64 = lik.iter().sum();
        assert!((st.loglik - tot.ln()).abs() < 1e-12);
        for (k, l) in lik.iter().enumerate() {
            let post = l / tot;
            assert!((st.node_mass[k] - post).abs() < 1e-12);
            assert!((st.item_r1(0)[k] - post).abs() < 1e-12);
            assert!(st.item_r1(1)[k].abs() < 1e-15);
            assert!((st.item_n(1)[k] - post).abs() < 1e-12);
        }
    }

    #[test]
    fn chunking_covers_the_range_exactly() {
        for n in [0usize, 1, 255, 256, 257, 10_000, 123_457] {
            let ch = chunk_ranges(5..5 + n, 1000);
            let tot: usize = ch.iter().map(|r| r.len()).sum();
            assert_eq!(tot, n);
            assert!(ch.windows(2).all(|w| w[0].end == w[1].start));
            assert!(ch.len() <= 16);
        }
    }
}
