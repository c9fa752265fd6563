//! Stage **growth** → `weekly_kpi.p`, `weekly_kpi.sigma`, `growth_fit`
//! (models: `models::growth`).
//!
//! # Data
//! Every student's weekly θ from [`kpis::weekly_thetas`] (EAP of the week's first
//! responses per question, latest `all`-bank calibration on or before the run date held
//! fixed) over the `weeks` weeks ending with the run date's week: `weeks =
//! ⌈lookback_days / 7⌉`, i.e. **9 weeks** with the default look-back of 60 days. Time is
//! the week offset from the run date's week (0 = current week, −1 the previous one, …),
//! so the fixed intercept is the cohort's *current* θ and a student's intercept its
//! current level. Students with **≥ 2 weekly θ** enter the models; the others are
//! counted (`students_single_week`) and get no `p`/`sigma`.
//!
//! # Models
//! - **REML** and **ML** linear mixed models `theta ~ week + (week | student)`
//!   ([`models::growth::fit_lmm`], as lme4's `lmer`). lme4's `check.nobs.vs.nRE` refuses
//!   data with no more rows than random effects (every student observed exactly twice);
//!   the stage **turns that check off** only then (`nobs_check_disabled` in the summary
//!   and a `diagnostic` row): the fit is still defined, though the residual variance and
//!   random slopes are weakly identified.
//! - **Bayes**: the hierarchical model with DESIGN's priors sampled by NUTS
//!   ([`models::growth::fit_bayes`]): 4 chains, 1000 warm-up + 1000 kept draws each,
//!   seeded from the run date (a re-run gives the same numbers). The environment
//!   variable `IRTLAKE_GROWTH_DRAWS=N` sets warm-up and kept draws to N each (N ≥ 20; for
//!   tests and quick looks).
//!
//! # P and sigma
//! Goal = the cohort's current mean θ + [`GOAL_OFFSET`]: the cohort's current mean is the
//! mean θ of **every student with a θ in the current week** (also those with a single
//! weekly θ); when nobody has one, the Bayesian posterior mean of the fixed intercept
//! (the fitted current level) — `goal_basis` says which. Target = [`TARGET_WEEKS`]
//! weeks ahead (time 4). `p` = `forecast(4, goal).p_goal`, the posterior probability that
//! the student's mean θ reaches the goal by then; `sigma` = posterior mean residual SD
//! (one cohort-level value, written on every modelled student's row).
//!
//! **R-hat gate**: when the largest rank-normalised R̂ exceeds
//! [`models::growth::DEFAULT_MAX_RHAT`] (1.05), P is not published: status
//! `not_converged`, `p` **and** `sigma` are written as null (both come from the same
//! unconverged chains), and `growth_fit` says so (`p_published` = 0, `max_rhat`).
//!
//! # Writes
//! - `weekly_kpi` partition of the run date's week: columns `p` and `sigma` only, via
//!   [`Lake::update_partition`]; every other column (KPIs, `s`, `run_id`, `updated_at`) is
//!   carried over exactly. Rows of students without a model get null. Nothing is written
//!   when the week has no partition (run `kpis` first; said in `notes`).
//! - `growth_fit` partition of the run date (replaced whole; `run_id`, `fitted_at` from
//!   the run context). `model` = `reml` / `ml` / `bayes`; `kind`:
//!   `fixed` (terms `intercept`, `slope`: estimate, se — for bayes the posterior mean
//!   and SD with rhat and bulk ESS), `varcomp` (`sd_intercept`, `sd_slope`, `corr`,
//!   `sd_residual`; bayes with rhat/ess), `blup` (group_id = student, terms `u0`, `u1`:
//!   conditional mode and SD; for bayes the posterior mean and SD of the random effects),
//!   `diagnostic` (reml/ml: `criterion`, `loglik`, `n_obs`, `n_groups`, `evaluations`,
//!   `converged`, `singular`, `nobs_check_disabled`; bayes: `max_rhat`, `rhat_threshold`,
//!   `p_published`, `divergences`, `chains`, `warmup`, `draws`, `goal`,
//!   `cohort_current_mean`, `goal_from_intercept`, `target_week`, `n_obs`, `n_groups`).
//!
//! # Degenerate input
//! No calibration or no weekly θ (`no_thetas`), fewer than
//! [`models::growth::MIN_GROUPS`] students with two weekly θ (`too_few_students`), all θ
//! in one week (`one_week`): a clear summary, nothing written. A sampler failure
//! (`bayes_failed`) keeps the REML/ML rows and publishes no P.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{Datelike, NaiveDate};
use lake::Lake;
use lake::catalog::{self, GROWTH_FIT, WEEKLY_KPI};
use lake::runs::{StageError, StageInput, day_str, week_start};
use models::growth::{
    BayesConfig, BayesFit, BayesPriors, DEFAULT_MAX_RHAT, GrowthData, GrowthError, LmmConfig,
    LmmFit, LmmMethod, fit_bayes, fit_lmm,
};
use serde::Serialize;

