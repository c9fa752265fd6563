//! k-means: [`KMeansConfig`], [`KMeansFit`] and [`kmeans`] — k-means++ seeding,
//! Lloyd's iterations with re-seeding of emptied clusters, seeded parallel restarts,
//! and the choice of k by mean silhouette (module docs of [`cluster`](super)).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::silhouette::silhouettes;
use super::standardize::{Data, Standardizer, sq_dist};
use super::{ClusterError, Result};
use crate::segment::{SEGMENT_FEATURES, Segment, SegmentFeatures, centroid_label};

/// Settings of [`kmeans`]; defaults: k chosen by silhouette over 4..=8, 10 restarts,
/// at most 300 Lloyd iterations, tol 1e-6 (z units), silhouette on at most 3000 points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KMeansConfig {
    /// Fixed number of clusters; `None` chooses k by silhouette over `k_min..=k_max`.
    pub k: Option<usize>,
    /// Smallest candidate k (4), ≥ 2.
    pub k_min: usize,
    /// Largest candidate k (8).
    pub k_max: usize,
    /// k-means++ restarts per k (10), ≥ 1.
    pub restarts: usize,
    /// Most Lloyd iterations per run (300).
    pub max_iter: usize,
    /// Convergence when no centre moves more than this (z units; 1e-6), or when no
    /// assignment changes.
    pub tol: f64,
    /// Seed of the seeding and of the silhouette sample.
    pub seed: u64,
    /// Largest n for the exact silhouette; above it, a seeded sample of this size (3000).
    pub silhouette_sample: usize,
}

impl Default for KMeansConfig {
    fn default() -> Self {
        Self {
            k: None,
            k_min: 4,
            k_max: 8,
            restarts: 10,
            max_iter: 300,
            tol: 1e-6,
            seed: 0,
            silhouette_sample: 3000,
        }
    }
}

impl KMeansConfig {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ClusterError::InvalidConfig(m));
        if self.k == Some(0) {
            return bad("k must be at least 1".into());
        }
        if self.k.is_none() && !(2 <= self.k_min && self.k_min <= self.k_max) {
            return bad(format!(
                "k range must satisfy 2 <= k_min <= k_max, got {}..={}",
                self.k_min, self.k_max
            ));
        }
        if self.restarts == 0 || self.max_iter == 0 {
            return bad("restarts and max_iter must be at least 1".into());
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return bad(format!("tol must be finite and >= 0, got {}", self.tol));
        }
        if self.silhouette_sample < 2 {
            return bad("silhouette_sample must be at least 2".into());
        }
        Ok(())
    }
}

/// A k-means clustering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansFit {
    /// Number of clusters.
    pub k: usize,
    /// Cluster of each row, in `0..k`.
    pub labels: Vec<usize>,
    /// Centres in original units (mean + z · SD of each feature).
    pub centres: Vec<Vec<f64>>,
    /// Centres in z units (the means of their points' z-scores).
    pub centres_z: Vec<Vec<f64>>,
    /// Rows per cluster.
    pub sizes: Vec<usize>,
    /// The standardization used.
    pub standardizer: Standardizer,
    /// Sum of squared z distances of the rows to their centres.
    pub inertia: f64,
    /// Lloyd iterations of the winning run.
    pub iterations: usize,
    /// Whether the winning run converged within `max_iter`.
    pub converged: bool,
    /// Mean silhouette of this clustering in z units (sampled above
    /// `silhouette_sample` rows); `None` when undefined (k = 1 or k = n).
    pub silhouette: Option<f64>,
    /// Mean silhouette of the best run of every candidate k (empty when k was fixed).
    pub silhouette_by_k: Vec<(usize, f64)>,
}

impl KMeansFit {
    /// The cluster whose centre is nearest to `z` (a row already standardized with
    /// [`KMeansFit::standardizer`]; squared Euclidean distance in z units to
    /// [`KMeansFit::centres_z`], ties to the lower index): the assignment step of Lloyd's
    /// algorithm, for rows the fit did not see (a fit on a sample applied to everyone).
    /// On the fitted rows it gives [`KMeansFit::labels`] whenever the fit converged with
    /// no assignment changing (a run stopped by `tol` or `max_iter` may leave a point
    /// that lies within `tol` of a boundary on the other side).
    pub fn nearest(&self, z: &[f64]) -> usize {
        let mut best = 0;
        let mut best_d = f64::INFINITY;
        for (c, centre) in self.centres_z.iter().enumerate() {
            let d = sq_dist(z, centre);
            if d < best_d {
                best_d = d;
                best = c;
            }
        }
        best
    }

