//! Unidimensional dichotomous IRT (Rasch, 2PL, 3PL).
//!
//! The reference implementation is R's `mirt` (Chalmers, 2012); defaults follow it:
//! 61 equally spaced quadrature nodes on [-6, 6] with standard-normal weights,
//! Bock–Aitkin EM, convergence when the largest parameter change is below `1e-4`.

pub mod em;
pub mod estep;
mod groups;
pub mod information;
pub mod itemfit;
mod mstep;
pub mod params;
pub mod priors;
pub mod result;
pub mod scoring;
pub mod se;

pub use params::{IrtError, ItemParams, Model, Quadrature, ResponseMatrix, Result};

pub use em::{Acceleration, FitConfig, calibrate};
pub use estep::{EStepStats, ItemTables, estep};
pub use information::{item_information, test_information};
pub use itemfit::{MeanSquares, SX2, SX2Config, mean_squares, s_x2};
pub use priors::{BetaPrior, LogNormalPrior, NormalPrior, Priors};
pub use result::{Exclusion, FitResult, FitTimings, ItemFit, Termination};
pub use scoring::{
    EapTable, NamedEapTable, Score, ScoreMethod, ScoringConfig, eap_score, score_pattern,
    score_students,
};
