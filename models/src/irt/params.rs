//! Core IRT types: item parameters, models, the quadrature grid and the
//! student-major (CSR) response matrix shared by estimation and scoring.

use serde::{Deserialize, Serialize};

/// Errors of the IRT engine.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum IrtError {
    /// A configuration value is out of its allowed range; the message names it.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The response data cannot be used; the message says why.
    #[error("invalid responses: {0}")]
    InvalidResponses(String),
    /// Item parameters given by the caller are invalid (e.g. a <= 0, c outside [0, 1)).
    #[error("invalid item parameters for item {item}: {reason}")]
    InvalidItem {
        /// Index of the item in the caller's item list.
        item: usize,
        /// What is wrong.
        reason: String,
    },
    /// Nothing left to estimate (no usable items or students).
    #[error("nothing to estimate: {0}")]
    Empty(String),
    /// The anchor drift screen left too few anchors to link on: the calibration is
    /// refused (see `linking::screen_and_link`); the message names the flagged anchors.
    #[error("anchor drift: {0}")]
    AnchorDrift(String),
}

/// Result alias of the IRT engine.
pub type Result<T, E = IrtError> = std::result::Result<T, E>;

/// The item response model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Rasch: a = 1 for every item, the latent variance is estimated (as `mirt`'s `itemtype = "Rasch"`).
    Rasch,
    /// Two-parameter logistic: P = 1 / (1 + exp(-a(θ - b))).
    #[serde(rename = "2pl")]
    TwoPl,
    /// Three-parameter logistic: P = c + (1 - c) / (1 + exp(-a(θ - b))).
    #[serde(rename = "3pl")]
    ThreePl,
}

impl Model {
    /// The name used in tables and on the command line: `rasch`, `2pl`, `3pl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Rasch => "rasch",
            Model::TwoPl => "2pl",
            Model::ThreePl => "3pl",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = IrtError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rasch" | "1pl" => Ok(Model::Rasch),
            "2pl" => Ok(Model::TwoPl),
            "3pl" => Ok(Model::ThreePl),
            other => Err(IrtError::InvalidConfig(format!(
                "unknown model '{other}' (expected rasch, 2pl or 3pl)"
            ))),
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parameters of one item in the IRT (not slope-intercept) metric.
///
/// P(θ) = c + (1 − c) / (1 + exp(−a(θ − b))); `a` discrimination (> 0),
/// `b` difficulty on the θ scale, `c` lower asymptote (guessing) in [0, 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ItemParams {
    /// Discrimination (slope), > 0.
    pub a: f64,
    /// Difficulty (location) on the θ scale.
    pub b: f64,
    /// Lower asymptote (guessing), in [0, 1); 0 for Rasch and 2PL.
    pub c: f64,
}

impl ItemParams {
    /// A 2PL item (c = 0).
    pub fn new(a: f64, b: f64) -> Self {
        Self { a, b, c: 0.0 }
    }

    /// A 3PL item.
    pub fn new_3pl(a: f64, b: f64, c: f64) -> Self {
        Self { a, b, c }
    }

    /// Probability of a correct response at ability `theta`.
    #[inline]
    pub fn p(&self, theta: f64) -> f64 {
        self.c + (1.0 - self.c) / (1.0 + (-self.a * (theta - self.b)).exp())
    }

    /// Checks a > 0, finite b, and 0 <= c < 1; `index` names the item in errors.
    pub fn validate(&self, index: usize) -> Result<()> {
        if !(self.a.is_finite() && self.a > 0.0) {
            return Err(IrtError::InvalidItem {
                item: index,
                reason: format!("a must be > 0, got {}", self.a),
            });
        }
        if !self.b.is_finite() {
            return Err(IrtError::InvalidItem {
                item: index,
                reason: format!("b must be finite, got {}", self.b),
            });
        }
        if !(self.c.is_finite() && (0.0..1.0).contains(&self.c)) {
            return Err(IrtError::InvalidItem {
                item: index,
                reason: format!("c must be in [0, 1), got {}", self.c),
            });
        }
        Ok(())
    }
}

/// A fixed quadrature grid for integrating over θ.
///
/// Nodes are equally spaced on `[lo, hi]`; weights are the N(`mean`, `sd`²) density at
/// the nodes, normalised to sum to 1 (as `mirt` does for its default EM quadrature).
#[derive(Debug, Clone, PartialEq)]
pub struct Quadrature {
    /// Node locations on the θ scale.
    pub nodes: Vec<f64>,
    /// Prior weights at the nodes; sum to 1.
    pub weights: Vec<f64>,
}

impl Quadrature {
    /// `n` equally spaced nodes on `[lo, hi]` with standard-normal weights.
    /// Default in `mirt` and here: `n = 61`, `[-6, 6]`.
    pub fn new(n: usize, lo: f64, hi: f64) -> Result<Self> {
        Self::with_normal(n, lo, hi, 0.0, 1.0)
    }