/// Goal = cohort's current mean θ + this.
pub const GOAL_OFFSET: f64 = 0.5;
/// Target: this many weeks after the current week.
pub const TARGET_WEEKS: f64 = 4.0;
/// Environment variable overriding warm-up and kept draws per chain.
pub const DRAWS_ENV: &str = "IRTLAKE_GROWTH_DRAWS";

/// Summary of one mixed-model fit.
#[derive(Debug, Clone, Serialize)]
pub struct LmmSummary {
    /// Fixed intercept (current cohort θ).
    pub intercept: f64,
    /// Fixed slope (θ per week).
    pub slope: f64,
    /// SE of the slope.
    pub slope_se: f64,
    /// Residual SD.
    pub sd_residual: f64,
    /// −2 (restricted) log-likelihood.
    pub criterion: f64,
    /// Optimiser converged.
    pub converged: bool,
    /// Boundary fit (lme4's isSingular).
    pub singular: bool,
}

/// Summary of the Bayesian fit.
#[derive(Debug, Clone, Serialize)]
pub struct BayesSummary {
    /// Posterior mean of the fixed intercept.
    pub intercept: f64,
    /// Posterior mean of the fixed slope.
    pub slope: f64,
    /// Posterior mean residual SD (`sigma`).
    pub sigma: f64,
    /// Largest R̂ over the sampled parameters.
    pub max_rhat: f64,
    /// Smallest bulk ESS.
    pub min_ess_bulk: f64,
    /// Divergent transitions after warm-up.
    pub divergences: usize,
    /// Chains, warm-up and kept draws per chain.
    pub chains: usize,
    /// Warm-up iterations per chain.
    pub warmup: usize,
    /// Kept draws per chain.
    pub draws: usize,
}

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthOutput {
    /// Run id.
    pub run_id: String,
    /// Run date.
    pub run_date: String,
    /// `fitted`, `not_converged`, `bayes_failed`, `no_thetas`, `too_few_students`,
    /// `one_week`.
    pub status: String,
    /// Why P was not published or nothing was fitted.
    pub message: Option<String>,
    /// Weeks of θ looked at.
    pub weeks: u32,
    /// Students in the models (≥ 2 weekly θ).
    pub students: usize,
    /// Student-weeks in the models.
    pub observations: usize,
    /// Students with a single weekly θ (left out).
    pub students_single_week: usize,
    /// Distinct week patterns (cost driver of both likelihoods).
    pub design_patterns: usize,
    /// lme4's nobs-vs-random-effects check turned off for these data.
    pub nobs_check_disabled: bool,
    /// REML fit.
    pub reml: Option<LmmSummary>,
    /// ML fit.
    pub ml: Option<LmmSummary>,
    /// Bayesian fit.
    pub bayes: Option<BayesSummary>,
    /// Mean θ of the current week (students with a θ this week).
    pub cohort_current_mean: Option<f64>,
    /// `current_week_mean` or `fitted_intercept`.
    pub goal_basis: Option<String>,
    /// The goal θ.
    pub goal: Option<f64>,
    /// Target week (weeks after the current one).
    pub target_week: f64,
    /// Whether `p` was published.
    pub p_published: bool,
    /// Monday of the week `p`, `sigma` are written to.
    pub week_start: String,
    /// `weekly_kpi` rows that received a `p`.
    pub p_written: usize,
    /// Rows written to `growth_fit`.
    pub growth_fit_rows: usize,
    /// Anything the operator should know.
    pub notes: Vec<String>,
    /// Wall time of the stage, of the two mixed models and of the sampler (ms).
    pub elapsed_ms: u64,
    /// Mixed models (REML + ML).
    pub lmm_ms: u64,
    /// NUTS sampling and forecasts.
    pub bayes_ms: u64,
}

