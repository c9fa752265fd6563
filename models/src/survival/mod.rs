//! Survival analysis for churn (DESIGN §4): the Kaplan–Meier estimator of the cohort's
//! survival curve and the Cox proportional hazards model behind the churn score
//! S = P(churn within the next 14 days).
//!
//! Data are right-censored: one `(time, event)` pair per subject, `time` ≥ 0 in the
//! caller's unit (days for churn: time from the subject's start to churn, or to the end
//! of follow-up when `event == false`). Conventions follow R's `survival` package
//! (version 3.8-11), which the tests check against:
//!
//! * Ties between an event and a censoring at the same time: the event comes first, so
//!   a subject censored at t is in the risk set of the events at t (`survfit`, `coxph`
//!   and `concordance` all do this).
//! * Times are tied only when exactly equal (R additionally merges times that differ by
//!   rounding error, its `timefix` option; pass rounded times, e.g. whole days).
//!
//! Contents:
//! * [`kaplan_meier`]: survival curve with Greenwood standard errors.
//! * [`cox_ph`]: Cox regression by Newton–Raphson on the log partial likelihood with
//!   Efron (default) or Breslow handling of tied event times; Wald statistics, the
//!   likelihood-ratio test, Harrell's concordance and the baseline cumulative hazard,
//!   from which [`CoxFit::event_probability`] gives the probability of an event within
//!   a horizon.
//! * [`log_partial_likelihood`]: the Cox log partial likelihood at a given β.
//! * [`churn_cohort`]: the churn cohort's events, times and covariates from each
//!   student's activity (the churn stage's pure decisions).
//! * [`concordance`]: Harrell's C for any risk score.
//! * [`erfc`], [`normal_cdf`], [`normal_two_sided_p`], [`chi_square_sf`]: the tail
//!   probabilities used for p-values.
//!
//! References: Kaplan & Meier (1958), JASA 53:457–481; Greenwood (1926), Reports on
//! Public Health 33; Cox (1972), JRSS-B 34:187–220; Breslow (1974), Biometrics 30:89–99;
//! Efron (1977), JASA 72:557–565; Harrell, Califf, Pryor, Lee & Rosati (1982), JAMA
//! 247:2543–2546; Therneau & Grambsch (2000), *Modeling Survival Data*, Springer
//! (appendix E: the validation data sets used in the tests).

mod cohort;
mod concordance;
mod cox;
mod dist;
mod km;
mod linalg;

pub use cohort::{CHURN_COVARIATES, ChurnActivity, ChurnCohort, churn_cohort, mean_of_known};
pub use concordance::{Concordance, concordance};
pub use cox::{
    BaselineHazard, CoxConfig, CoxFit, DEFAULT_EPS, DEFAULT_MAX_ITER, Ties, cox_ph,
    log_partial_likelihood,
};
pub use dist::{chi_square_sf, erfc, normal_cdf, normal_two_sided_p};
pub use km::{KaplanMeier, KmRow, kaplan_meier};

