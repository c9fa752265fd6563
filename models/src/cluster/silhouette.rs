//! The silhouette (Rousseeuw 1987): mean silhouettes of several labellings over one
//! (possibly sampled) set of points, sharing the distances, and the exact
//! [`silhouette_score`] of a labelling.

use rayon::prelude::*;

use super::compare::densify;
use super::standardize::{Data, sq_dist, validate_rows};
use super::{ClusterError, Result};

/// Mean silhouette of each labelling (with its k) over the points `sample`, distances
/// among the sampled points only; each distance is computed once for all labellings.
pub(super) fn silhouettes(
    data: &Data<'_>,
    sample: &[usize],
    labelings: &[&[usize]],
    ks: &[usize],
) -> Vec<f64> {
    let nl = labelings.len();
    let offsets: Vec<usize> = ks
        .iter()
        .scan(0, |acc, &k| {
            let o = *acc;
            *acc += k;
            Some(o)
        })
        .collect();
    let total_k: usize = ks.iter().sum();
    // Sampled members per cluster, per labelling.
    let mut counts = vec![0usize; total_k];
    for &j in sample {
        for (l, lab) in labelings.iter().enumerate() {
            counts[offsets[l] + lab[j]] += 1;
        }
    }
    let per_point: Vec<Vec<f64>> = sample
        .par_iter()
        .map(|&i| {
            let mut sums = vec![0.0; total_k];
            let xi = data.row(i);
            for &j in sample {
                if j == i {
                    continue;
                }
                let d = sq_dist(xi, data.row(j)).sqrt();
                for (l, lab) in labelings.iter().enumerate() {
                    sums[offsets[l] + lab[j]] += d;
                }
            }
            (0..nl)
                .map(|l| {
                    let own = labelings[l][i];
                    let base = offsets[l];
                    let n_own = counts[base + own];
                    if n_own <= 1 {
                        return 0.0;
                    }
                    let a = sums[base + own] / (n_own - 1) as f64;
                    let b = (0..ks[l])
                        .filter(|&c| c != own && counts[base + c] > 0)
                        .map(|c| sums[base + c] / counts[base + c] as f64)
                        .fold(f64::INFINITY, f64::min);
                    if !b.is_finite() {
                        return 0.0;
                    }
                    let m = a.max(b);
                    if m > 0.0 { (b - a) / m } else { 0.0 }
                })
                .collect()
        })
        .collect();
    (0..nl)
        .map(|l| per_point.iter().map(|s| s[l]).sum::<f64>() / sample.len() as f64)
        .collect()
}

/// Exact mean silhouette (Rousseeuw 1987; module docs) of `labels` on `rows` as given
/// (Euclidean, no standardization). Labels are arbitrary integers.
pub fn silhouette_score<R: AsRef<[f64]>>(rows: &[R], labels: &[usize]) -> Result<f64> {
    let dim = validate_rows(rows)?;
    if rows.len() != labels.len() {
        return Err(ClusterError::LengthMismatch(rows.len(), labels.len()));
    }
    let (dense, k) = densify(labels);
    if k < 2 || k >= rows.len() {
        return Err(ClusterError::InvalidConfig(format!(
            "the silhouette needs 2 <= clusters < points, got {k} clusters of {} points",
            rows.len()
        )));
    }
    let z: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.as_ref().iter().copied())
        .collect();
    let data = Data {
        z: &z,
        n: rows.len(),
        dim,
    };
    let sample: Vec<usize> = (0..rows.len()).collect();
    Ok(silhouettes(&data, &sample, &[&dense], &[k])[0])
}
