//! Student segmentation: k-means on standardized features, k chosen by silhouette,
//! the adjusted Rand index, and the design's segment labels (the rules are in
//! [`segment`](crate::segment); re-exported here).
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
//! # Layout
//!
//! * `standardize`: [`Standardizer`] (z-scores and back), the row checks, the
//!   standardized data and the squared distance shared by k-means and the silhouette;
//! * `kmeans`: [`KMeansConfig`], [`KMeansFit`] and [`kmeans()`] (k-means++ seeding,
//!   Lloyd's iterations, restarts, the choice of k);
//! * `silhouette`: the mean silhouettes of candidate labellings and
//!   [`silhouette_score`];
//! * `compare`: [`adjusted_rand_index`].

mod compare;
mod kmeans;
mod silhouette;
mod standardize;

pub use compare::adjusted_rand_index;
pub use kmeans::{KMeansConfig, KMeansFit, kmeans};
pub use silhouette::silhouette_score;
pub use standardize::Standardizer;

// The segment rules moved to `crate::segment`; these keep `models::cluster::…` paths
// compiling.
pub use crate::segment::{
    PRECEDENCE, SEGMENT_FEATURES, Segment, SegmentFeatures, centroid_label, rule_label,
    segment_label,
};

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
