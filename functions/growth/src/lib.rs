//! Stage **growth** → `weekly_kpi.p`, `weekly_kpi.sigma`, `weekly_kpi.p_model`,
//! `growth_fit` (models: `models::growth`).
//!
//! # Data
//! Students' weekly θ from [`kpis::weekly_thetas`] (EAP of the week's first
//! responses per question, latest `all`-bank calibration on or before the run date held
//! fixed) over the `weeks` weeks ending with the run date's week: `weeks =
//! ⌈lookback_days / 7⌉`, i.e. **9 weeks** with the default look-back of 60 days. Time is
//! the week offset from the run date's week (0 = current week, −1 the previous one, …),
//! so the fixed intercept is the cohort's *current* θ and a student's intercept its
//! current level. Students with **≥ 2 weekly θ** enter the θ models; the others are
//! counted (`students_single_week`) and get their `p` from the accuracy model (below).
//!
//! # Fit sample and shards
//! What the models estimate for the cohort as a whole — the REML/ML fixed effects and
//! variance components, the Bayesian model's hyper-parameters (β₀, β₁, τ₀, τ₁, ρ, σ:
//! NUTS samples exactly these, the random effects being integrated out), and the goal —
//! is fitted on the **fit sample**: the students of student buckets `0..k`
//! (`student_bucket(student_id, 0)`, the buckets of `lake::shard`, seed 0), with
//! `k = ⌊4096 / m⌋` for the smallest whole `m` whose buckets hold at most
//! [`GrowthConfig::max_fit_students`] students with attempts in two weeks of the
//! window (default [`DEFAULT_MAX_FIT_STUDENTS`] = 50,000; an upper bound of the
//! students with two weekly θ, counted per bucket by one aggregation, then
//! [`Shard::fit_sample`]). The hash puts students in buckets independently
//! of everything about them, so the sample is a simple random sample of `k/4096` of the
//! students; when they are within the cap, `k = 4096` and the sample is everyone. It is
//! the same set of students in every invocation of a run, so every shard fits the same
//! model, bit for bit (the sampler is seeded from the run date).
//!
//! A run may be split into student shards (`shard`/`shards` of the input,
//! `lake::shard::Shard`): an invocation reads the weekly θ of its own shard only and
//! computes each of its students' `p` **conditional on the sample's posterior draws of
//! the hyper-parameters** ([`models::growth::BayesFit::forecast_data`]: given the
//! hyper-parameters a student's random effects are Gaussian and depend on its own rows
//! only). A student's `p` therefore does not depend on which other students are read:
//! sharded and unsharded runs write the same `p` and `sigma`. For a student in the fit
//! sample this is exactly its marginal posterior under the joint fit; for a student
//! outside it, the posterior given the sample's hyper-parameters (its own rows would add
//! a negligible 1/50,000 to them).
//!
//! What every shard computes the same — the students per bucket, the θ model's fit
//! sample's weekly records, the NUTS fit and the accuracy model's fit — is computed once
//! per process and run ([`lake::memo`]; `SharedWork`): when one process serves several
//! shards (the local runner, a warm Lambda container), the later shards take the first
//! one's (`reused_shared_work` in the summary). The memo's key names the run date, the
//! weeks, the sample cap, the sampler's settings and the state of the tables read
//! (attempts and the calibration's `fit_meta`, `item_params`), so the bytes written are
//! the same either way.
//!
//! # Models
//! - **REML** and **ML** linear mixed models `theta ~ week + (week | student)`
//!   ([`models::growth::fit_lmm`], as lme4's `lmer`) on the fit sample, for `growth_fit`
//!   (fitted by shard 0 only, which writes that table). lme4's `check.nobs.vs.nRE`
//!   refuses data with no more rows than random effects (every student observed exactly
//!   twice); the stage **turns that check off** only then (`nobs_check_disabled` in the
//!   summary and a `diagnostic` row): the fit is still defined, though the residual
//!   variance and random slopes are weakly identified.
//! - **Bayes**: the hierarchical model with DESIGN's priors sampled by NUTS
//!   ([`models::growth::fit_bayes`]) on the fit sample: 4 chains, 1000 warm-up + 1000
//!   kept draws each, seeded from the run date (a re-run gives the same numbers). The
//!   environment variable `IRTLAKE_GROWTH_DRAWS=N` sets warm-up and kept draws to N each
//!   (N ≥ 20; for tests and quick looks).
//!
//! # P and sigma
//! Goal = the cohort's current mean θ + [`GOAL_OFFSET`]: the cohort's current mean is the
//! mean θ of **every student of the fit sample with a θ in the current week** (also
//! those with a single weekly θ; the whole cohort's when it is within the cap); when
//! nobody has one, the Bayesian posterior mean of the fixed intercept (the fitted
//! current level) — `goal_basis` says which. Target = [`TARGET_WEEKS`] weeks ahead (time
//! 4). `p` = `forecast(4, goal).p_goal`, the posterior probability that the student's
//! mean θ reaches the goal by then; `sigma` = posterior mean residual SD (one
//! cohort-level value, written on every modelled student's row).
//!
//! # P of students without two weekly θ: the accuracy model
//! A student with fewer than two weekly θ (one week of practice, or too few calibrated
//! items for a θ) has no growth of θ to model, but it has answers. For these students —
//! and for everyone when the θ model cannot be fitted at all (`no_thetas`,
//! `too_few_students`, `one_week`) — `p` comes from the logistic mixed growth model of
//! the probability of a right answer, `correct ~ week + (week | student)`, binomial,
//! fitted by the Laplace approximation as lme4's `glmer` (nAGQ = 1;
//! [`models::growth::fit_glmm`]). Its rows are the student-weeks with answers: the
//! week's first answer per question (every question, calibrated or not; the same
//! responses a weekly θ uses), as successes out of trials, time as above. It is fitted
//! on its own fit sample, the first buckets of the θ model's holding at most
//! [`GLMM_MAX_FIT_STUDENTS`] (1,000) students with attempts in two weeks, and on those
//! students only: a student seen in one week carries no information on the slopes,
//! and with many of them the model would have fewer rows than random effects, which
//! `glmer` refuses (`check.nobs.vs.nRE`). Each student of the shard is then forecast
//! from its own rows given the fitted β and Σ ([`models::growth::GlmmFit::growth_forecasts`]),
//! so sharding changes nothing. Goal: the fitted intercept — the typical student's
//! current log-odds of a right answer — plus [`GOAL_OFFSET`] logits (for a Rasch item,
//! 0.5 logits more θ is exactly 0.5 logits more log-odds, so the two goals ask for the
//! same gain); `p` = P(the student's log-odds at week [`TARGET_WEEKS`] ≥ goal), normal
//! approximation with the Laplace conditional covariance of its random effects and the
//! SE of the fixed slope. `sigma` is null for these students (a binomial model has no
//! residual SD). `p_model` says which model produced each `p`: `bayes_theta` or
//! `glmm_accuracy`. A Laplace fit that does not converge publishes no accuracy P
//! (`glmm.status = not_converged`).
//!
//! **R-hat gate**: when the largest rank-normalised R̂ exceeds
//! [`models::growth::DEFAULT_MAX_RHAT`] (1.05), P is not published: status
//! `not_converged`, `p` **and** `sigma` of the students the θ model covers are written
//! as null (both come from the same unconverged chains; the accuracy model does not
//! stand in for them), and `growth_fit` says so (`p_published` = 0, `max_rhat`).
//!
//! # Writes
//! - `weekly_kpi` partition of the run date's week, the shard's own object
//!   (`lake::shard::Shard::object_name`, as kpis wrote it with the same shard count):
//!   columns `p`, `sigma` and `p_model` only, via [`Lake::set_columns`]; every other column
//!   (KPIs, `s`, `run_id`, `updated_at`) is carried over exactly. Rows of students
//!   without a model get null. Nothing is written when the shard has no object in that
//!   partition (run `kpis` first, with the same shard count; said in `notes`).
//! - `growth_fit` partition of the run date (replaced whole; `run_id`, `fitted_at` from
//!   the run context) — **by shard 0 only**; the other shards skip it and say so in
//!   `notes`. `model` = `reml` / `ml` / `bayes`; `kind`:
//!   `fixed` (terms `intercept`, `slope`: estimate, se — for bayes the posterior mean
//!   and SD with rhat and bulk ESS), `varcomp` (`sd_intercept`, `sd_slope`, `corr`,
//!   `sd_residual`; bayes with rhat/ess), `blup` (group_id = student **of the fit
//!   sample**, terms `u0`, `u1`: conditional mode and SD; for bayes the posterior mean
//!   and SD of the random effects), `diagnostic` (reml/ml: `criterion`, `loglik`,
//!   `n_obs`, `n_groups`, `evaluations`, `converged`, `singular`,
//!   `nobs_check_disabled`; bayes: `max_rhat`, `rhat_threshold`, `p_published`,
//!   `divergences`, `chains`, `warmup`, `draws`, `goal`, `cohort_current_mean`,
//!   `goal_from_intercept`, `target_week`, `n_obs`, `n_groups`, `cohort_students`,
//!   `sample_buckets`). Counts are the sample's. The accuracy model is `model` = `glmm`:
//!   `fixed` (`intercept`, `slope`, logits), `varcomp` (`sd_intercept`, `sd_slope`,
//!   `corr`), `diagnostic` (`loglik`, `deviance`, `n_obs`, `n_groups`, `evaluations`,
//!   `converged`, `singular`, `p_published`, `goal_offset`, `target_week`), `blup`
//!   (`u0`, `u1` of its fit sample, logits, with conditional SDs).
//!
//! # Memory per invocation
//! The bucket count runs in the lake session's bounded DataFusion pool
//! (`IRTLAKE_QUERY_MEMORY_MB`, default 1 GiB; plain aggregations that spill). The
//! weekly θ of the fit sample and of the shard come from [`kpis::weekly_thetas`] for
//! their bucket ranges — read once when one range holds the other (an unsharded run
//! holds every sample), else twice — and what that function holds for a range (the
//! range's attempts over the weeks) is the stage's largest item. The models hold
//! per-student 2 × 2 statistics (≈ 0.2 KB per student: ≈ 10 MB for the 50,000-student
//! sample) and the kept draws (4 × 1000 × 48 bytes); the forecasts are computed per
//! design pattern. Measured peak RSS (dev build, local lake, 100,000 students × 2,000
//! items × 60 days, 5.1 M attempts; 77,663 students with two weeks of attempts, sample
//! = buckets 0..2048, 38,671 modelled): **2.24 GB** unsharded (was 2.33 GB), **1.1 GB**
//! for one shard of 8 (≈ 9,700 modelled students) — nearly all of it the weekly θ of
//! the fit sample, whose attempts `kpis::weekly_thetas` collects before filtering them
//! by bucket. With that function filtering in its scan and streaming per student, the
//! bound is the sample's and the shard's weekly θ rows (tens of MB) plus the pool:
//! ≤ 1.5 GB per invocation whatever the platform, the 50,000-student fit sample
//! included.
//!
//! # Degenerate input
//! No calibration or no weekly θ in the sample (`no_thetas`), fewer than
//! [`models::growth::MIN_GROUPS`] students with two weekly θ (`too_few_students`), all θ
//! in one week (`one_week`): a clear summary, no θ model; the accuracy model still
//! gives every student a `p` when it can be fitted (`glmm.status` = `fitted`), else
//! nothing is written. A sampler failure (`bayes_failed`) keeps the REML/ML rows and
//! publishes no P of the θ model.

