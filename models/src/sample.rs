//! Bounded samples of students drawn as a prefix of hash buckets (DESIGN.md §7).
//!
//! Students fall into `B` buckets by a seeded hash of their id (`lake::shard`); the
//! students of buckets `0..k` are a simple random sample of `k / B` of them. A stage
//! that fits a cohort-level model on at most `max` students counts its students per
//! bucket and takes the longest prefix that fits ([`fit_prefix`]);
//! `lake::shard::Shard::fit_sample` restricts the prefix to whole shards (shard 0 of
//! `m`), so a sample can be read by anything that reads a shard.

/// Default cap on the students of a cohort-level fit sample (churn's Cox model, growth's
/// hyper-parameters and mixed model, segments' k-means): the standard errors of a
/// cohort-level parameter shrink as 1/√n, so 50,000 students pin a handful of
/// coefficients or centroids far more precisely than any one student's own noise, in
/// about 10 MB; the fit costs the same at 50k students as at 5 million.
pub const DEFAULT_MAX_FIT_STUDENTS: u64 = 50_000;

/// `k`: the largest prefix of buckets `0..k` whose counts (`counts[b]`: attempts or
/// students of bucket `b`) add up to at most `max_obs`; when even the first non-empty
/// bucket exceeds it, up to and including that bucket. `k == counts.len()` takes every student.
pub fn fit_prefix(counts: &[u64], max_obs: u64) -> usize {
    let mut total = 0u64;
    let mut k = 0;
    for &c in counts {
        match total.checked_add(c) {
            Some(t) if t <= max_obs => {
                total = t;
                k += 1;
            }
            _ => break,
        }
    }
    if total == 0 {
        // Nothing fits under the cap: take buckets up to the first non-empty one.
        if let Some(first) = counts.iter().position(|&c| c > 0) {
            return first + 1;
        }
    }
    k
}

/// The sampling rule as recorded in `fit_meta.sample`: `student_bucket<k/B seed=S`.
pub fn rule(k: usize, buckets: usize, seed: u64) -> String {
    format!("student_bucket<{k}/{buckets} seed={seed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_prefix_grows_until_max_obs_would_be_passed() {
        let counts = [10, 0, 20, 5, 30, 0];
        assert_eq!(
            fit_prefix(&counts, 9),
            1,
            "first bucket alone above the cap"
        );
        assert_eq!(fit_prefix(&counts, 10), 2, "an empty bucket costs nothing");
        assert_eq!(fit_prefix(&counts, 29), 2);
        assert_eq!(fit_prefix(&counts, 30), 3);
        assert_eq!(fit_prefix(&counts, 35), 4);
        assert_eq!(fit_prefix(&counts, 64), 4);
        assert_eq!(fit_prefix(&counts, 65), 6, "everything");
        assert_eq!(fit_prefix(&counts, u64::MAX), 6);
        assert_eq!(fit_prefix(&[0, 0, 7, 1], 3), 3, "leading empty buckets");
        assert_eq!(fit_prefix(&[0, 0], 3), 2, "no attempts at all");
        for max in 0..70 {
            let k = fit_prefix(&counts, max);
            let sum: u64 = counts[..k].iter().sum();
            assert!(sum <= max || k == 1, "max {max}: k {k}, sum {sum}");
            if k < counts.len() {
                assert!(
                    sum + counts[k] > max,
                    "max {max}: bucket {k} would still fit"
                );
            }
        }
    }
}
