//! What a calibration returns: per-item estimates, standard errors, exclusions and the
//! fit report (log-likelihood, AIC, BIC, iterations, convergence).

use serde::{Deserialize, Serialize};

use super::params::{ItemParams, Model};

/// Why an item was left out of the estimation (its estimates are placeholders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Every response to the item is correct: its difficulty has no finite estimate.
    AllCorrect,
    /// Every response to the item is wrong.
    AllWrong,
    /// Fewer responses than `FitConfig::min_responses`.
    TooFewResponses {
        /// Responses to the item.
        n: usize,
        /// The configured minimum.
        min: usize,
    },
    /// The estimated slope is not positive: the item discriminates the wrong way round
    /// (e.g. a miskeyed or drifted question), so it is neither scored nor used for linking.
    /// Set after estimation by `models::calibration::calibrate_linked`.
    NonPositiveSlope,
}

impl std::fmt::Display for Exclusion {
    /// `all_correct`, `all_wrong`, `too_few_responses (n < min)` or `non_positive_slope`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exclusion::AllCorrect => f.write_str("all_correct"),
            Exclusion::AllWrong => f.write_str("all_wrong"),
            Exclusion::TooFewResponses { n, min } => write!(f, "too_few_responses ({n} < {min})"),
            Exclusion::NonPositiveSlope => f.write_str("non_positive_slope"),
        }
    }
}

/// The estimate of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemFit {
    /// Estimated parameters in the IRT metric (a, b in θ units, c). For a fixed item the
    /// given values; for an excluded item the placeholder a = 1, b = 0, c = 0 (never NaN).
    pub params: ItemParams,
    /// Standard errors of a, b, c (same units; 0 for components that are not estimated,
    /// e.g. c in the 2PL, a in the Rasch model). `None` for fixed and excluded items, when
    /// standard errors were not requested, or when the information matrix was singular.
    pub se: Option<ItemParams>,
    /// Number of responses to the item (all students).
    pub n_responses: usize,
    /// Proportion of those responses that are correct (0 when there are none).
    pub p_correct: f64,
    /// Why the item was not estimated, if it was not.
    pub excluded: Option<Exclusion>,
    /// Whether the item was held fixed at caller-given parameters (anchor).
    pub fixed: bool,
}

/// How the EM iterations ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// The largest parameter change fell below `tol`.
    Converged,
    /// `max_iter` EM cycles ran without convergence.
    MaxIterations,
    /// The marginal log-likelihood became NaN or infinite; the last finite estimates are
    /// returned.
    NonFiniteLikelihood,
}

impl Termination {
    /// `converged`, `max_iterations` or `non_finite_likelihood`.
    pub fn as_str(self) -> &'static str {
        match self {
            Termination::Converged => "converged",
            Termination::MaxIterations => "max_iterations",
            Termination::NonFiniteLikelihood => "non_finite_likelihood",
        }
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of [`calibrate`](super::calibrate).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitResult {
    /// The model fitted.
    pub model: Model,
    /// One entry per item (column of the response matrix).
    pub items: Vec<ItemFit>,
    /// Mean of the latent (θ) distribution: 0 unless estimated (fixed-anchor calibration).
    pub latent_mean: f64,
    /// SD of the latent distribution: 1 unless estimated (Rasch, fixed-anchor calibration).
    pub latent_sd: f64,
    /// Marginal log-likelihood at the estimates (natural log, without prior terms, as
    /// `mirt`'s `logLik`), over the students used.
    pub loglik: f64,
    /// Akaike information criterion, −2·loglik + 2k.
    pub aic: f64,
    /// Bayesian information criterion, −2·loglik + k·ln(n_students_used).
    pub bic: f64,
    /// k: the number of estimated parameters (item parameters plus estimated latent
    /// mean/variance).
    pub n_parameters: usize,
    /// EM cycles run.
    pub iterations: usize,
    /// Whether the convergence criterion was met.
    pub converged: bool,
    /// How the iterations ended.
    pub termination: Termination,
    /// Students with at least one response to a usable item.
    pub n_students_used: usize,
    /// Students left without any usable response (only excluded items, or none at all).
    pub n_students_excluded: usize,
    /// Responses used in the estimation.
    pub n_responses_used: usize,
    /// How the standard errors were computed (or why there are none).
    pub se_method: &'static str,
    /// Wall time of the fit's phases (informational: no estimate depends on it).
    pub timings: FitTimings,
}

/// Wall time of a calibration's phases, in milliseconds (monotonic clock). Read by the
/// stage summaries, `fit.json` and `make bench` to show where the time goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FitTimings {
    /// Exclusions, the used-response matrix, item groups and starting values.
    pub prepare_ms: f64,
    /// The EM cycles and the log-likelihood at the estimates.
    pub em_ms: f64,
    /// The final E-step with posterior counts and the standard errors (0 without SEs).
    pub se_ms: f64,
}
