//! Student segmentation: k-means on standardized features, k chosen by silhouette,
//! the adjusted Rand index, and the design's segment labels.
//!
//! # k-means
//!
//! * Features are standardized to z-scores with each feature's mean and sample SD
//!   (n − 1, as R's `scale`); the [`Standardizer`] is kept so that centres are also
//!   reported in the original units. A constant feature (SD 0) carries no information:
//!   its z-score is 0 for every row (no division by zero) and its centre coordinate is
//!   its mean.
//! * Each run starts from k-means++ seeding (Arthur & Vassilvitskii 2007: the first
//!   centre uniformly at random, each next one drawn with probability proportional to
//!   the squared distance to the nearest centre chosen so far) and iterates Lloyd's
//!   algorithm (assign every point to its nearest centre, ties to the lower index; move
//!   every centre to the mean of its points) until no assignment changes or no centre
//!   moves by more than `tol` (z units), at most `max_iter` (300) times. A cluster that
//!   empties is re-seeded at the point farthest from its centre. On return the centres
//!   are exactly the means of their points.
//! * `restarts` (10) runs per k; the one with the smallest inertia (sum of squared z
//!   distances to the centres) wins, ties to the earlier run. Runs are independent and
//!   each has its own generator derived from (seed, k, run), so they run in parallel
//!   (rayon) and the result depends on the seed only, not on the number of threads.
//! * k: fixed if given; otherwise the k in `k_min..=k_max` (4..=8) with the largest
//!   mean silhouette (ties to the smaller k), over the ks that leave at least two
//!   points per cluster on average (k ≤ n/2).
//!
//! # Silhouette
//!
//! Rousseeuw (1987): for point i, a = mean distance to the other points of its
//! cluster, b = smallest mean distance to the points of another cluster,
//! s = (b − a) / max(a, b), and s = 0 for a point alone in its cluster (as
//! scikit-learn). Euclidean distances in z units. Exact for n ≤ `silhouette_sample`
//! (3000); above that, computed over a seeded random sample of that many points
//! without replacement (distances only among the sampled points, as scikit-learn's
//! `silhouette_score(sample_size = …)`), which keeps it O(3000²) per k. The distances
//! are computed once and shared by every candidate k.
//!
//! # Why native (not linfa-clustering)
//!
//! linfa-clustering pulls ndarray 0.16 into a workspace that otherwise has no ndarray;
//! k-means, k-means++ and the silhouette are a few hundred lines, exact, deterministic
//! by seed, and fast: choosing k over 4..=8 with 10 restarts each (50 k-means runs)
//! plus the sampled silhouettes takes about 0.25 s on 10,000 × 6 on two cores.
//!
//! # Segment labels
//!
//! The design's rules (DESIGN.md §4) on the raw (not standardized) features, with the
//! strict inequalities exactly as written: see [`Segment`]. The design gives no order
//! for a row that matches several rules; the order here ([`PRECEDENCE`]) puts how a
//! student learns before how often they come, and among the learning labels the more
//! specific and more actionable first:
//!
//! 1. `struggling` (efficiency < 0.4 and hints > 1.5) — before `hint_heavy`, which it
//!    refines: many hints *and* low efficiency calls for help, many hints alone may not;
//! 2. `hint_heavy` (hints > 2.0);
//! 3. `improving` (improvement > 0.3) — a trend, news for the report whatever the level;
//! 4. `efficient` (efficiency > 0.7 and hints < 0.5);
//! 5. `short_frequent` (gap < 3 and sessions > 10);
//! 6. `long_rare` (gap > 7 and sessions < 5).
//!
//! A row matching no rule gets `None` from [`rule_label`]; the caller then takes its
//! cluster centroid's label ([`centroid_label`]: the same rules on the centre in
//! original units, and `steady` when none matches). [`segment_label`] does both.
//! NaN never matches a rule.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Errors of clustering and of the partition comparisons.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ClusterError {
    /// No rows, or rows without features.
    #[error("nothing to cluster: {0}")]
    Empty(String),
    /// A row has a different number of features than the first.
    #[error("row {row} has {got} features, expected {expected}")]
    Ragged {
        /// Row index.
        row: usize,
        /// Features of the first row.
        expected: usize,
        /// Features of this row.
        got: usize,
    },
    /// A feature value is NaN or infinite.
    #[error("row {row}, feature {feature}: value is not finite ({value})")]
    NonFinite {
        /// Row index.
        row: usize,
        /// Feature index.
        feature: usize,
        /// The value.
        value: f64,
    },
    /// Fewer points (or distinct points) than clusters asked for.
    #[error("cannot form {k} clusters from {available} {what} points")]
    TooFewPoints {
        /// Clusters asked for.
        k: usize,
        /// Points (or distinct points) available.
        available: usize,
        /// "" or "distinct".
        what: &'static str,
    },
    /// Two label vectors differ in length.
    #[error("label vectors differ in length ({0} vs {1})")]
    LengthMismatch(usize, usize),
    /// A configuration value is out of range; the message names it.
    #[error("invalid clustering configuration: {0}")]
    InvalidConfig(String),
}

/// Result alias of the clustering module.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

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
fn validate_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<usize> {
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

/// Standardized data, row-major.
struct Data<'a> {
    z: &'a [f64],
    n: usize,
    dim: usize,
}