    /// Labels of the centroids ([`centroid_label`]), for a clustering whose first five
    /// features are the segment features in [`SEGMENT_FEATURES`] order.
    pub fn centroid_labels(&self) -> Result<Vec<Segment>> {
        self.centres
            .iter()
            .map(|c| {
                SegmentFeatures::from_slice(c)
                    .map(|f| centroid_label(&f))
                    .ok_or_else(|| {
                        ClusterError::InvalidConfig(format!(
                            "segment labels need the {} segment features first; centres have {}",
                            SEGMENT_FEATURES.len(),
                            c.len()
                        ))
                    })
            })
            .collect()
    }
}

/// Clusters `rows` (one slice of raw features per row) by k-means on z-scores
/// (module docs). Deterministic given `config.seed`.
pub fn kmeans<R: AsRef<[f64]> + Sync>(rows: &[R], config: &KMeansConfig) -> Result<KMeansFit> {
    config.validate()?;
    let standardizer = Standardizer::fit(rows)?;
    let n = rows.len();
    let dim = standardizer.means.len();
    let mut z = Vec::with_capacity(n * dim);
    for r in rows {
        z.extend(standardizer.transform(r.as_ref()));
    }
    let data = Data { z: &z, n, dim };

    let sample: Vec<usize> = if n > config.silhouette_sample {
        let mut rng = StdRng::seed_from_u64(mix(config.seed, u64::MAX, u64::MAX));
        let mut idx = rand::seq::index::sample(&mut rng, n, config.silhouette_sample).into_vec();
        idx.sort_unstable();
        idx
    } else {
        (0..n).collect()
    };

    let (run, silhouette, silhouette_by_k) = match config.k {
        Some(k) => {
            if k > n {
                return Err(ClusterError::TooFewPoints {
                    k,
                    available: n,
                    what: "",
                });
            }
            let run = best_run(&data, k, config)?;
            let sil =
                (k >= 2 && k < n).then(|| silhouettes(&data, &sample, &[&run.labels], &[k])[0]);
            (run, sil, Vec::new())
        }
        None => {
            let ks: Vec<usize> = (config.k_min..=config.k_max)
                .filter(|&k| 2 * k <= n)
                .collect();
            if ks.is_empty() {
                return Err(ClusterError::TooFewPoints {
                    k: config.k_min,
                    available: n,
                    what: "(at least two per cluster)",
                });
            }
            let mut runs = Vec::with_capacity(ks.len());
            let mut last_err = None;
            for &k in &ks {
                match best_run(&data, k, config) {
                    Ok(r) => runs.push((k, r)),
                    Err(e) => last_err = Some(e),
                }
            }
            if runs.is_empty() {
                return Err(last_err.unwrap_or(ClusterError::Empty("no candidate k".into())));
            }
            let labelings: Vec<&[usize]> = runs.iter().map(|(_, r)| r.labels.as_slice()).collect();
            let kk: Vec<usize> = runs.iter().map(|(k, _)| *k).collect();
            let sils = silhouettes(&data, &sample, &labelings, &kk);
            let mut best = 0;
            for i in 1..sils.len() {
                if sils[i] > sils[best] {
                    best = i;
                }
            }
            let by_k: Vec<(usize, f64)> = kk.iter().copied().zip(sils.iter().copied()).collect();
            let s = sils[best];
            let (_, run) = runs.swap_remove(best);
            (run, Some(s), by_k)
        }
    };

    let k = run.centres.len() / dim;
    let centres_z: Vec<Vec<f64>> = run.centres.chunks_exact(dim).map(|c| c.to_vec()).collect();
    let centres = centres_z.iter().map(|c| standardizer.inverse(c)).collect();
    let mut sizes = vec![0; k];
    for &l in &run.labels {
        sizes[l] += 1;
    }
    Ok(KMeansFit {
        k,
        labels: run.labels,
        centres,
        centres_z,
        sizes,
        standardizer,
        inertia: run.inertia,
        iterations: run.iterations,
        converged: run.converged,
        silhouette,
        silhouette_by_k,
    })
}

