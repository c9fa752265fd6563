//! The accuracy model: `correct ~ week + (week | student)`, a binomial GLMM fitted by
//! the Laplace approximation as lme4's `glmer` (nAGQ = 1; [`models::growth::fit_glmm`]),
//! for the students the θ model does not cover (see the crate docs, "P of students
//! without two weekly θ").

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use lake::runs::StageError;
use models::growth::{GlmmConfig, GlmmData, GlmmFit, GlmmRows, GrowthError, fit_glmm};
use serde::Serialize;

use crate::panel::Panel;
use crate::rows::FitRows;
use crate::{GOAL_OFFSET, PValue, TARGET_WEEKS};

/// Most students in the accuracy model's fit sample. The Laplace fit costs about
/// 0.8 ms per student (9 weeks, 2 cores: ≈ 0.8 s for 1,000 students, 7 s for 5,000), and
/// a thousand students already pin the population's slope to ≈ ±0.01 logits per week,
/// well inside a student's own uncertainty, so the cap buys speed without changing a
/// student's P in any way that matters.
pub const GLMM_MAX_FIT_STUDENTS: u64 = 1_000;

/// `p_model` of a P from the Bayesian model of weekly θ.
pub const P_MODEL_THETA: &str = "bayes_theta";
/// `p_model` of a P from the accuracy GLMM.
pub const P_MODEL_ACCURACY: &str = "glmm_accuracy";

/// `growth_fit.model` of the accuracy GLMM.
const MODEL: &str = "glmm";

/// Summary of the accuracy model.
#[derive(Debug, Clone, Serialize)]
pub struct GlmmSummary {
    /// `fitted`, `not_converged`, `no_students` (not fitted: nobody of a shard other than
    /// 0 needs an accuracy P),
    /// `too_few_students`, `one_week`, `degenerate`.
    pub status: String,
    /// Why nothing was published.
    pub message: Option<String>,
    /// Its fit sample: `student_bucket<k/4096 seed=0`, a sub-sample of the θ model's.
    pub fit_sample: String,
    /// Students of the fit sample in the model (with answers in two weeks or more).
    pub students: usize,
    /// Student-weeks of the fit sample (binomial rows).
    pub observations: usize,
    /// Fixed intercept: the typical student's current log-odds of a right answer.
    pub intercept: Option<f64>,
    /// Fixed slope (logits per week).
    pub slope: Option<f64>,
    /// SE of the slope.
    pub slope_se: Option<f64>,
    /// SD of the random intercepts (logits).
    pub sd_intercept: Option<f64>,
    /// SD of the random slopes (logits per week).
    pub sd_slope: Option<f64>,
    /// Laplace log-likelihood (lme4's `logLik()`).
    pub loglik: Option<f64>,
    /// Boundary fit.
    pub singular: bool,
    /// Goal: intercept + this (logits).
    pub goal_offset: f64,
    /// Whether accuracy P was published.
    pub p_published: bool,
    /// Students of this shard active in the current week given an accuracy P.
    pub scored: usize,
    /// Wall time spent on the accuracy model after the θ model (ms): its forecasts, and
    /// its fit unless that was made before (by an earlier shard of the process, or by
    /// shard 0 on a thread of its own beside NUTS).
    pub elapsed_ms: u64,
}

impl GlmmSummary {
    fn new(fit_sample: String) -> Self {
        Self {
            status: "no_students".into(),
            message: None,
            fit_sample,
            students: 0,
            observations: 0,
            intercept: None,
            slope: None,
            slope_se: None,
            sd_intercept: None,
            sd_slope: None,
            loglik: None,
            singular: false,
            goal_offset: GOAL_OFFSET,
            p_published: false,
            scored: 0,
            elapsed_ms: 0,
        }
    }
}

