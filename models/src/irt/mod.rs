//! Unidimensional dichotomous IRT (Rasch, 2PL, 3PL).
//!
//! The reference implementation is R's `mirt` (Chalmers, 2012); defaults follow it:
//! 61 equally spaced quadrature nodes on [-6, 6] with standard-normal weights,
//! Bock–Aitkin EM, convergence when the largest parameter change is below `1e-4`.

pub mod information;
pub mod params;
pub mod scoring;

pub use params::{IrtError, ItemParams, Model, Quadrature, ResponseMatrix, Result};

pub use information::{item_information, test_information};
pub use scoring::{Score, ScoreMethod, ScoringConfig, eap_score, score_pattern, score_students};
