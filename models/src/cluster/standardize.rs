//! Standardization: [`Standardizer`] (per-feature mean and sample SD, z-scores and
//! back), the checks of the raw rows, and the standardized data matrix with the
//! squared Euclidean distance that k-means and the silhouette share.

use serde::{Deserialize, Serialize};

use super::{ClusterError, Result};

/// Per-feature mean and SD used to turn raw features into z-scores and back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Mean of each feature (original units).
    pub means: Vec<f64>,
    /// Sample SD (n − 1) of each feature; 0 for a constant feature (or a single row).
    pub sds: Vec<f64>,
}

impl Standardizer {
    /// Means and sample SDs of the columns of `rows` (validated: rectangular, finite,
    /// non-empty).
    pub fn fit<R: AsRef<[f64]>>(rows: &[R]) -> Result<Self> {
        let dim = validate_rows(rows)?;
        let n = rows.len() as f64;
        let mut means = vec![0.0; dim];
        let mut sds = vec![0.0; dim];
        for f in 0..dim {
            let col = rows.iter().map(|r| r.as_ref()[f]);
            let (lo, hi) = col
                .clone()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            let mean = col.clone().sum::<f64>() / n;
            means[f] = mean;
            if lo == hi {
                // Exactly constant: mean is the value, SD exactly 0.
                means[f] = lo;
                continue;
            }
            let ss: f64 = col.map(|v| (v - mean) * (v - mean)).sum();
            sds[f] = (ss / (n - 1.0)).sqrt();
        }
        Ok(Self { means, sds })
    }

    /// z-scores of one row (0 for a feature with SD 0).
    pub fn transform(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(self.means.iter().zip(&self.sds))
            .map(|(v, (m, s))| if *s > 0.0 { (v - m) / s } else { 0.0 })
            .collect()
    }

    /// Original units of a z-score vector: mean + z · SD.
    pub fn inverse(&self, z: &[f64]) -> Vec<f64> {
        z.iter()
            .zip(self.means.iter().zip(&self.sds))
            .map(|(z, (m, s))| m + z * s)
            .collect()
    }
}

/// Checks that `rows` is non-empty, rectangular with ≥ 1 feature, and finite; returns
/// the number of features.
pub(super) fn validate_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<usize> {
    let Some(first) = rows.first() else {
        return Err(ClusterError::Empty("no rows".into()));
    };
    let dim = first.as_ref().len();
    if dim == 0 {
        return Err(ClusterError::Empty("rows have no features".into()));
    }
    for (i, r) in rows.iter().enumerate() {
        let r = r.as_ref();
        if r.len() != dim {
            return Err(ClusterError::Ragged {
                row: i,
                expected: dim,
                got: r.len(),
            });
        }
        if let Some((f, &v)) = r.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ClusterError::NonFinite {
                row: i,
                feature: f,
                value: v,
            });
        }
    }
    Ok(dim)
}

/// Standardized data, row-major.
pub(super) struct Data<'a> {
    pub(super) z: &'a [f64],
    pub(super) n: usize,
    pub(super) dim: usize,
}

impl Data<'_> {
    pub(super) fn row(&self, i: usize) -> &[f64] {
        &self.z[i * self.dim..(i + 1) * self.dim]
    }
}

#[inline]
pub(super) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}