/// The accuracy rows of `panel` whose student `keep` keeps, as GLMM data (`predict`:
/// for forecasting only, without the estimation checks).
fn glmm_data(
    panel: &Panel,
    keep: impl Fn(&str) -> bool,
    predict: bool,
) -> Result<Option<(GlmmData, Vec<String>)>, GrowthError> {
    let rows: Vec<usize> = (0..panel.acc_ids.len())
        .filter(|&r| keep(&panel.acc_ids[r]))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let pick = |col: &[f64]| rows.iter().map(|&r| col[r]).collect::<Vec<f64>>();
    let ids: Vec<&str> = rows.iter().map(|&r| panel.acc_ids[r].as_str()).collect();
    let (time, k, m) = (
        pick(&panel.acc_time),
        pick(&panel.acc_correct),
        pick(&panel.acc_answered),
    );
    let covariates = [("week", time.as_slice())];
    let r = GlmmRows {
        group: &ids,
        successes: &k,
        trials: Some(&m),
        covariates: &covariates,
        time: Some(&time),
    };
    let (data, keys) = if predict {
        GlmmData::for_prediction_from_ids(&r)?
    } else {
        GlmmData::from_ids(&r)?
    };
    Ok(Some((data, keys.into_iter().map(str::to_string).collect())))
}

/// The accuracy model fitted on its fit sample: the sample's students and rows in the
/// model, and the fit with the students' keys, or why it could not be fitted. Every
/// shard of a run gets the same one (see `SharedWork` of the crate).
pub(crate) struct GlmmOutcome {
    students: usize,
    observations: usize,
    fitted: Result<(GlmmFit, Vec<String>), GrowthError>,
}

/// Fits the accuracy model on `sample` into `fitted` unless it is there: what
/// [`accuracy_p`] would do first, for a caller that starts it on another thread while
/// the θ model runs (the fit is the same whichever thread makes it).
pub(crate) fn prefit(sample: &Panel, fitted: &OnceLock<GlmmOutcome>) {
    fitted.get_or_init(|| fit_sample_glmm(sample));
}

/// Fits the accuracy GLMM on the students of `sample` with answers in two weeks or more.
fn fit_sample_glmm(sample: &Panel) -> GlmmOutcome {
    let multi_week = sample.multi_week_students();
    let rows = glmm_data(sample, |id| multi_week.contains(id), false)
        .and_then(|d| d.ok_or(GrowthError::TooFewGroups { groups: 0, min: 1 }));
    match rows {
        Ok((data, keys)) => GlmmOutcome {
            students: data.n_groups(),
            observations: data.n_obs(),
            fitted: fit_glmm(&data, &GlmmConfig::default()).map(|fit| (fit, keys)),
        },
        Err(e) => GlmmOutcome {
            students: 0,
            observations: 0,
            fitted: Err(e),
        },
    }
}