mod accuracy;
mod panel;
mod rows;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{Datelike, Days, NaiveDate};
use lake::Lake;
use lake::memo::Memo;
use lake::phases::Phases;
use lake::runs::{RunContext, StageError, StageInput, day_str, week_start};
use lake::shard::{SHARD_SEED, STUDENT_BUCKETS, Shard};
use models::growth::{
    BayesConfig, BayesFit, BayesPriors, DEFAULT_MAX_RHAT, GroupForecast, GrowthData, GrowthError,
    LmmConfig, LmmMethod, fit_bayes, fit_lmm,
};
use models::growth::{GoalBasis, growth_goal};
use serde::Serialize;

use accuracy::GlmmOutcome;
use panel::Panel;
use rows::FitRows;

pub use accuracy::{GLMM_MAX_FIT_STUDENTS, GlmmSummary, P_MODEL_ACCURACY, P_MODEL_THETA};

/// What a student's row of `weekly_kpi` gets: `p`, `sigma` and the model behind `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PValue {
    /// P (null when not published).
    pub p: Option<f64>,
    /// sigma (the θ model's residual SD; null for accuracy P).
    pub sigma: Option<f64>,
    /// [`P_MODEL_THETA`] or [`P_MODEL_ACCURACY`] when `p` is published.
    pub model: Option<&'static str>,
}