impl Data<'_> {
    fn row(&self, i: usize) -> &[f64] {
        &self.z[i * self.dim..(i + 1) * self.dim]
    }
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

#[inline]
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
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
/// changed.
fn assign(data: &Data<'_>, centres: &[f64], k: usize, labels: &mut [usize]) -> bool {
    let dim = data.dim;
    let mut changed = false;
    for (i, l) in labels.iter_mut().enumerate() {
        let x = data.row(i);
        let mut best = 0;
        let mut best_d = f64::INFINITY;
        for c in 0..k {
            let d = sq_dist(x, &centres[c * dim..(c + 1) * dim]);
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

/// Mean silhouette of each labelling (with its k) over the points `sample`, distances
/// among the sampled points only; each distance is computed once for all labellings.
fn silhouettes(
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

/// Labels renumbered 0.. in order of first appearance, and their count.
fn densify(labels: &[usize]) -> (Vec<usize>, usize) {
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

/// Names of the segment features, in the order [`SegmentFeatures::from_slice`] reads.
pub const SEGMENT_FEATURES: [&str; 5] = ["gap", "sessions", "hints", "improvement", "efficiency"];

/// The raw per-student features the segment rules read (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentFeatures {
    /// Mean days between sessions.
    pub gap: f64,
    /// Sessions in the feature window.
    pub sessions: f64,
    /// Hints per item answered.
    pub hints: f64,
    /// Improvement I_t (in [−1, 1]).
    pub improvement: f64,
    /// Efficiency E_t (accuracy × speed factor, in [0, 1]).
    pub efficiency: f64,
}

impl SegmentFeatures {
    /// The features in [`SEGMENT_FEATURES`] order.
    pub fn to_array(&self) -> [f64; 5] {
        [
            self.gap,
            self.sessions,
            self.hints,
            self.improvement,
            self.efficiency,
        ]
    }

    /// Reads the first five values in [`SEGMENT_FEATURES`] order (`None` if fewer).
    pub fn from_slice(v: &[f64]) -> Option<Self> {
        match v {
            [gap, sessions, hints, improvement, efficiency, ..] => Some(Self {
                gap: *gap,
                sessions: *sessions,
                hints: *hints,
                improvement: *improvement,
                efficiency: *efficiency,
            }),
            _ => None,
        }
    }
}

/// A student segment. The six rule labels are DESIGN.md §4's, with strict inequalities
/// exactly as written there; `Steady` is the fallback for a centroid no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// gap < 3 and sessions > 10.
    ShortFrequent,
    /// gap > 7 and sessions < 5.
    LongRare,
    /// hints > 2.0.
    HintHeavy,
    /// improvement > 0.3.
    Improving,
    /// efficiency < 0.4 and hints > 1.5.
    Struggling,
    /// efficiency > 0.7 and hints < 0.5.
    Efficient,
    /// No rule matches (centroid fallback).
    Steady,
}

/// Order in which the rules are tried (module docs): the first match wins.
pub const PRECEDENCE: [Segment; 6] = [
    Segment::Struggling,
    Segment::HintHeavy,
    Segment::Improving,
    Segment::Efficient,
    Segment::ShortFrequent,
    Segment::LongRare,
];

impl Segment {
    /// The label as stored: `short_frequent`, `long_rare`, `hint_heavy`, `improving`,
    /// `struggling`, `efficient`, `steady`.
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::ShortFrequent => "short_frequent",
            Segment::LongRare => "long_rare",
            Segment::HintHeavy => "hint_heavy",
            Segment::Improving => "improving",
            Segment::Struggling => "struggling",
            Segment::Efficient => "efficient",
            Segment::Steady => "steady",
        }
    }

    /// Whether this segment's rule holds for `f` (`Steady` has no rule: false).
    pub fn matches(self, f: &SegmentFeatures) -> bool {
        match self {
            Segment::ShortFrequent => f.gap < 3.0 && f.sessions > 10.0,
            Segment::LongRare => f.gap > 7.0 && f.sessions < 5.0,
            Segment::HintHeavy => f.hints > 2.0,
            Segment::Improving => f.improvement > 0.3,
            Segment::Struggling => f.efficiency < 0.4 && f.hints > 1.5,
            Segment::Efficient => f.efficiency > 0.7 && f.hints < 0.5,
            Segment::Steady => false,
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Segment {
    type Err = ClusterError;
    fn from_str(s: &str) -> Result<Self> {
        PRECEDENCE
            .iter()
            .chain(std::iter::once(&Segment::Steady))
            .find(|seg| seg.as_str() == s)
            .copied()
            .ok_or_else(|| ClusterError::InvalidConfig(format!("unknown segment '{s}'")))
    }
}

/// The first rule in [`PRECEDENCE`] that `f` satisfies, or `None`.
pub fn rule_label(f: &SegmentFeatures) -> Option<Segment> {
    PRECEDENCE.iter().copied().find(|s| s.matches(f))
}

/// Label of a cluster centre in original units: its rule label, else `Steady`.
pub fn centroid_label(centre: &SegmentFeatures) -> Segment {
    rule_label(centre).unwrap_or(Segment::Steady)
}

/// A student's label: their own rule label, else their cluster centre's
/// ([`centroid_label`]).
pub fn segment_label(student: &SegmentFeatures, centre: &SegmentFeatures) -> Segment {
    rule_label(student).unwrap_or_else(|| centroid_label(centre))
}
