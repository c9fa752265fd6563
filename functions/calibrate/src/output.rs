//! Stage output: the JSON summary passed on by the state machine.

use lake::phases::Phases;
use serde::Serialize;

use crate::ValidInput;

/// Linking part of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkingSummary {
    /// Method used (`none` when unlinked).
    pub method: String,
    /// A of θ* = Aθ + B.
    pub a: f64,
    /// B of θ* = Aθ + B.
    pub b: f64,
    /// Anchors the constants rest on.
    pub n_anchors_used: usize,
    /// Anchors the drift screen flagged and left out (`anchor_drift`), by id.
    pub flagged_anchors: Vec<String>,
}

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrateOutput {
    /// `calibrated`, `no_observations`, or `refused_anchor_drift` (the drift screen left
    /// too few anchors: nothing written, the previous calibration stays the latest).
    pub status: String,
    /// Run id on every row written.
    pub run_id: String,
    /// Run date.
    pub run_date: String,
    /// Bank.
    pub bank: String,
    /// Model.
    pub model: String,
    /// Students calibrated: the fit sample's students with a usable response.
    pub n_students: usize,
    /// Students of the fit sample without a usable response.
    pub n_students_excluded: usize,
    /// Students with a θ in `abilities`: every student of the window with a response to
    /// an estimated item, in the fit sample or not.
    pub n_students_scored: usize,
    /// Items estimated.
    pub n_items: usize,
    /// Items excluded (see `item_params.excluded_reason`).
    pub n_items_excluded: usize,
    /// Responses the fit used (first attempts of the fit sample at estimated items).
    pub n_responses: usize,
    /// Responses behind the θ of `abilities` (sum of `abilities.n_responses`).
    pub n_responses_scored: usize,
    /// The fit sample's rule, `student_bucket<k/B seed=S` (see `sample`).
    pub sample: String,
    /// Anchors with known parameters among the bank's calibrated items.
    pub n_anchors: usize,
    /// Marginal log-likelihood.
    pub loglik: f64,
    /// AIC.
    pub aic: f64,
    /// BIC.
    pub bic: f64,
    /// EM cycles.
    pub iterations: usize,
    /// Converged?
    pub converged: bool,
    /// How EM ended.
    pub termination: String,
    /// Linking.
    pub linking: LinkingSummary,
    /// Wall time of the stage.
    pub elapsed_ms: i64,
    /// Wall time of its phases: read, prepare, fit (EM), se, link, scoring, write (ms).
    pub phases_ms: Phases,
    /// One sentence for operators.
    pub message: String,
}

impl CalibrateOutput {
    /// The summary of a window without observations (nothing written).
    pub fn empty(cfg: &ValidInput) -> Self {
        Self {
            status: "no_observations".into(),
            run_id: cfg.run_id.clone(),
            run_date: cfg.run_date.format("%Y-%m-%d").to_string(),
            bank: cfg.bank.to_string(),
            model: cfg.model.to_string(),
            n_students: 0,
            n_students_excluded: 0,
            n_students_scored: 0,
            n_items: 0,
            n_items_excluded: 0,
            n_responses: 0,
            n_responses_scored: 0,
            sample: String::new(),
            n_anchors: 0,
            loglik: 0.0,
            aic: 0.0,
            bic: 0.0,
            iterations: 0,
            converged: false,
            termination: "none".into(),
            linking: LinkingSummary {
                method: "none".into(),
                a: 1.0,
                b: 0.0,
                n_anchors_used: 0,
                flagged_anchors: Vec::new(),
            },
            elapsed_ms: 0,
            phases_ms: Phases::start(),
            message: format!(
                "no observations for bank {} between {} and {}: nothing written",
                cfg.bank,
                cfg.window_start(),
                cfg.run_date
            ),
        }
    }

    /// The summary of a calibration the anchor drift screen refused (nothing written).
    pub fn refused(cfg: &ValidInput, n_anchors: usize, reason: &str) -> Self {
        Self {
            status: "refused_anchor_drift".into(),
            n_anchors,
            message: format!(
                "bank {} not calibrated on {}: anchor drift: {reason}; nothing written, the \
                 previous calibration stays the latest (check the anchors' known parameters \
                 or tag new anchors)",
                cfg.bank, cfg.run_date
            ),
            ..Self::empty(cfg)
        }
    }
}