/// Errors of the survival models. Every degenerate input has its own variant so that a
/// stage can report it without parsing messages.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SurvivalError {
    /// No subjects at all.
    #[error("no subjects")]
    Empty,
    /// Two inputs that must have one entry per subject (or per covariate) differ in length.
    #[error("length mismatch: {what} has {got} entries, expected {expected}")]
    LengthMismatch {
        /// Which input (e.g. `event`, `covariate row 3`, `beta`).
        what: String,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A time, risk score or other per-subject number is NaN or infinite.
    #[error("non-finite {what} for subject {index}")]
    NonFinite {
        /// Which input (`time`, `risk score`, `beta`, `x`, ...).
        what: &'static str,
        /// Index of the subject (or of the entry) in the caller's order.
        index: usize,
    },
    /// A covariate value is NaN or infinite.
    #[error("non-finite covariate {column} for subject {row}")]
    NonFiniteCovariate {
        /// Subject (row) index.
        row: usize,
        /// Covariate (column) index.
        column: usize,
    },
    /// A time is negative.
    #[error("negative time {value} for subject {index}")]
    NegativeTime {
        /// Subject index.
        index: usize,
        /// The offending time.
        value: f64,
    },
    /// The Cox model has nothing to estimate from: no subject had an event.
    #[error("no events: every subject is censored")]
    NoEvents,
    /// A Cox model needs at least p + 1 subjects for p covariates.
    #[error("{n} subjects for {p} covariates: at least {} are needed", p + 1)]
    TooFewSubjects {
        /// Number of subjects.
        n: usize,
        /// Number of covariates.
        p: usize,
    },
    /// The model has no covariates (p = 0).
    #[error("the Cox model needs at least one covariate")]
    NoCovariates,
    /// A covariate takes one value for every subject: its coefficient is not identified
    /// (the information matrix is singular).
    #[error("covariate {index} is constant ({value} for every subject): singular information")]
    ConstantCovariate {
        /// Covariate (column) index.
        index: usize,
        /// Its only value.
        value: f64,
    },
    /// The information matrix is singular: covariate `index` is (numerically) a linear
    /// combination of covariates `0..index`, or varies only outside the risk sets at the
    /// event times.
    #[error(
        "singular information matrix: covariate {index} is collinear with covariates 0..{index} or carries no information"
    )]
    SingularInformation {
        /// Covariate (column) index.
        index: usize,
    },
    /// A configuration or argument value is out of range; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias of the survival models.
pub type Result<T, E = SurvivalError> = std::result::Result<T, E>;

/// An n × p covariate matrix (one row per subject), stored row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Covariates {
    data: Vec<f64>,
    n: usize,
    p: usize,
}

impl Covariates {
    /// From row-major data: `data[i * p + j]` is covariate j of subject i.
    /// Errors with [`SurvivalError::LengthMismatch`] when `data.len() != n * p`.
    pub fn from_row_major(data: Vec<f64>, n: usize, p: usize) -> Result<Self> {
        if data.len() != n * p {
            return Err(SurvivalError::LengthMismatch {
                what: format!("covariate data for {n} x {p}"),
                expected: n * p,
                got: data.len(),
            });
        }
        Ok(Self { data, n, p })
    }

    /// From one row per subject; all rows must have the length of the first
    /// ([`SurvivalError::LengthMismatch`] names the first row that does not).
    /// No rows gives an empty 0 × 0 matrix.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let p = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * p);
        for (i, r) in rows.iter().enumerate() {
            if r.len() != p {
                return Err(SurvivalError::LengthMismatch {
                    what: format!("covariate row {i}"),
                    expected: p,
                    got: r.len(),
                });
            }
            data.extend_from_slice(r);
        }
        Ok(Self {
            data,
            n: rows.len(),
            p,
        })
    }

    /// Number of subjects (rows).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of covariates (columns).
    pub fn p(&self) -> usize {
        self.p
    }

    /// The covariates of subject `i`. Panics when `i >= n`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.p..(i + 1) * self.p]
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }
}

/// Checks one `(time, event)` pair per subject: equal lengths, at least one subject,
/// finite non-negative times.
pub(crate) fn validate_times(time: &[f64], event: &[bool]) -> Result<()> {
    if event.len() != time.len() {
        return Err(SurvivalError::LengthMismatch {
            what: "event".into(),
            expected: time.len(),
            got: event.len(),
        });
    }
    if time.is_empty() {
        return Err(SurvivalError::Empty);
    }
    for (i, &t) in time.iter().enumerate() {
        if !t.is_finite() {
            return Err(SurvivalError::NonFinite {
                what: "time",
                index: i,
            });
        }
        if t < 0.0 {
            return Err(SurvivalError::NegativeTime { index: i, value: t });
        }
    }
    Ok(())
}
