//! Item groups for the E-step of a calibration: fewer table rows per student when many
//! students answer the same items.
//!
//! The E-step adds, per student and node, one `ln P(y | θ_k)` row per response and later
//! scatters the posterior to one accumulator row per response. When many students answer
//! all of the [`GROUP`] items `4g, …, 4g + 3`, the sum of the four rows of every one of the
//! 16 outcome patterns is tabulated once per EM cycle, and such a student adds (and
//! scatters to) one pattern row instead of four; the pattern sums are split back onto the
//! items' outcome rows after the E-step. The statistics are the same sums as the plain
//! E-step's, associated differently (differences at the level of floating-point
//! rounding). Groups are detected once per calibration; data where no group is answered
//! by enough students (e.g. a sparse bank) keep the plain E-step.

use super::estep::{EStepStats, ItemTables, Scratch, estep_rows, estep_rows_loglik};
use super::params::ResponseMatrix;

/// Items per group.
pub(crate) const GROUP: usize = 4;
/// Outcome patterns of a group.
const PATTERNS: usize = 1 << GROUP;
/// A group is used when at least this many students answer all its items: below, the
/// per-cycle cost of its 16 pattern rows (tabulation, per-chunk accumulators, split)
/// exceeds the saving of three rows per student.
const MIN_STUDENTS: usize = 128;

/// Responses recoded with item groups (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct ItemGroups {
    n_items: usize,
    /// First item of each group in use.
    first: Vec<u32>,
    /// Row offsets of the students' codes (as the response matrix's `row_ptr`).
    row_ptr: Vec<usize>,
    /// Table row of each coded response: `2·item + y` for a single response,
    /// `2·n_items + group·16 + pattern` for a group (pattern bit `j` = outcome of item
    /// `first + j`).
    codes: Vec<u32>,
}

/// The group starting at `items[j]` if the responses `j..j + GROUP` are its items in order.
#[inline]
fn group_at(items: &[u32], j: usize) -> Option<usize> {
    let first = items[j];
    ((first as usize).is_multiple_of(GROUP)
        && j + GROUP <= items.len()
        && (1..GROUP).all(|t| items[j + t] == first + t as u32))
    .then_some(first as usize / GROUP)
}

impl ItemGroups {
    /// Groups used by at least [`MIN_STUDENTS`] students of `responses`; `None` if there is
    /// none (or the codes would not fit in `u32`).
    pub(crate) fn detect(responses: &ResponseMatrix) -> Option<Self> {
        let n_items = responses.n_items;
        let n_candidates = n_items / GROUP;
        if n_candidates == 0 {
            return None;
        }
        let mut count = vec![0usize; n_candidates];
        for s in 0..responses.n_students() {
            let (items, _) = responses.row(s);
            let mut j = 0;
            while j < items.len() {
                if let Some(g) = group_at(items, j) {
                    count[g] += 1;
                    j += GROUP;
                } else {
                    j += 1;
                }
            }
        }
        let mut slot = vec![u32::MAX; n_candidates];
        let mut first = Vec::new();
        for (g, &c) in count.iter().enumerate() {
            if c >= MIN_STUDENTS {
                slot[g] = u32::try_from(first.len()).ok()?;
                first.push(u32::try_from(g * GROUP).ok()?);
            }
        }
        if first.is_empty() {
            return None;
        }
        let group_base = u32::try_from(2 * n_items).ok()?;
        u32::try_from(2 * n_items + first.len() * PATTERNS).ok()?;
        let mut row_ptr = Vec::with_capacity(responses.row_ptr.len());
        row_ptr.push(0);
        let mut codes = Vec::with_capacity(responses.n_responses());
        for s in 0..responses.n_students() {
            let (items, correct) = responses.row(s);
            let mut j = 0;
            while j < items.len() {
                match group_at(items, j).map(|g| slot[g]) {
                    Some(sl) if sl != u32::MAX => {
                        let pattern =
                            (0..GROUP).fold(0u32, |p, t| p | (correct[j + t] as u32) << t);
                        codes.push(group_base + sl * PATTERNS as u32 + pattern);
                        j += GROUP;
                    }
                    _ => {
                        codes.push(items[j] * 2 + correct[j] as u32);
                        j += 1;
                    }
                }
            }
            row_ptr.push(codes.len());
        }
        Some(Self {
            n_items,
            first,
            row_ptr,
            codes,
        })
    }

    /// Number of students.
    pub(crate) fn n_students(&self) -> usize {
        self.row_ptr.len() - 1
    }