/// Fits the accuracy GLMM on the students of `sample` with answers in two weeks or more
/// and gives every student of `own`
/// active in the current week (the students with a `weekly_kpi` row to receive it) that
/// is not in `covered` (the students the θ model gives a P) an accuracy P. Shard 0
/// (`fit_rows`) always fits it and records the fit in `growth_fit`, so that table does
/// not depend on the sharding; another shard fits it (or takes the run's fit,
/// `SharedWork`) only when one of its students needs it. A model that cannot be fitted
/// is a status in the summary, not an error.
pub(crate) fn accuracy_p(
    sample: &Panel,
    own: &Panel,
    covered: &HashSet<&str>,
    fit_sample: String,
    fitted: &OnceLock<GlmmOutcome>,
    fit_rows: Option<&mut FitRows>,
) -> Result<(GlmmSummary, HashMap<String, PValue>), StageError> {
    let started = std::time::Instant::now();
    let mut s = GlmmSummary::new(fit_sample);
    let mut published = HashMap::new();
    let active = own.current_week_students();
    let needed = glmm_data(own, |id| active.contains(id) && !covered.contains(id), true)
        .map_err(StageError::model)?;
    if needed.is_none() && fit_rows.is_none() {
        s.message = Some(
            "every student of this shard active in the current week is covered by the θ model"
                .into(),
        );
        return Ok((s, published));
    }
    let refuse = |mut s: GlmmSummary, status: &str, message: String| {
        tracing::warn!(status, %message, "growth: accuracy model not fitted");
        s.status = status.into();
        s.message = Some(message);
        s
    };
    let outcome = fitted.get_or_init(|| fit_sample_glmm(sample));
    s.students = outcome.students;
    s.observations = outcome.observations;
    let (fit, keys) = match &outcome.fitted {
        Ok((fit, keys)) => (fit, keys),
        Err(e) => {
            let status = match e {
                GrowthError::TooFewGroups { .. } | GrowthError::TooFewObservations { .. } => {
                    "too_few_students"
                }
                GrowthError::SlopeNotIdentifiable(_) => "one_week",
                _ => "degenerate",
            };
            let s = refuse(s, status, format!("{e}: no accuracy P"));
            return Ok((s, published));
        }
    };
    s.status = "fitted".into();
    s.intercept = Some(fit.fixed[0].estimate);
    s.slope = Some(fit.fixed[1].estimate);
    s.slope_se = Some(fit.fixed[1].se);
    s.sd_intercept = Some(fit.sd_intercept);
    s.sd_slope = fit.sd_slope;
    s.loglik = Some(fit.log_likelihood);
    s.singular = fit.singular;
    s.p_published = fit.converged;
    if let (true, Some((wanted, wanted_keys))) = (fit.converged, needed) {
        let forecasts = fit
            .growth_forecasts(&wanted, TARGET_WEEKS, GOAL_OFFSET)
            .map_err(StageError::model)?;
        for (k, f) in wanted_keys.into_iter().zip(&forecasts) {
            if f.p_goal.is_finite() {
                published.insert(
                    k,
                    PValue {
                        p: Some(f.p_goal),
                        sigma: None,
                        model: Some(P_MODEL_ACCURACY),
                    },
                );
            }
        }
        s.scored = published.len();
    } else if !fit.converged {
        s = refuse(
            s,
            "not_converged",
            "the Laplace fit did not meet its tolerances: accuracy P not published".into(),
        );
    }
    if let Some(rows) = fit_rows {
        glmm_rows(rows, fit, keys, &s);
    }
    s.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok((s, published))
}

/// `growth_fit` rows of model `glmm`: fixed effects, variance components, diagnostics,
/// and the fit sample's BLUPs (logit scale) with their conditional SDs.
fn glmm_rows(rows: &mut FitRows, fit: &GlmmFit, keys: &[String], s: &GlmmSummary) {
    for (f, term) in fit.fixed.iter().zip(["intercept", "slope"]) {
        rows.push(
            MODEL,
            "fixed",
            term,
            None,
            f.estimate,
            Some(f.se),
            None,
            None,
        );
    }
    for (term, value) in [
        ("sd_intercept", Some(fit.sd_intercept)),
        ("sd_slope", fit.sd_slope),
        ("corr", fit.corr),
    ] {
        if let Some(v) = value {
            rows.push(MODEL, "varcomp", term, None, v, None, None, None);
        }
    }
    let flag = |b: bool| f64::from(u8::from(b));
    for (term, value) in [
        ("loglik", fit.log_likelihood),
        ("deviance", fit.deviance),
        ("n_obs", fit.n_obs as f64),
        ("n_groups", fit.n_groups as f64),
        ("evaluations", fit.evaluations as f64),
        ("converged", flag(fit.converged)),
        ("singular", flag(fit.singular)),
        ("p_published", flag(s.p_published)),
        ("goal_offset", GOAL_OFFSET),
        ("target_week", TARGET_WEEKS),
    ] {
        rows.diag(MODEL, term, value);
    }
    for (k, b) in keys.iter().zip(&fit.blups) {
        rows.push(
            MODEL,
            "blup",
            "u0",
            Some(k),
            b.intercept,
            Some(b.sd_intercept),
            None,
            None,
        );
        if let (Some(u1), Some(sd1)) = (b.slope, b.sd_slope) {
            rows.push(MODEL, "blup", "u1", Some(k), u1, Some(sd1), None, None);
        }
    }
}