pub use models::growth::{GOAL_OFFSET, TARGET_WEEKS};
/// Environment variable overriding warm-up and kept draws per chain.
pub const DRAWS_ENV: &str = "IRTLAKE_GROWTH_DRAWS";
pub use models::sample::DEFAULT_MAX_FIT_STUDENTS;

/// Settings of the stage that are not part of the run's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowthConfig {
    /// Most students in the fit sample (see the crate docs); at least 1.
    pub max_fit_students: u64,
    /// Warm-up and kept draws per chain of the sampler (≥ 20); `None`: the default, or
    /// [`DRAWS_ENV`] when set.
    pub draws: Option<usize>,
}

impl Default for GrowthConfig {
    fn default() -> Self {
        Self {
            max_fit_students: DEFAULT_MAX_FIT_STUDENTS,
            draws: None,
        }
    }
}

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
    /// This invocation's shard (`shard K of N`).
    pub shard: String,
    /// The θ model's: `fitted`, `not_converged`, `bayes_failed`, `no_thetas`,
    /// `too_few_students`, `one_week` (the accuracy model's is `glmm.status`).
    pub status: String,
    /// Why P was not published or nothing was fitted.
    pub message: Option<String>,
    /// Weeks of θ looked at.
    pub weeks: u32,
    /// Students with attempts in two weeks of the window, over every shard (the
    /// population the fit sample is drawn from).
    pub cohort_students: u64,
    /// The fit sample: `student_bucket<k/4096 seed=0` (`k` = 4096: everyone).
    pub fit_sample: String,
    /// Cap on the fit sample's students.
    pub max_fit_students: u64,
    /// Students of the fit sample in the models (≥ 2 weekly θ).
    pub students: usize,
    /// Student-weeks of the fit sample in the models.
    pub observations: usize,
    /// Students of the fit sample with a single weekly θ (left out).
    pub students_single_week: usize,
    /// Students of this shard with ≥ 2 weekly θ (given a `p`).
    pub scored: usize,
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
    /// The accuracy GLMM (P of the students the θ model does not cover).
    pub glmm: Option<GlmmSummary>,
    /// Mean θ of the current week (students of the fit sample with a θ this week).
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
    /// `weekly_kpi` rows of this shard that received a `p` (from either model).
    pub p_written: usize,
    /// Rows written to `growth_fit` (0 on shards other than 0).
    pub growth_fit_rows: usize,
    /// Anything the operator should know.
    pub notes: Vec<String>,
    /// Whether this invocation found the run's shared work (bucket counts, the fit
    /// sample's weekly θ, the Bayesian and accuracy fits) begun by an earlier invocation
    /// of the run in the same process ([`lake::memo`]): it took every piece that one had
    /// computed, and computed only the pieces it was first to need.
    pub reused_shared_work: bool,
    /// Wall time of the stage, of the two mixed models and of the sampler (ms).
    pub elapsed_ms: u64,
    /// Mixed models (REML + ML; shard 0 only).
    pub lmm_ms: u64,
    /// NUTS sampling and forecasts.
    pub bayes_ms: u64,
    /// Wall time of the stage's phases (ms): read (bucket counts; the weekly θ panels,
    /// scored from the attempts by `kpis::weekly_thetas`), fit (mixed models, NUTS,
    /// forecasts), write.
    pub phases_ms: Phases,
}