    /// `n` equally spaced nodes on `[lo, hi]` with N(`mean`, `sd`²) weights.
    pub fn with_normal(n: usize, lo: f64, hi: f64, mean: f64, sd: f64) -> Result<Self> {
        if n < 3 {
            return Err(IrtError::InvalidConfig(format!(
                "quadrature needs at least 3 nodes, got {n}"
            )));
        }
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(IrtError::InvalidConfig(format!(
                "quadrature range must be finite with lo < hi, got [{lo}, {hi}]"
            )));
        }
        if !(sd.is_finite() && sd > 0.0 && mean.is_finite()) {
            return Err(IrtError::InvalidConfig(format!(
                "quadrature prior needs finite mean and sd > 0, got N({mean}, {sd}^2)"
            )));
        }
        let step = (hi - lo) / (n - 1) as f64;
        let nodes: Vec<f64> = (0..n).map(|k| lo + step * k as f64).collect();
        let mut weights: Vec<f64> = nodes
            .iter()
            .map(|x| (-0.5 * ((x - mean) / sd).powi(2)).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        Ok(Self { nodes, weights })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a grid has at least 3 nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl Default for Quadrature {
    /// 61 nodes on [-6, 6], standard-normal weights (the `mirt` default).
    fn default() -> Self {
        Self::new(61, -6.0, 6.0).expect("static quadrature is valid")
    }
}

/// Dichotomous responses in compressed student-major (CSR) form.
///
/// Student `s` answered items `items[row_ptr[s]..row_ptr[s + 1]]` with outcomes
/// `correct[row_ptr[s]..row_ptr[s + 1]]`. Missing by design: a student lists only
/// the items they answered. Items within a row are sorted and unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseMatrix {
    /// Number of items (columns).
    pub n_items: usize,
    /// Row offsets, length `n_students + 1`.
    pub row_ptr: Vec<usize>,
    /// Item index of each response.
    pub items: Vec<u32>,
    /// Outcome of each response (true = correct).
    pub correct: Vec<bool>,
}

impl ResponseMatrix {
    /// Builds the matrix from `(student, item, correct)` triplets in any order.
    ///
    /// Student and item indices must be below `n_students` / `n_items`; a repeated
    /// (student, item) pair is an error (callers keep one observation per pair).
    pub fn from_triplets(
        n_students: usize,
        n_items: usize,
        triplets: &[(u32, u32, bool)],
    ) -> Result<Self> {
        let mut counts = vec![0usize; n_students + 1];
        for (k, &(s, i, _)) in triplets.iter().enumerate() {
            if s as usize >= n_students || i as usize >= n_items {
                return Err(IrtError::InvalidResponses(format!(
                    "response {k}: student {s} / item {i} out of range ({n_students} students, {n_items} items)"
                )));
            }
            counts[s as usize + 1] += 1;
        }
        for s in 0..n_students {
            counts[s + 1] += counts[s];
        }
        let row_ptr = counts.clone();
        let mut fill = counts;
        let mut items = vec![0u32; triplets.len()];
        let mut correct = vec![false; triplets.len()];
        for &(s, i, y) in triplets {
            let at = fill[s as usize];
            items[at] = i;
            correct[at] = y;
            fill[s as usize] += 1;
        }
        // one row buffer for all students: no allocation per student
        let mut row: Vec<(u32, bool)> = Vec::new();
        for s in 0..n_students {
            let (lo, hi) = (row_ptr[s], row_ptr[s + 1]);
            row.clear();
            row.extend(
                items[lo..hi]
                    .iter()
                    .copied()
                    .zip(correct[lo..hi].iter().copied()),
            );
            row.sort_unstable_by_key(|&(i, _)| i);
            for w in row.windows(2) {
                if w[0].0 == w[1].0 {
                    return Err(IrtError::InvalidResponses(format!(
                        "student {s} answered item {} more than once",
                        w[0].0
                    )));
                }
            }
            for (k, &(i, y)) in row.iter().enumerate() {
                items[lo + k] = i;
                correct[lo + k] = y;
            }
        }
        Ok(Self {
            n_items,
            row_ptr,
            items,
            correct,
        })
    }

    /// Number of students (rows).
    pub fn n_students(&self) -> usize {
        self.row_ptr.len().saturating_sub(1)
    }

    /// Total number of responses.
    pub fn n_responses(&self) -> usize {
        self.items.len()
    }

    /// The items and outcomes of student `s`.
    pub fn row(&self, s: usize) -> (&[u32], &[bool]) {
        let (lo, hi) = (self.row_ptr[s], self.row_ptr[s + 1]);
        (&self.items[lo..hi], &self.correct[lo..hi])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadrature_weights_sum_to_one_and_are_symmetric() {
        let q = Quadrature::default();
        assert_eq!(q.len(), 61);
        let s: f64 = q.weights.iter().sum();
        assert!((s - 1.0).abs() < 1e-12);
        assert!((q.weights[0] - q.weights[60]).abs() < 1e-15);
        assert!((q.nodes[30]).abs() < 1e-12);
    }

    #[test]
    fn csr_from_triplets_sorts_rows_and_rejects_duplicates() {
        let m = ResponseMatrix::from_triplets(2, 3, &[(1, 2, true), (0, 1, false), (1, 0, false)])
            .unwrap();
        assert_eq!(m.row(1), (&[0u32, 2][..], &[false, true][..]));
        assert_eq!(m.n_responses(), 3);
        assert!(ResponseMatrix::from_triplets(1, 3, &[(0, 1, true), (0, 1, false)]).is_err());
        assert!(ResponseMatrix::from_triplets(1, 3, &[(0, 3, true)]).is_err());
    }
}
