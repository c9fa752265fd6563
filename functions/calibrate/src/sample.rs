//! The fit sample and the scoring batches, as ranges of student buckets
//! (`lake::shard`): pure arithmetic on the attempts counted per bucket.
//!
//! - **Fit sample** ([`fit_prefix`]): the students of buckets `0..k`, with `k` the
//!   largest number of buckets whose attempts in the window add up to at most `max_obs`
//!   (the fraction of students grows bucket by bucket until `max_obs` would be passed).
//!   When even the first non-empty bucket holds more than `max_obs` attempts, the fit
//!   takes it whole (the only case in which the sample exceeds `max_obs`).
//! - **Scoring batches** ([`batches`]): the buckets `k..B` cut into consecutive ranges of
//!   at most `budget` attempts each (a single bucket above the budget is its own range);
//!   ranges without attempts are skipped.
//!
//! Attempts, not first attempts, are counted (the count is one cheap aggregation with
//! one group per bucket; first attempts would need every (student, question) pair in
//! memory), so the fit sample's first attempts are at most `max_obs`, typically a little
//! fewer.

use std::ops::Range;

pub use models::sample::{fit_prefix, rule};

/// Consecutive bucket ranges covering `from..counts.len()` with at most `budget`
/// attempts each (a bucket above the budget alone); ranges without attempts are left out.
pub fn batches(counts: &[u64], from: usize, budget: u64) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = from;
    let mut sum = 0u64;
    for (b, &c) in counts.iter().enumerate().skip(from) {
        if sum > 0 && c > 0 && sum.saturating_add(c) > budget {
            out.push(start..b);
            start = b;
            sum = 0;
        }
        sum = sum.saturating_add(c);
    }
    if sum > 0 {
        out.push(start..counts.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_batches_cover_the_rest_within_the_budget() {
        let counts = [10, 0, 20, 5, 30, 0, 0, 4, 0];
        assert_eq!(batches(&counts, 1, 25), vec![1..4, 4..7, 7..9]);
        assert_eq!(batches(&counts, 1, 24), vec![1..3, 3..4, 4..7, 7..9]);
        assert_eq!(batches(&counts, 0, 1000), vec![0..9]);
        assert_eq!(batches(&counts, 9, 10), Vec::<Range<usize>>::new());
        assert_eq!(batches(&[0, 0, 0], 0, 10), Vec::<Range<usize>>::new());
        // every non-empty bucket in exactly one batch, none above the budget unless alone
        let b = batches(&counts, 2, 20);
        let mut covered = vec![0; counts.len()];
        for r in &b {
            let sum: u64 = counts[r.clone()].iter().sum();
            assert!(sum <= 20 || r.clone().filter(|&i| counts[i] > 0).count() == 1);
            for i in r.clone() {
                covered[i] += 1;
            }
        }
        for (i, &c) in counts.iter().enumerate().skip(2) {
            assert!(c == 0 || covered[i] == 1, "bucket {i}");
        }
        assert_eq!(rule(1024, 4096, 7), "student_bucket<1024/4096 seed=7");
    }
}