/// Sampler settings: defaults, or [`GrowthConfig::draws`], or `IRTLAKE_GROWTH_DRAWS`.
fn bayes_config(run_date: NaiveDate, draws: Option<usize>) -> Result<BayesConfig, StageError> {
    let mut cfg = BayesConfig {
        seed: u64::try_from(run_date.num_days_from_ce()).unwrap_or(0),
        ..BayesConfig::default()
    };
    let n = match (draws, std::env::var(DRAWS_ENV)) {
        (Some(n), _) => Some(n).filter(|&n| n >= 20).ok_or_else(|| {
            StageError::InvalidInput(format!("growth draws {n}: expected at least 20"))
        })?,
        (None, Ok(v)) => v.trim().parse().ok().filter(|&n| n >= 20).ok_or_else(|| {
            StageError::InvalidInput(format!("{DRAWS_ENV}='{v}': expected a whole number >= 20"))
        })?,
        (None, Err(_)) => return Ok(cfg),
    };
    cfg.warmup = n;
    cfg.draws = n;
    Ok(cfg)
}

impl GrowthOutput {
    fn new(rc: &RunContext, weeks: u32, week: NaiveDate, cfg: &GrowthConfig) -> Self {
        Self {
            run_id: rc.run_id.clone(),
            run_date: day_str(rc.run_date),
            shard: rc.shard.label(),
            status: "fitted".into(),
            message: None,
            weeks,
            cohort_students: 0,
            fit_sample: String::new(),
            max_fit_students: cfg.max_fit_students,
            students: 0,
            observations: 0,
            students_single_week: 0,
            scored: 0,
            design_patterns: 0,
            nobs_check_disabled: false,
            reml: None,
            ml: None,
            bayes: None,
            glmm: None,
            cohort_current_mean: None,
            goal_basis: None,
            goal: None,
            target_week: TARGET_WEEKS,
            p_published: false,
            week_start: day_str(week),
            p_written: 0,
            growth_fit_rows: 0,
            notes: Vec::new(),
            reused_shared_work: false,
            elapsed_ms: 0,
            lmm_ms: 0,
            bayes_ms: 0,
            phases_ms: Phases::start(),
        }
    }
}