    /// The item tables followed by the pattern rows of every group (row `p` of a group:
    /// the sum over its items `j` of the row of outcome bit `j` of `p`).
    fn table(&self, tables: &ItemTables, mut t: Vec<f64>) -> Vec<f64> {
        let q = tables.n_nodes();
        let single = tables.log_p_rows();
        t.clear();
        t.reserve(single.len() + self.first.len() * PATTERNS * q);
        t.extend_from_slice(single);
        for &f in &self.first {
            for p in 0..PATTERNS {
                let start = t.len();
                t.resize(start + q, 0.0);
                for j in 0..GROUP {
                    let code = (f as usize + j) * 2 + (p >> j & 1);
                    for (a, v) in t[start..].iter_mut().zip(&single[code * q..(code + 1) * q]) {
                        *a += v;
                    }
                }
            }
        }
        t
    }

    /// The rows of student `s` (row starts in the table of [`table`](Self::table)).
    #[inline]
    fn rows(&self, s: usize, q: usize) -> impl ExactSizeIterator<Item = usize> + Clone + '_ {
        self.codes[self.row_ptr[s]..self.row_ptr[s + 1]]
            .iter()
            .map(move |&c| c as usize * q)
    }

    /// [`estep`](super::estep()) of all students at `tables` and `log_prior`.
    /// Its buffers come from (and go back to) `scratch`.
    pub(crate) fn estep(
        &self,
        tables: &ItemTables,
        log_prior: &[f64],
        scratch: &Scratch,
    ) -> EStepStats {
        assert_eq!(tables.n_items(), self.n_items);
        let q = tables.n_nodes();
        let table = self.table(tables, scratch.take());
        let mut sums = estep_rows(
            0..self.n_students(),
            |s| self.rows(s, q),
            &table,
            log_prior,
            scratch,
        );
        scratch.put(table);
        // split the pattern sums back onto the items' outcome rows
        let (single, groups) = sums.by_row.split_at_mut(2 * self.n_items * q);
        for (&f, pats) in self.first.iter().zip(groups.chunks_exact(PATTERNS * q)) {
            for (p, row) in pats.chunks_exact(q).enumerate() {
                for j in 0..GROUP {
                    let code = (f as usize + j) * 2 + (p >> j & 1);
                    for (a, v) in single[code * q..(code + 1) * q].iter_mut().zip(row) {
                        *a += v;
                    }
                }
            }
        }
        EStepStats::from_code_sums(self.n_items, q, sums, scratch)
    }

    /// The log-likelihood of [`estep`](Self::estep) alone.
    pub(crate) fn loglik(&self, tables: &ItemTables, log_prior: &[f64]) -> f64 {
        let q = tables.n_nodes();
        let table = self.table(tables, Vec::new());
        estep_rows_loglik(0..self.n_students(), |s| self.rows(s, q), &table, log_prior)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irt::estep::estep;
    use crate::irt::params::{ItemParams, Quadrature};
    use crate::sim::{complete_bank, sparse_bank};

    /// Grouped and plain E-steps agree to rounding on a bank with complete blocks of items
    /// and on a sparse one (where no group is used).
    #[test]
    fn grouped_estep_matches_the_plain_one() {
        let quad = Quadrature::default();
        let lp: Vec<f64> = quad.weights.iter().map(|w| w.ln()).collect();
        // 700 students answer 10 items (groups 0 and 1, plus items 8, 9 alone); one student
        // misses item 5, so group 1 is used by 699 students
        let bank = complete_bank(700, 10, true, 3);
        let mut trip = Vec::new();
        for s in 0..700 {
            let (its, ys) = bank.responses.row(s);
            for (&i, &y) in its.iter().zip(ys) {
                if !(s == 3 && i == 5) {
                    trip.push((s as u32, i, y));
                }
            }
        }
        let m = ResponseMatrix::from_triplets(700, 10, &trip).unwrap();
        let g = ItemGroups::detect(&m).expect("two groups");
        assert_eq!(g.first, vec![0, 4]);
        assert!(g.codes.len() < m.n_responses() / 2);
        let items: Vec<ItemParams> = bank.items.clone();
        let tables = ItemTables::new(&items, &quad);
        let plain = estep(&m, 0..700, &tables, &lp);
        let grouped = g.estep(&tables, &lp, &Scratch::default());
        assert_eq!(grouped.n_students, plain.n_students);
        assert!((grouped.loglik - plain.loglik).abs() < 1e-9 * plain.loglik.abs());
        assert_eq!(g.loglik(&tables, &lp).to_bits(), grouped.loglik.to_bits());
        for (v, w) in [
            (&grouped.r1, &plain.r1),
            (&grouped.n, &plain.n),
            (&grouped.node_mass, &plain.node_mass),
        ] {
            for (a, b) in v.iter().zip(w.iter()) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
        assert!(ItemGroups::detect(&sparse_bank(2000, 100, 10, false, 4).responses).is_none());
    }
}
