//! Bounded samples of students drawn as a prefix of hash buckets (DESIGN.md §7).
//!
//! Students fall into `B` buckets by a seeded hash of their id (`lake::shard`); the
//! students of buckets `0..k` are a simple random sample of `k / B` of them. A stage
//! that fits a cohort-level model on at most `max` students counts its students per
//! bucket and takes the longest prefix that fits. [`prefix_parts`] restricts the prefix
//! to `k = ⌊B / m⌋` for a whole number `m` of *parts*, so the sample is exactly the
//! first of `m` equal bucket ranges — the students of shard 0 of `m` shards — and can
//! be read by anything that reads a shard.

/// The smallest `m` in `1..=max_parts` for which the first `⌊counts.len() / m⌋`
/// buckets hold at most `max` students (`counts[b]` = students of bucket `b`), or
/// `max_parts` when none does (then the sample exceeds `max`: the caller says so).
/// `m = 1` (every bucket, everyone) whenever the total is at most `max`. `max_parts`
/// below 1 counts as 1.
///
/// The prefix shrinks as `m` grows, so the result is the largest sample of this shape
/// within `max`; a larger `max` never gives a larger `m` (a sample for a larger cap
/// contains the sample for a smaller one).
pub fn prefix_parts(counts: &[u64], max: u64, max_parts: u32) -> u32 {
    let max_parts = max_parts.max(1);
    let b = counts.len();
    for m in 1..=max_parts {
        let k = b / m as usize;
        let n: u64 = counts[..k].iter().fold(0u64, |s, &c| s.saturating_add(c));
        if n <= max {
            return m;
        }
    }
    max_parts
}

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
    fn the_prefix_is_the_largest_whole_part_within_the_cap() {
        // 8 buckets of 10 students: m parts keep the first 8/m buckets.
        let counts = [10u64; 8];
        assert_eq!(prefix_parts(&counts, 80, 64), 1, "everyone fits");
        assert_eq!(prefix_parts(&counts, 1000, 64), 1);
        assert_eq!(prefix_parts(&counts, 79, 64), 2, "4 buckets, 40 students");
        assert_eq!(prefix_parts(&counts, 40, 64), 2);
        assert_eq!(
            prefix_parts(&counts, 39, 64),
            3,
            "2 buckets (8/3), 20 students"
        );
        assert_eq!(prefix_parts(&counts, 10, 64), 5, "1 bucket (8/5)");
        assert_eq!(
            prefix_parts(&counts, 9, 64),
            9,
            "no bucket: an empty prefix"
        );
        assert_eq!(prefix_parts(&counts, 9, 4), 4, "capped at max_parts");
        assert_eq!(prefix_parts(&counts, 0, 0), 1, "max_parts 0 counts as 1");
        assert_eq!(prefix_parts(&[], 0, 3), 1, "no buckets: nothing to sample");
        // Monotone in the cap; the prefix sum is within the cap unless m = max_parts.
        let counts: Vec<u64> = (0..4096u64).map(|b| (b * 7919) % 13).collect();
        let mut last = u32::MAX;
        for max in (0..30_000).step_by(250) {
            let m = prefix_parts(&counts, max, 1024);
            assert!(m <= last, "cap {max}: {m} parts after {last}");
            last = m;
            let n: u64 = counts[..4096 / m as usize].iter().sum();
            assert!(
                n <= max || m == 1024,
                "cap {max}: {n} students in {m} parts"
            );
            if m > 1 {
                let bigger: u64 = counts[..4096 / (m as usize - 1)].iter().sum();
                assert!(bigger > max, "cap {max}: {} parts would fit", m - 1);
            }
        }
    }
}