/// The note of a shard other than 0.
const SHARD_ZERO_WRITES_FIT: &str = "growth_fit not written by this shard: shard 0 fits the mixed models and writes it (every shard fits the same Bayesian model)";

/// Runs the stage with the default [`GrowthConfig`].
pub async fn run(lake: &Lake, input: &StageInput) -> Result<GrowthOutput, StageError> {
    run_with(lake, input, &GrowthConfig::default()).await
}

/// Runs the stage: models on the fit sample, `p` for the shard, writes (crate docs).
pub async fn run_with(
    lake: &Lake,
    input: &StageInput,
    cfg: &GrowthConfig,
) -> Result<GrowthOutput, StageError> {
    let started = Instant::now();
    let mut phases = Phases::start();
    let rc = input.context("growth")?;
    let week = week_start(rc.run_date);
    let weeks = rc.lookback_days.div_ceil(7);
    let first_week = week - Days::new(7 * u64::from(weeks.max(1) - 1));
    let bayes_cfg = bayes_config(rc.run_date, cfg.draws)?;
    let mut out = GrowthOutput::new(&rc, weeks, week, cfg);
    let (shared, computed) = shared_work(lake, &rc, weeks, cfg, &bayes_cfg).await?;
    out.reused_shared_work = !computed;
    let samples = draw_samples(lake, &shared, &mut out, first_week, rc.run_date, cfg).await?;
    let panels = load_panels(lake, &shared, &rc, weeks, week, &samples).await?;
    phases.mark("read");

    let shard_zero = rc.shard.index == 0;
    let mut rows = FitRows::default();
    let theta_p = lake::runs::cpu_bound(|| {
        std::thread::scope(|s| {
            // shard 0 always fits the accuracy model (its growth_fit rows): on a thread of
            // its own while NUTS runs, whose chains leave a CPU idle part of the time
            if shard_zero {
                s.spawn(|| accuracy::prefit(&panels.glmm, &shared.glmm));
            }
            theta_model(
                &mut out,
                &mut rows,
                &rc,
                &samples,
                &panels,
                &bayes_cfg,
                &shared.bayes,
            )
        })
    })?;
    let covered: HashSet<&str> = match &theta_p {
        Some(_) => panels.own.theta_students(),
        None => HashSet::new(),
    };
    let (glmm, accuracy_p) = lake::runs::cpu_bound(|| {
        accuracy::accuracy_p(
            &panels.glmm,
            &panels.own,
            &covered,
            samples.glmm_rule.clone(),
            &shared.glmm,
            shard_zero.then_some(&mut rows),
        )
    })?;
    out.glmm = Some(glmm);
    phases.mark("fit");

    if shard_zero && !rows.is_empty() {
        out.growth_fit_rows =
            rows::write_fit(lake, &rc.run_id, rc.run_ts, rc.run_date, rows).await?;
    }
    if theta_p.is_some() || !accuracy_p.is_empty() {
        let mut published = theta_p.unwrap_or_default();
        published.extend(accuracy_p);
        out.p_written = rows::write_p(lake, week, rc.shard, &published).await?;
        if out.p_written == 0 && published.values().any(|v| v.p.is_some()) {
            out.notes.push(format!(
                "no weekly_kpi rows of modelled students of {} for the week of {}: run kpis for that week (with the same shard count) first",
                out.shard, out.week_start
            ));
        }
    }
    phases.mark("write");
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        students = out.students,
        scored = out.scored,
        shard = %out.shard,
        status = %out.status,
        elapsed_ms = out.elapsed_ms,
        %phases,
        "growth fitted"
    );
    out.phases_ms = phases;
    Ok(out)
}

/// What every shard of a run computes the same from the same inputs (crate docs, "Fit
/// sample and shards"), done once per process ([`lake::memo`]): the students per
/// bucket, the weekly records of the θ model's fit sample (when a shard reads it apart
/// from its own), the Bayesian fit and the accuracy model's fit. Each piece is computed
/// by the first shard that needs it; a shard that takes one writes what it would have
/// written alone.
#[derive(Default)]
struct SharedWork {
    /// Students with attempts in two weeks, per bucket.
    counts: tokio::sync::OnceCell<Vec<u64>>,
    /// The θ model's fit sample's weekly records.
    sample: tokio::sync::OnceCell<Vec<kpis::WeeklyRecord>>,
    /// NUTS on the fit sample.
    bayes: OnceLock<Result<BayesFit, GrowthError>>,
    /// The accuracy model on its fit sample.
    glmm: OnceLock<GlmmOutcome>,
}