/// Sampler settings: defaults, or `IRTLAKE_GROWTH_DRAWS`.
fn bayes_config(run_date: NaiveDate) -> Result<BayesConfig, StageError> {
    let mut cfg = BayesConfig {
        seed: u64::try_from(run_date.num_days_from_ce()).unwrap_or(0),
        ..BayesConfig::default()
    };
    if let Ok(v) = std::env::var(DRAWS_ENV) {
        let n: usize = v.trim().parse().ok().filter(|&n| n >= 20).ok_or_else(|| {
            StageError::InvalidInput(format!("{DRAWS_ENV}='{v}': expected a whole number >= 20"))
        })?;
        cfg.warmup = n;
        cfg.draws = n;
    }
    Ok(cfg)
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<GrowthOutput, StageError> {
    let started = Instant::now();
    let rc = input.context("growth")?;
    let week = week_start(rc.run_date);
    let weeks = rc.lookback_days.div_ceil(7);
    let bayes_cfg = bayes_config(rc.run_date)?;
    let mut out = GrowthOutput {
        run_id: rc.run_id.clone(),
        run_date: day_str(rc.run_date),
        status: "fitted".into(),
        message: None,
        weeks,
        students: 0,
        observations: 0,
        students_single_week: 0,
        design_patterns: 0,
        nobs_check_disabled: false,
        reml: None,
        ml: None,
        bayes: None,
        cohort_current_mean: None,
        goal_basis: None,
        goal: None,
        target_week: TARGET_WEEKS,
        p_published: false,
        week_start: day_str(week),
        p_written: 0,
        growth_fit_rows: 0,
        notes: Vec::new(),
        elapsed_ms: 0,
        lmm_ms: 0,
        bayes_ms: 0,
    };
    let thetas = kpis::weekly_thetas(lake, rc.run_date, weeks, rc.shard).await?;
    let finish = |mut out: GrowthOutput, status: &str, message: String| {
        tracing::warn!(status, %message, "growth not fitted");
        out.status = status.into();
        out.message = Some(message);
        out.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(out)
    };
    if thetas.is_empty() {
        let message = format!(
            "no weekly θ in the {weeks} weeks up to {} (no calibration of bank all, or too few responses per week): nothing written",
            out.run_date
        );
        return finish(out, "no_thetas", message);
    }

    // Per student: (time, θ) rows; cohort's current θ.
    let mut by_student: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut current = Vec::new();
    for t in &thetas {
        let offset = (t.week_start - week).num_days() as f64 / 7.0;
        by_student
            .entry(t.student_id.as_str())
            .or_default()
            .push((offset, t.theta.value));
        if t.week_start == week {
            current.push(t.theta.value);
        }
    }
    let (mut ids, mut time, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for (s, rows) in &by_student {
        if rows.len() < 2 {
            out.students_single_week += 1;
            continue;
        }
        for &(t, v) in rows {
            ids.push(s.to_string());
            time.push(t);
            y.push(v);
        }
    }
    out.observations = ids.len();
    if !current.is_empty() {
        out.cohort_current_mean = Some(current.iter().sum::<f64>() / current.len() as f64);
    }
    if ids.is_empty() {
        let one_week = thetas.iter().all(|t| t.week_start == thetas[0].week_start);
        return if one_week {
            let message = format!(
                "every weekly θ is in the week of {}: a growth model needs two weeks; nothing written",
                day_str(thetas[0].week_start)
            );
            finish(out, "one_week", message)
        } else {
            let message = "no student has a θ in two different weeks: nothing written".into();
            finish(out, "too_few_students", message)
        };
    }
    let (data, keys) = GrowthData::from_ids(&ids, &time, &y).map_err(StageError::model)?;
    out.students = keys.len();
    out.design_patterns = data.n_patterns();
    match data.check_identifiable() {
        Ok(()) => {}
        Err(e @ GrowthError::TooFewGroups { .. }) => {
            return finish(out, "too_few_students", format!("{e}: nothing written"));
        }
        Err(e @ GrowthError::SlopeNotIdentifiable(_)) => {
            return finish(out, "one_week", format!("{e}: nothing written"));
        }
        Err(e) => return Err(StageError::model(e)),
    }

    // REML and ML.
    let t_lmm = Instant::now();
    out.nobs_check_disabled = data.n_obs() <= 2 * data.n_groups();
    if out.nobs_check_disabled {
        out.notes.push(format!(
            "{} observations for {} students (≤ 2 per student): lme4's nobs-vs-random-effects check is turned off; variance components are weakly identified",
            data.n_obs(),
            data.n_groups()
        ));
    }
    let mut rows = FitRows::default();
    for method in [LmmMethod::Reml, LmmMethod::Ml] {
        let config = LmmConfig {
            method,
            check_nobs_vs_nre: !out.nobs_check_disabled,
            ..LmmConfig::default()
        };
        let name = match method {
            LmmMethod::Reml => "reml",
            LmmMethod::Ml => "ml",
        };
        match fit_lmm(&data, &config) {
            Ok(fit) => {
                lmm_rows(&mut rows, name, &fit, &keys, out.nobs_check_disabled);
                let s = LmmSummary {
                    intercept: fit.intercept.estimate,
                    slope: fit.slope.estimate,
                    slope_se: fit.slope.se,
                    sd_residual: fit.variance.sd_residual,
                    criterion: fit.criterion,
                    converged: fit.converged,
                    singular: fit.singular,
                };
                if !fit.converged {
                    out.notes
                        .push(format!("{name}: the optimiser did not converge"));
                }
                if fit.singular {
                    out.notes.push(format!("{name}: boundary (singular) fit"));
                }
                match method {
                    LmmMethod::Reml => out.reml = Some(s),
                    LmmMethod::Ml => out.ml = Some(s),
                }
            }
            Err(e @ (GrowthError::Degenerate(_) | GrowthError::TooFewObservations { .. })) => {
                out.notes.push(format!("{name} not fitted: {e}"));
            }
            Err(e) => return Err(StageError::model(e)),
        }
    }
    out.lmm_ms = t_lmm.elapsed().as_millis() as u64;

    // Bayes (CPU-bound, run inline like the other stages' model fits; the chains run
    // in parallel on rayon).
    let t_bayes = Instant::now();
    let bayes = fit_bayes(&data, &BayesPriors::default(), &bayes_cfg);
    let mut published: HashMap<String, (Option<f64>, Option<f64>)> = HashMap::new();
    match bayes {
        Ok(fit) => {
            let (goal, from_intercept) = match out.cohort_current_mean {
                Some(m) => (m + GOAL_OFFSET, false),
                None => (
                    fit.param("beta0").map_or(f64::NAN, |p| p.mean) + GOAL_OFFSET,
                    true,
                ),
            };
            out.goal = Some(goal);
            out.goal_basis = Some(
                if from_intercept {
                    "fitted_intercept"
                } else {
                    "current_week_mean"
                }
                .into(),
            );
            if from_intercept {
                out.notes.push(
                    "nobody has a θ in the current week: goal = fitted intercept + 0.5".into(),
                );
            }
            let forecasts = fit.forecast(TARGET_WEEKS, goal);
            let converged = fit.check_rhat(DEFAULT_MAX_RHAT);
            out.p_published = converged.is_ok();
            if let Err(e) = &converged {
                out.status = "not_converged".into();
                out.message = Some(format!("{e}: P and sigma not published (written as null)"));
            }
            for (k, f) in keys.iter().zip(&forecasts) {
                let v = if out.p_published {
                    (
                        Some(f.p_goal).filter(|p| p.is_finite()),
                        Some(fit.sigma_mean),
                    )
                } else {
                    (None, None)
                };
                published.insert(k.clone(), v);
            }
            out.bayes = Some(BayesSummary {
                intercept: fit.param("beta0").map_or(f64::NAN, |p| p.mean),
                slope: fit.param("beta1").map_or(f64::NAN, |p| p.mean),
                sigma: fit.sigma_mean,
                max_rhat: fit.max_rhat(),
                min_ess_bulk: fit
                    .params
                    .iter()
                    .map(|p| p.ess_bulk)
                    .fold(f64::INFINITY, f64::min),
                divergences: fit.divergences,
                chains: bayes_cfg.chains,
                warmup: bayes_cfg.warmup,
                draws: bayes_cfg.draws,
            });
            if fit.divergences > 0 {
                out.notes.push(format!(
                    "{} divergent transitions after warm-up",
                    fit.divergences
                ));
            }
            bayes_rows(
                &mut rows,
                &fit,
                &forecasts,
                &keys,
                &bayes_cfg,
                &out,
                goal,
                from_intercept,
            );
        }
        Err(e) => {
            out.status = "bayes_failed".into();
            out.message = Some(format!(
                "NUTS sampling failed: {e}; REML/ML written, P not published"
            ));
            tracing::warn!(error = %e, "growth: sampler failed");
        }
    }
    out.bayes_ms = t_bayes.elapsed().as_millis() as u64;

    out.growth_fit_rows = write_fit(lake, &rc.run_id, rc.run_ts, rc.run_date, &rows).await?;
    if out.bayes.is_some() {
        out.p_written = write_p_sigma(lake, week, &published).await?;
        if out.p_written == 0 && out.p_published {
            out.notes.push(format!(
                "no weekly_kpi rows of modelled students for the week of {}: run kpis for that week first",
                out.week_start
            ));
        }
    }
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        students = out.students,
        status = %out.status,
        elapsed_ms = out.elapsed_ms,
        "growth fitted"
    );
    Ok(out)
}

/// Rows of `growth_fit` under construction.
#[derive(Default)]
struct FitRows {
    model: Vec<&'static str>,
    kind: Vec<&'static str>,
    term: Vec<String>,
    group_id: Vec<Option<String>>,
    estimate: Vec<Option<f64>>,
    se: Vec<Option<f64>>,
    rhat: Vec<Option<f64>>,
    ess: Vec<Option<f64>>,
}

impl FitRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        model: &'static str,
        kind: &'static str,
        term: impl Into<String>,
        group_id: Option<&str>,
        estimate: f64,
        se: Option<f64>,
        rhat: Option<f64>,
        ess: Option<f64>,
    ) {
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        self.model.push(model);
        self.kind.push(kind);
        self.term.push(term.into());
        self.group_id.push(group_id.map(str::to_string));
        self.estimate.push(finite(Some(estimate)));
        self.se.push(finite(se));
        self.rhat.push(finite(rhat));
        self.ess.push(finite(ess));
    }

    fn diag(&mut self, model: &'static str, term: &str, value: f64) {
        self.push(model, "diagnostic", term, None, value, None, None, None);
    }
}

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