/// One k-means run's result.
struct Run {
    labels: Vec<usize>,
    /// k × dim, row-major, z units.
    centres: Vec<f64>,
    inertia: f64,
    iterations: usize,
    converged: bool,
}

/// SplitMix64 finaliser over the seed and two indices: independent streams per run.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut x = seed
        ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(17);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The best of `config.restarts` runs for `k` (smallest inertia, ties to the earlier).
fn best_run(data: &Data<'_>, k: usize, config: &KMeansConfig) -> Result<Run> {
    let runs: Vec<Result<Run>> = (0..config.restarts)
        .into_par_iter()
        .map(|r| {
            let mut rng = StdRng::seed_from_u64(mix(config.seed, k as u64, r as u64));
            let centres = kmeans_pp(data, k, &mut rng)?;
            Ok(lloyd(data, centres, k, config.max_iter, config.tol))
        })
        .collect();
    let mut best: Option<Run> = None;
    for run in runs {
        let run = run?;
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.ok_or_else(|| ClusterError::Empty("no run".into()))
}

/// k-means++ seeding; fails if the data has fewer than k distinct points.
fn kmeans_pp(data: &Data<'_>, k: usize, rng: &mut StdRng) -> Result<Vec<f64>> {
    let (n, dim) = (data.n, data.dim);
    let mut centres = Vec::with_capacity(k * dim);
    let first = rng.random_range(0..n);
    centres.extend_from_slice(data.row(first));
    let mut d2: Vec<f64> = (0..n)
        .map(|i| sq_dist(data.row(i), data.row(first)))
        .collect();
    for c in 1..k {
        let total: f64 = d2.iter().sum();
        if total <= 0.0 {
            return Err(ClusterError::TooFewPoints {
                k,
                available: c,
                what: "distinct",
            });
        }
        let target = rng.random::<f64>() * total;
        let mut acc = 0.0;
        let mut pick = None;
        for (i, &w) in d2.iter().enumerate() {
            if w > 0.0 {
                acc += w;
                pick = Some(i);
                if acc > target {
                    break;
                }
            }
        }
        let Some(pick) = pick else {
            return Err(ClusterError::TooFewPoints {
                k,
                available: c,
                what: "distinct",
            });
        };
        centres.extend_from_slice(data.row(pick));
        let centre = &centres[c * dim..(c + 1) * dim];
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(sq_dist(data.row(i), centre));
        }
    }
    Ok(centres)
}

/// Nearest centre of every point (ties to the lower index); returns whether any label
/// changed. Points of up to 8 features go through [`assign_fixed`], whose distances the
/// compiler unrolls (the same additions in the same order as [`sq_dist`], so the same
/// labels).
fn assign(data: &Data<'_>, centres: &[f64], k: usize, labels: &mut [usize]) -> bool {
    match data.dim {
        1 => assign_fixed::<1>(data, centres, k, labels),
        2 => assign_fixed::<2>(data, centres, k, labels),
        3 => assign_fixed::<3>(data, centres, k, labels),
        4 => assign_fixed::<4>(data, centres, k, labels),
        5 => assign_fixed::<5>(data, centres, k, labels),
        6 => assign_fixed::<6>(data, centres, k, labels),
        7 => assign_fixed::<7>(data, centres, k, labels),
        8 => assign_fixed::<8>(data, centres, k, labels),
        _ => assign_any(data, centres, k, labels),
    }
}

/// [`assign`] for points of `D` features.
fn assign_fixed<const D: usize>(
    data: &Data<'_>,
    centres: &[f64],
    k: usize,
    labels: &mut [usize],
) -> bool {
    let (points, _) = data.z.as_chunks::<D>();
    let (centres, _) = centres[..k * D].as_chunks::<D>();
    relabel(points.iter(), k, labels, |x, c| {
        // sq_dist's sum: ((x₀ − c₀)² + (x₁ − c₁)²) + … from the left
        let mut d = -0.0;
        for (a, b) in x.iter().zip(&centres[c]) {
            d += (a - b) * (a - b);
        }
        d
    })
}

/// [`assign`] for points of any number of features.
fn assign_any(data: &Data<'_>, centres: &[f64], k: usize, labels: &mut [usize]) -> bool {
    let dim = data.dim;
    relabel(data.z.chunks_exact(dim), k, labels, |x, c| {
        sq_dist(x, &centres[c * dim..(c + 1) * dim])
    })
}