/// The shared work of the latest run this process served: one entry, so a warm
/// process holds at most one fit sample's records between invocations (a new run's
/// key pushes the old one out; an invocation still using it keeps it alive).
static SHARED_WORK: Memo<SharedWork> = Memo::new();

/// The catalog tables the shared work reads: attempts, and the latest calibration of
/// bank `all` (the memo lists them: each must be among growth's Terraform reads).
pub const SHARED_INPUTS: [&str; 3] = [
    lake::catalog::ATTEMPTS,
    lake::catalog::FIT_META,
    lake::catalog::ITEM_PARAMS,
];

/// The shared work of this run, and whether this call made it (else an earlier shard
/// did): its key names the run date, the weeks, the sample cap,
/// the sampler's settings and the state of [`SHARED_INPUTS`] (not the shard, nor the
/// run id or time, which no shared piece depends on).
async fn shared_work(
    lake: &Lake,
    rc: &RunContext,
    weeks: u32,
    cfg: &GrowthConfig,
    bayes: &BayesConfig,
) -> Result<(Arc<SharedWork>, bool), StageError> {
    let parts = [
        day_str(rc.run_date),
        format!("weeks={weeks}"),
        format!("max_fit_students={}", cfg.max_fit_students),
        format!("{bayes:?}"),
    ];
    Ok(SHARED_WORK
        .run_work(lake, "growth", &parts, &SHARED_INPUTS)
        .await?)
}

/// The fit samples of a run (crate docs, "Fit sample and shards").
struct Samples {
    /// The θ model's.
    theta: Shard,
    /// The accuracy model's (buckets `0..k'`, within the θ model's).
    glmm: Shard,
    /// The accuracy model's as a rule (`student_bucket<k'/4096 seed=0`).
    glmm_rule: String,
}

/// Counts students per bucket and draws both fit samples; records the θ model's.
async fn draw_samples(
    lake: &Lake,
    shared: &SharedWork,
    out: &mut GrowthOutput,
    first_week: NaiveDate,
    run_date: NaiveDate,
    cfg: &GrowthConfig,
) -> Result<Samples, StageError> {
    let counts = shared
        .counts
        .get_or_try_init(|| async {
            let ctx = lake.session()?;
            panel::bucket_counts(&ctx, first_week, run_date).await
        })
        .await?;
    out.cohort_students = counts.iter().sum();
    let rule = |s: Shard| {
        let k = s.bucket_range().end as usize;
        models::sample::rule(k, STUDENT_BUCKETS as usize, SHARD_SEED)
    };
    let theta = Shard::fit_sample(counts, cfg.max_fit_students);
    let glmm = Shard::fit_sample(
        counts,
        cfg.max_fit_students.min(accuracy::GLMM_MAX_FIT_STUDENTS),
    );
    out.fit_sample = rule(theta);
    Ok(Samples {
        theta,
        glmm,
        glmm_rule: rule(glmm),
    })
}