fn lmm_rows(
    rows: &mut FitRows,
    model: &'static str,
    fit: &LmmFit,
    keys: &[String],
    nobs_off: bool,
) {
    rows.push(
        model,
        "fixed",
        "intercept",
        None,
        fit.intercept.estimate,
        Some(fit.intercept.se),
        None,
        None,
    );
    rows.push(
        model,
        "fixed",
        "slope",
        None,
        fit.slope.estimate,
        Some(fit.slope.se),
        None,
        None,
    );
    let v = &fit.variance;
    for (term, value) in [
        ("sd_intercept", v.sd_intercept),
        ("sd_slope", v.sd_slope),
        ("corr", v.corr),
        ("sd_residual", v.sd_residual),
    ] {
        rows.push(model, "varcomp", term, None, value, None, None, None);
    }
    rows.diag(model, "criterion", fit.criterion);
    rows.diag(model, "loglik", fit.log_likelihood);
    rows.diag(model, "n_obs", fit.n_obs as f64);
    rows.diag(model, "n_groups", fit.n_groups as f64);
    rows.diag(model, "evaluations", fit.evaluations as f64);
    rows.diag(model, "converged", flag(fit.converged));
    rows.diag(model, "singular", flag(fit.singular));
    rows.diag(model, "nobs_check_disabled", flag(nobs_off));
    for (k, b) in keys.iter().zip(&fit.blups) {
        rows.push(
            model,
            "blup",
            "u0",
            Some(k),
            b.u0,
            Some(b.sd_u0),
            None,
            None,
        );
        rows.push(
            model,
            "blup",
            "u1",
            Some(k),
            b.u1,
            Some(b.sd_u1),
            None,
            None,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn bayes_rows(
    rows: &mut FitRows,
    fit: &BayesFit,
    forecasts: &[models::growth::GroupForecast],
    keys: &[String],
    cfg: &BayesConfig,
    out: &GrowthOutput,
    goal: f64,
    from_intercept: bool,
) {
    for p in &fit.params {
        let (kind, term) = match p.name.as_str() {
            "beta0" => ("fixed", "intercept"),
            "beta1" => ("fixed", "slope"),
            "sigma" => ("varcomp", "sd_residual"),
            other => ("varcomp", other),
        };
        rows.push(
            "bayes",
            kind,
            term,
            None,
            p.mean,
            Some(p.sd),
            Some(p.rhat),
            Some(p.ess_bulk),
        );
    }
    rows.diag("bayes", "max_rhat", fit.max_rhat());
    rows.diag("bayes", "rhat_threshold", DEFAULT_MAX_RHAT);
    rows.diag("bayes", "p_published", flag(out.p_published));
    rows.diag("bayes", "divergences", fit.divergences as f64);
    rows.diag("bayes", "chains", cfg.chains as f64);
    rows.diag("bayes", "warmup", cfg.warmup as f64);
    rows.diag("bayes", "draws", cfg.draws as f64);
    rows.diag("bayes", "goal", goal);
    if let Some(m) = out.cohort_current_mean {
        rows.diag("bayes", "cohort_current_mean", m);
    }
    rows.diag("bayes", "goal_from_intercept", flag(from_intercept));
    rows.diag("bayes", "target_week", TARGET_WEEKS);
    rows.diag("bayes", "n_obs", out.observations as f64);
    rows.diag("bayes", "n_groups", keys.len() as f64);
    for (k, f) in keys.iter().zip(forecasts) {
        rows.push(
            "bayes",
            "blup",
            "u0",
            Some(k),
            f.u0,
            Some(f.sd_u0),
            None,
            None,
        );
        rows.push(
            "bayes",
            "blup",
            "u1",
            Some(k),
            f.u1,
            Some(f.sd_u1),
            None,
            None,
        );
    }
}

/// Replaces the `growth_fit` partition of the run date; returns the rows written.
async fn write_fit(
    lake: &Lake,
    run_id: &str,
    fitted_at: i64,
    run_date: NaiveDate,
    rows: &FitRows,
) -> Result<usize, StageError> {
    let def = catalog::table(GROWTH_FIT)?;
    let n = rows.model.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(StringArray::from(rows.model.clone())),
        Arc::new(StringArray::from(rows.kind.clone())),
        Arc::new(StringArray::from_iter_values(&rows.term)),
        Arc::new(StringArray::from(rows.group_id.clone())),
        Arc::new(Float64Array::from(rows.estimate.clone())),
        Arc::new(Float64Array::from(rows.se.clone())),
        Arc::new(Float64Array::from(rows.rhat.clone())),
        Arc::new(Float64Array::from(rows.ess.clone())),
        Arc::new(TimestampMicrosecondArray::from(vec![fitted_at; n]).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(def.file_schema.clone(), cols)?;
    lake.write_partition(GROWTH_FIT, &[("run_date", &day_str(run_date))], &[batch])
        .await?;
    Ok(n)
}

/// Puts `p`, `sigma` into the week's `weekly_kpi` rows (null for students not in
/// `values`), keeping every other column; returns the rows that got a non-null `p`.
/// Writes nothing when the partition does not exist.
async fn write_p_sigma(
    lake: &Lake,
    week: NaiveDate,
    values: &HashMap<String, (Option<f64>, Option<f64>)>,
) -> Result<usize, StageError> {
    let values: HashMap<String, Vec<Option<f64>>> = values
        .iter()
        .map(|(k, (p, sigma))| (k.clone(), vec![*p, *sigma]))
        .collect();
    let week_s = day_str(week);
    Ok(lake
        .set_float_columns(
            WEEKLY_KPI,
            &[("week_start", &week_s)],
            "student_id",
            &["p", "sigma"],
            &values,
        )
        .await?)
}
