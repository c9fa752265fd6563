//! Comparison of two partitions: the [`adjusted_rand_index`], and the renumbering of
//! arbitrary labels to `0..k` that it shares with the silhouette.

use super::{ClusterError, Result};

/// Labels renumbered 0.. in order of first appearance, and their count.
pub(super) fn densify(labels: &[usize]) -> (Vec<usize>, usize) {
    let mut map = std::collections::HashMap::new();
    let dense = labels
        .iter()
        .map(|l| {
            let next = map.len();
            *map.entry(*l).or_insert(next)
        })
        .collect();
    (dense, map.len())
}

/// Adjusted Rand index (Hubert & Arabie 1985) between two partitions of the same
/// items, given as label vectors (arbitrary integers; only equality matters): 1 for
/// identical partitions, about 0 for independent ones, negative below chance. As
/// scikit-learn's `adjusted_rand_score`, two partitions that are both a single cluster
/// or both all singletons score 1.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(ClusterError::LengthMismatch(a.len(), b.len()));
    }
    if a.is_empty() {
        return Err(ClusterError::Empty("no labels".into()));
    }
    let (da, ka) = densify(a);
    let (db, kb) = densify(b);
    let mut table = vec![0u64; ka * kb];
    let mut rows = vec![0u64; ka];
    let mut cols = vec![0u64; kb];
    for (&x, &y) in da.iter().zip(&db) {
        table[x * kb + y] += 1;
        rows[x] += 1;
        cols[y] += 1;
    }
    let pairs = |c: u64| (c as f64) * (c as f64 - 1.0) / 2.0;
    let index: f64 = table.iter().map(|&c| pairs(c)).sum();
    let sa: f64 = rows.iter().map(|&c| pairs(c)).sum();
    let sb: f64 = cols.iter().map(|&c| pairs(c)).sum();
    let total = pairs(a.len() as u64);
    let expected = if total > 0.0 { sa * sb / total } else { 0.0 };
    let max_index = 0.5 * (sa + sb);
    let denom = max_index - expected;
    if denom == 0.0 {
        return Ok(1.0);
    }
    Ok((index - expected) / denom)
}