/// The θ model (REML/ML on shard 0, Bayes everywhere) and the `p`, `sigma` of the
/// shard's students it covers; `None` when it cannot be fitted (status and message in
/// `out`).
fn theta_model(
    out: &mut GrowthOutput,
    rows: &mut FitRows,
    rc: &RunContext,
    samples: &Samples,
    panels: &Panels,
    bayes_cfg: &BayesConfig,
    bayes_fit: &OnceLock<Result<BayesFit, GrowthError>>,
) -> Result<Option<HashMap<String, PValue>>, StageError> {
    let sampled = &panels.sampled;
    let mut refuse = |status: &str, message: String| {
        tracing::warn!(status, %message, "growth: θ model not fitted");
        out.status = status.into();
        out.message = Some(message);
        Ok(None)
    };
    out.observations = sampled.ids.len();
    out.students_single_week = sampled.single_week;
    out.cohort_current_mean = sampled.current_mean();
    if sampled.ids.is_empty() {
        return match (sampled.single_week, sampled.only_week) {
            (0, _) => refuse(
                "no_thetas",
                format!(
                    "no weekly θ in the {} weeks up to {} (no calibration of bank all, or too few responses per week): no θ model",
                    out.weeks, out.run_date
                ),
            ),
            (_, Some(only)) => refuse(
                "one_week",
                format!(
                    "every weekly θ is in the week of {}: a growth model of θ needs two weeks",
                    day_str(only)
                ),
            ),
            _ => refuse(
                "too_few_students",
                "no student has a θ in two different weeks: no θ model".into(),
            ),
        };
    }
    let (data, keys) =
        GrowthData::from_ids(&sampled.ids, &sampled.time, &sampled.y).map_err(StageError::model)?;
    out.students = keys.len();
    out.design_patterns = data.n_patterns();
    match data.check_identifiable() {
        Ok(()) => {}
        Err(e @ GrowthError::TooFewGroups { .. }) => {
            return refuse("too_few_students", format!("{e}: no θ model"));
        }
        Err(e @ GrowthError::SlopeNotIdentifiable(_)) => {
            return refuse("one_week", format!("{e}: no θ model"));
        }
        Err(e) => return Err(StageError::model(e)),
    }
    let shard_zero = rc.shard.index == 0;
    if shard_zero {
        let t_lmm = Instant::now();
        fit_mixed_models(out, rows, &data, &keys)?;
        out.lmm_ms = t_lmm.elapsed().as_millis() as u64;
    } else {
        out.notes.push(SHARD_ZERO_WRITES_FIT.into());
    }

    // Bayes on the sample (CPU-bound: the caller runs this in `cpu_bound`; the chains run
    // in parallel on rayon), then p of the shard's students.
    let t_bayes = Instant::now();
    let fitted = bayes_fit.get_or_init(|| fit_bayes(&data, &BayesPriors::default(), bayes_cfg));
    let published = match fitted {
        Ok(fit) => {
            let same = rc.shard.bucket_range() == samples.theta.bucket_range();
            let goal = set_goal(out, fit);
            // The sample's forecasts are the shard's when the shard is the sample; shard 0
            // of a sharded run needs only the sample's BLUPs for growth_fit (the forecasts'
            // normal CDF per student and draw is most of the work at scale).
            let sample_forecasts = if same {
                Some(fit.forecast(TARGET_WEEKS, goal))
            } else {
                shard_zero.then(|| fit.blups())
            };
            let (shard_keys, forecasts) = match (&sample_forecasts, same) {
                (Some(f), true) => (keys.clone(), f.clone()),
                _ => shard_forecasts(&panels.own, fit, goal)?,
            };
            out.scored = shard_keys.len();
            let published = publish(out, fit, bayes_cfg, &shard_keys, &forecasts);
            if let Some(f) = &sample_forecasts.filter(|_| shard_zero) {
                let from_intercept = out.goal_basis.as_deref() == Some("fitted_intercept");
                rows::bayes_rows(rows, fit, f, &keys, bayes_cfg, out, goal, from_intercept);
                rows.diag("bayes", "cohort_students", out.cohort_students as f64);
                let k = samples.theta.bucket_range().end;
                rows.diag("bayes", "sample_buckets", k as f64);
            }
            published
        }
        Err(e) => {
            out.status = "bayes_failed".into();
            out.message = Some(format!(
                "NUTS sampling failed: {e}; REML/ML written, P of the θ model not published"
            ));
            tracing::warn!(error = %e, "growth: sampler failed");
            HashMap::new()
        }
    };
    out.bayes_ms = t_bayes.elapsed().as_millis() as u64;
    Ok(Some(published))
}