/// Labels each point of `points` with the centre `0..k` at the smallest `dist(point,
/// centre)` (ties to the lower index); returns whether any label changed.
fn relabel<P>(
    points: impl Iterator<Item = P>,
    k: usize,
    labels: &mut [usize],
    dist: impl Fn(&P, usize) -> f64,
) -> bool {
    let mut changed = false;
    for (x, l) in points.zip(labels.iter_mut()) {
        let mut best = 0;
        let mut best_d = f64::INFINITY;
        for c in 0..k {
            let d = dist(&x, c);
            if d < best_d {
                best_d = d;
                best = c;
            }
        }
        if *l != best {
            *l = best;
            changed = true;
        }
    }
    changed
}

/// Centres as the means of their points; an empty cluster is re-seeded at the point
/// farthest from its current centre (which then moves to it).
fn update(data: &Data<'_>, labels: &mut [usize], k: usize, old: &[f64]) -> Vec<f64> {
    let dim = data.dim;
    loop {
        let mut sums = vec![0.0; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            counts[l] += 1;
            for (s, v) in sums[l * dim..(l + 1) * dim].iter_mut().zip(data.row(i)) {
                *s += v;
            }
        }
        let Some(empty) = counts.iter().position(|&c| c == 0) else {
            for c in 0..k {
                let m = counts[c] as f64;
                sums[c * dim..(c + 1) * dim]
                    .iter_mut()
                    .for_each(|s| *s /= m);
            }
            return sums;
        };
        // Farthest point (from its assigned centre) among clusters with > 1 point.
        let mut far = None;
        let mut far_d = -1.0;
        for (i, &l) in labels.iter().enumerate() {
            if counts[l] > 1 {
                let d = sq_dist(data.row(i), &old[l * dim..(l + 1) * dim]);
                if d > far_d {
                    far_d = d;
                    far = Some(i);
                }
            }
        }
        match far {
            Some(i) => labels[i] = empty,
            // Every non-empty cluster is a singleton: nothing to move (cannot happen
            // when k <= n).
            None => return old.to_vec(),
        }
    }
}

/// Lloyd iterations from `centres` (module docs).
fn lloyd(data: &Data<'_>, mut centres: Vec<f64>, k: usize, max_iter: usize, tol: f64) -> Run {
    let dim = data.dim;
    let mut labels = vec![usize::MAX; data.n];
    assign(data, &centres, k, &mut labels);
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter {
        iterations += 1;
        let new = update(data, &mut labels, k, &centres);
        let shift = (0..k)
            .map(|c| {
                sq_dist(
                    &new[c * dim..(c + 1) * dim],
                    &centres[c * dim..(c + 1) * dim],
                )
            })
            .fold(0.0f64, f64::max)
            .sqrt();
        centres = new;
        let changed = assign(data, &centres, k, &mut labels);
        if !changed {
            converged = true;
            break;
        }
        if shift <= tol {
            // Moved by less than tol: settle the centres on the final labels.
            centres = update(data, &mut labels, k, &centres);
            converged = true;
            break;
        }
    }
    if !converged {
        centres = update(data, &mut labels, k, &centres);
    }
    let inertia = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| sq_dist(data.row(i), &centres[l * dim..(l + 1) * dim]))
        .sum();
    Run {
        labels,
        centres,
        inertia,
        iterations,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`assign_fixed`] gives [`assign_any`]'s labels (exactly: same distances, ties to
    /// the lower index), here with many ties (coordinates on a coarse grid).
    #[test]
    fn fixed_width_assignment_is_the_general_one() {
        let mut rng = StdRng::seed_from_u64(7);
        for dim in 1..=9 {
            let (n, k) = (500, 6);
            let z: Vec<f64> = (0..n * dim)
                .map(|_| f64::from(rng.random_range(-3i32..=3)) * 0.5)
                .collect();
            let centres: Vec<f64> = z[..k * dim].to_vec();
            let data = Data { z: &z, n, dim };
            let mut fixed = vec![usize::MAX; n];
            let mut general = vec![usize::MAX; n];
            assert_eq!(
                assign(&data, &centres, k, &mut fixed),
                assign_any(&data, &centres, k, &mut general)
            );
            assert_eq!(fixed, general, "dim {dim}");
        }
    }
}