/// REML and ML on the fit sample: summaries, notes and `growth_fit` rows.
fn fit_mixed_models(
    out: &mut GrowthOutput,
    rows: &mut FitRows,
    data: &GrowthData,
    keys: &[String],
) -> Result<(), StageError> {
    out.nobs_check_disabled = data.n_obs() <= 2 * data.n_groups();
    if out.nobs_check_disabled {
        out.notes.push(format!(
            "{} observations for {} students (≤ 2 per student): lme4's nobs-vs-random-effects check is turned off; variance components are weakly identified",
            data.n_obs(),
            data.n_groups()
        ));
    }
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
        match fit_lmm(data, &config) {
            Ok(fit) => {
                rows::lmm_rows(rows, name, &fit, keys, out.nobs_check_disabled);
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
    Ok(())
}

/// The goal θ (see the crate docs); records it and its basis in the summary.
fn set_goal(out: &mut GrowthOutput, fit: &BayesFit) -> f64 {
    let intercept = fit.param("beta0").map_or(f64::NAN, |p| p.mean);
    let goal = growth_goal(out.cohort_current_mean, intercept);
    out.goal = Some(goal.level);
    out.goal_basis = Some(goal.basis.as_str().into());
    if goal.basis == GoalBasis::FittedIntercept {
        out.notes
            .push("nobody has a θ in the current week: goal = fitted intercept + 0.5".into());
    }
    goal.level
}

/// Whether the buckets of `outer` include those of `inner`.
fn covers(outer: Shard, inner: Shard) -> bool {
    let (o, i) = (outer.bucket_range(), inner.bucket_range());
    o.start <= i.start && i.end <= o.end
}

/// What the models read: the θ model's fit sample, the accuracy model's, the shard.
struct Panels {
    /// The θ model's fit sample.
    sampled: Panel,
    /// The accuracy model's fit sample.
    glmm: Panel,
    /// The shard's students.
    own: Panel,
}

/// The weekly records of the fit samples and of the shard; one read when one of the
/// θ model's sample and the shard holds the other (an unsharded run holds every
/// sample). The accuracy model's sample is within the θ model's.
async fn load_panels(
    lake: &Lake,
    shared: &SharedWork,
    rc: &RunContext,
    weeks: u32,
    week: NaiveDate,
    samples: &Samples,
) -> Result<Panels, StageError> {
    let ctx = lake.session()?;
    // the latest calibration of bank `all`, read once for every panel
    let cal = lake::runs::latest_calibration(&ctx, "all", rc.run_date).await?;
    let read = |part: Shard| kpis::weekly_records(&ctx, cal.as_ref(), rc.run_date, weeks, part);
    let (shard, sample, glmm) = (rc.shard, samples.theta, samples.glmm);
    let panel = |t: &[kpis::WeeklyRecord], s: Shard| Panel::new(t, week, |id| s.contains(id));
    if covers(shard, sample) {
        let t = read(shard).await?;
        Ok(Panels {
            sampled: Panel::theta_only(&t, week, |id| sample.contains(id)),
            glmm: panel(&t, glmm),
            own: Panel::new(&t, week, |_| true),
        })
    } else if covers(sample, shard) {
        let t = shared.sample.get_or_try_init(|| read(sample)).await?;
        Ok(Panels {
            sampled: Panel::theta_only(t, week, |_| true),
            glmm: panel(t, glmm),
            own: panel(t, shard),
        })
    } else {
        let t = shared.sample.get_or_try_init(|| read(sample)).await?;
        let own = Panel::new(&read(shard).await?, week, |_| true);
        Ok(Panels {
            sampled: Panel::theta_only(t, week, |_| true),
            glmm: panel(t, glmm),
            own,
        })
    }
}

/// The shard's students with two weekly θ and their forecasts under the sample's fit
/// (built with the fit's response shift, so a student also in the sample gets exactly
/// its forecast there).
fn shard_forecasts(
    own: &Panel,
    fit: &BayesFit,
    goal: f64,
) -> Result<(Vec<String>, Vec<GroupForecast>), StageError> {
    if own.ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let (data, keys) = GrowthData::from_ids_with_shift(&own.ids, &own.time, &own.y, fit.y_shift())
        .map_err(StageError::model)?;
    Ok((keys, fit.forecast_data(&data, TARGET_WEEKS, goal)))
}

/// The R-hat gate, the summary of the Bayesian fit and the `(p, sigma)` of each of the
/// shard's students (null when not published).
fn publish(
    out: &mut GrowthOutput,
    fit: &BayesFit,
    cfg: &BayesConfig,
    keys: &[String],
    forecasts: &[GroupForecast],
) -> HashMap<String, PValue> {
    let converged = fit.check_rhat(DEFAULT_MAX_RHAT);
    out.p_published = converged.is_ok();
    if let Err(e) = &converged {
        out.status = "not_converged".into();
        out.message = Some(format!("{e}: P and sigma not published (written as null)"));
    }
    let published = keys
        .iter()
        .zip(forecasts)
        .map(|(k, f)| {
            let p = Some(f.p_goal).filter(|p| p.is_finite() && out.p_published);
            let v = PValue {
                p,
                sigma: out.p_published.then_some(fit.sigma_mean),
                model: p.map(|_| accuracy::P_MODEL_THETA),
            };
            (k.clone(), v)
        })
        .collect();
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
        chains: cfg.chains,
        warmup: cfg.warmup,
        draws: cfg.draws,
    });
    if fit.divergences > 0 {
        out.notes.push(format!(
            "{} divergent transitions after warm-up",
            fit.divergences
        ));
    }
    published
}
