//! Stage **calibrate**: item parameters, abilities and linking for one bank.
//!
//! For `(run_date, bank)` the stage works on the window
//! `[run_date − lookback_days + 1, run_date]` and its observations: the **first**
//! attempt of each student on each question (later attempts are practice, not fresh
//! measurement; see `sql/calibrate/observations.sql`). It fits the IRT model by
//! marginal maximum likelihood (`models::irt::calibrate`) on a **random sample of
//! students**, links it to the anchor scale, scores **every** student of the window by
//! EAP, and writes `item_params`, `abilities` and `fit_meta` for `(run_date, bank)`.
//! `fit_meta` is written last: a run is complete when its `fit_meta` row exists.
//!
//! ## The fit sample
//!
//! The likelihood's unit is the student (their response vector), so the sample is a
//! sample of students, each with all their first attempts in the window; a sample of
//! rows (e.g. the most recent) would over-weight the students active at one time and
//! bias the item parameters and the linking constants. Students are chosen by the
//! stable hash `student_bucket(student_id, sample_seed)` into 4096 buckets
//! (`lake::shard`, whose docs give its exact definition):
//!
//! 1. one aggregation pass counts the window's attempts per bucket (4096 groups) and
//!    lists its questions (`sql/calibrate/bucket_counts.sql`);
//! 2. the fit sample is the students of buckets `0..k`, `k` the largest number of
//!    buckets whose attempts add up to at most `max_obs` (the sampled fraction grows
//!    bucket by bucket until `max_obs`; see [`sample`]). Attempts bound first attempts,
//!    so the fit uses at most `max_obs` responses (one bucket more only if the first
//!    non-empty bucket alone holds more). When the window holds at most `max_obs`
//!    attempts, every student is in the sample;
//! 3. the fit query selects those students with `student_bucket_in(student_id, seed, 0, k)`
//!    in the scan's `WHERE` clause, before the window function that finds first
//!    attempts: no sort or window over the whole lake.
//!
//! The seed (`sample_seed`, default 0) keeps the same students in the sample from day to
//! day, so changes of the estimates between runs are not sampling noise; any other
//! seed draws another, equally random, sample. The rule is recorded in `fit_meta.sample`
//! (`student_bucket<k/4096 seed=S`) and in `model_spec.sample`.
//!
//! **Items.** Every question with attempts in the window is an item of the calibration
//! and has a row in `item_params`, whether or not the sample reached it: an item with
//! fewer than `min_responses` responses **in the sample** (zero included) is excluded
//! with the reason `too_few_responses (n < min)` in `item_params.excluded_reason`, with
//! `n_responses` counted in the sample. Anchors are items like the others: an anchor
//! excluded in the sample is left out of the linking (`fit_meta.n_anchors_used`).
//!
//! ## Scoring every student
//!
//! The fit sample is scored from the calibration itself; the other buckets `k..4096` are
//! then read in batches of consecutive buckets of at most
//! [`score_abilities::BATCH_PER_MAX_OBS`] × `max_obs` attempts each (one scan of the
//! window per batch), each batch's first attempts scored by EAP with the same estimated items, prior (the
//! calibration's latent distribution) and linking (`LinkedCalibration::score`), and only
//! the θ rows are kept. So every query ranks at most about 2 × `max_obs` attempts and
//! the stage's memory follows `max_obs`, not the platform, apart from the output rows (one
//! per student, ~50 bytes). A student without a response to an estimated item gets no θ.
//! `abilities.n_responses` counts the student's responses that entered their θ.
//! `fit_meta` records `n_students_fit`, `n_responses_fit` (= `n_students`,
//! `n_responses`: the fit) and `n_students_scored`, `n_responses_scored` (the rows of
//! `abilities` and the sum of their `n_responses`).
//!
//! **Scoring by shard.** With `scoring = shards` (what the state machine asks) and a fit
//! sample smaller than the window, the stage fits, writes `item_params` and `fit_meta`
//! (`model_spec.scored_by = "score_abilities"`; `n_students_scored` and
//! `n_responses_scored` null: the shards count them) and scores no one. The stage
//! [`score_abilities`], one invocation per student shard, then writes `abilities` from
//! what the lake holds of the calibration, with the same θ and SE (its docs say how).
//! The fit takes one invocation and the scoring spreads over the shards: at 400k
//! students one invocation scored 20M attempts in 65 s; a shard of 12.5k students
//! takes a thirty-second of that. When the sample is the whole window (at most
//! `max_obs` attempts), the calibration's own scores are every student's and the stage
//! writes them itself (`scored_by = "calibrate"`), whatever `scoring` asks.
//!
//! ## Linking
//!
//! Linking (`link`): by default Stocking–Lord when the bank holds ≥ 5 anchors with known
//! parameters among the calibrated items, else none (said in the summary and in
//! `fit_meta.linking_method`). `mean-mean`, `mean-sigma`, `stocking-lord`, `haebara`
//! transform the free calibration onto the anchor scale (θ* = Aθ + B, a* = a/A,
//! b* = Ab + B); `fixed` holds the anchors at their known values inside EM and reports
//! the estimated latent mean and SD as B and A.

mod data;
mod input;
mod output;
pub mod sample;
pub mod score_abilities;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use lake::Lake;
use lake::catalog::{ABILITIES, ANCHOR_DRIFT, FIT_META, ITEM_PARAMS};
use lake::columns::TableBatch;
use lake::phases::Phases;
use lake::shard::Shard;
use models::calibration::{
    ItemFitReport, LinkedCalibration, MIN_ANCHORS_AUTO, calibrate_linked_screened,
};
use models::irt::{self, FitConfig, ItemFit, Quadrature, Score};
use models::linking::LinkingMethod;
use models::linking::{DriftRules, RecentShift};

pub use input::{Bank, CalibrateInput, Scoring, ValidInput};
pub use output::{CalibrateOutput, LinkingSummary};

/// Errors of the calibrate stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// The stage input is invalid; the message names the field.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Reading or writing the lake failed.
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    /// A query failed.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// The IRT engine refused the data or configuration.
    #[error("irt: {0}")]
    Irt(#[from] irt::IrtError),
    /// Arrow failure while building output tables.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl CalibrateError {
    /// Stable error name for Step Functions `Retry`/`Catch`.
    pub fn error_name(&self) -> &'static str {
        use lake::runs::ErrorName;
        match self {
            CalibrateError::Lake(e) if e.is_retryable() => ErrorName::RetryableLakeIo,
            CalibrateError::Query(e) if lake::error::is_retryable_query(e) => {
                ErrorName::RetryableLakeIo
            }
            CalibrateError::Lake(_) | CalibrateError::Query(_) => ErrorName::FatalLake,
            CalibrateError::InvalidInput(_) => ErrorName::FatalInvalidInput,
            CalibrateError::Irt(_) => ErrorName::FatalModel,
            CalibrateError::Arrow(_) => ErrorName::FatalInternal,
        }
        .as_str()
    }
}

/// Result alias of the stage.
pub type Result<T, E = CalibrateError> = std::result::Result<T, E>;

/// Scores of one batch of students, on the final scale.
struct Scored {
    students: Vec<String>,
    theta: Vec<f64>,
    se: Vec<f64>,
    n: Vec<i64>,
}

impl Scored {
    fn new() -> Self {
        Self {
            students: Vec::new(),
            theta: Vec::new(),
            se: Vec::new(),
            n: Vec::new(),
        }
    }

    fn push_all(&mut self, students: Vec<String>, scores: &[Option<Score>]) {
        for (id, score) in students.into_iter().zip(scores) {
            if let Some(sc) = score {
                self.students.push(id);
                self.theta.push(sc.theta);
                self.se.push(sc.se);
                self.n.push(sc.n_responses as i64);
            }
        }
    }

    /// The `abilities` rows of this batch, of calibration run `run_id`, fitted at `now`
    /// (µs since the epoch).
    fn abilities(self, run_id: &str, now: i64) -> Result<RecordBatch> {
        Ok(TableBatch::new(ABILITIES, self.students.len())?
            .text("run_id", run_id)?
            .set("student_id", Arc::new(StringArray::from(self.students)))?
            .set("theta", Arc::new(Float64Array::from(self.theta)))?
            .set("se", Arc::new(Float64Array::from(self.se)))?
            .set("n_responses", Arc::new(Int64Array::from(self.n)))?
            .text("method", "eap")?
            .timestamp("fitted_at", now)?
            .finish()?)
    }
}

/// Runs the stage for one bank (see the crate docs).
pub async fn run(lake: &Lake, input: &CalibrateInput) -> Result<CalibrateOutput> {
    let started = Instant::now();
    let mut phases = Phases::start();
    let cfg = input.validate()?;
    let ctx = lake.session()?;
    let window = data::window(&ctx, &cfg).await?;
    if window.attempts() == 0 || window.items.is_empty() {
        let out = CalibrateOutput::empty(&cfg);
        tracing::info!(bank = %cfg.bank, run_date = %cfg.run_date, "no observations in the window: nothing written");
        return Ok(out);
    }
    let max_obs = u64::try_from(cfg.max_obs).unwrap_or(u64::MAX);
    let k = sample::fit_prefix(&window.counts, max_obs);
    let buckets = window.counts.len();
    let rule = sample::rule(k, buckets, cfg.sample_seed);
    let attempts_fit: u64 = window.counts[..k].iter().sum();
    let item_ix: HashMap<&str, u32> = window
        .items
        .iter()
        .enumerate()
        .map(|(i, q)| (q.as_str(), i as u32))
        .collect();

    let scan = data::Scan::of(&cfg);
    let sample = data::observations(
        &ctx,
        &scan,
        0..k,
        attempts_fit,
        &item_ix,
        cfg.recent_since_micros(),
    )
    .await?;
    let (is_anchor, anchors) = data::anchors(&ctx, &cfg, &item_ix).await?;
    phases.mark("read");
    let config = fit_config(&cfg)?;
    let priors = config.priors;
    tracing::info!(
        bank = %cfg.bank, sample = %rule, students = sample.students.len(), items = window.items.len(),
        responses = sample.matrix.n_responses(), attempts_in_window = window.attempts(), model = %cfg.model,
        "calibrating"
    );
    let cal = match lake::runs::cpu_bound(|| fit_bank(&cfg, &sample, config, &anchors))? {
        Ok(cal) => cal,
        Err(refused) => return Ok(refused),
    };
    phases.mark_parts(&cal.phases_ms(), "prepare");
    let item_fit = lake::runs::cpu_bound(|| cal.item_fit(&sample.matrix))?;
    phases.mark("item_fit");
    let fit = &cal.fit;
    let now = cfg.run_ts;
    let run_date = cfg.run_date.format("%Y-%m-%d").to_string();
    let bank = cfg.bank.to_string();
    let part = [("run_date", run_date.as_str()), ("bank", bank.as_str())];
    let linked = cal.is_linked();

    // Scores: the fit sample from the calibration, then every other student of the
    // window, batch by batch of buckets, with the same items, prior and linking — or
    // none here when `score_abilities` scores the students by shard.
    // When the sample is the whole window, its scores are every student's: written here,
    // whatever `scoring` asks, at no cost (score_abilities then leaves the bank alone).
    let scoring = cfg.scoring.unless_whole_window(k == buckets);
    let scored = match scoring {
        Scoring::Inline => {
            Some(score_window(&ctx, &cfg, &scan, &cal, sample, &window.counts, k, &item_ix).await?)
        }
        Scoring::Shards => None,
    };
    // the students outside the fit sample: their attempts are read and scored batch by batch
    phases.mark("scoring");
    // (students, responses) scored here; `None` when score_abilities scores by shard
    let scored_counts = scored.as_ref().map(|s| (s.students, s.responses));

    let items_batch = item_params_batch(
        &cfg,
        &window.items,
        &is_anchor,
        &cal.items,
        &item_fit,
        linked,
        now,
    )?;
    let whole = Shard::WHOLE;
    let mut outputs = vec![lake.encode_partition(ITEM_PARAMS, &part, whole, &[items_batch])?];
    // every calibration of a bank with anchors replaces its drift partition (empty when
    // the linking method does not screen), so a re-run never leaves a stale screen
    if !anchors.is_empty() {
        let drift = anchor_drift_batch(&cfg, &window.items, &cal, now)?;
        outputs.push(lake.encode_partition(ANCHOR_DRIFT, &part, whole, &[drift])?);
    }
    if let Some(scored) = &scored {
        outputs.push(lake.encode_partition(ABILITIES, &part, whole, &scored.batches)?);
    }
    // written together; fit_meta, which readers look up a calibration by, after them
    lake.write_partitions(outputs).await?;

    let elapsed_ms = started.elapsed().as_millis() as i64;
    let mut summary = calibrated_summary(
        &cfg,
        &window.items,
        &cal,
        anchors.len(),
        &rule,
        scored_counts,
    );
    summary.elapsed_ms = elapsed_ms;
    let sample_info = SampleInfo {
        rule: &rule,
        buckets_fit: k,
        buckets,
        attempts_in_window: window.attempts(),
        attempts_in_sample: attempts_fit,
        score_batches: scored.as_ref().map(|s| s.batches.len()),
        scored_by: match scoring {
            Scoring::Inline => "calibrate",
            Scoring::Shards => "score_abilities",
        },
    };
    let spec = model_spec(&cfg, &priors, fit, &sample_info);
    let meta = fit_meta_batch(&cfg, &summary, &cal, scored_counts, &spec)?;
    lake.write_partition(FIT_META, &part, &[meta]).await?;
    phases.mark("write");
    tracing::info!(bank = %bank, iterations = fit.iterations, converged = fit.converged, scored = ?scored_counts, elapsed_ms, %phases, "calibrated");
    summary.phases_ms = phases;
    Ok(summary)
}

/// Fits, screens and links the bank on the fit sample (with the time-split drift test
/// on its recent answers). `Ok(Err(summary))`: the drift screen left too few anchors
/// and the bank is refused — nothing is written and the run goes on.
fn fit_bank(
    cfg: &ValidInput,
    sample: &data::Observations,
    config: irt::FitConfig,
    anchors: &[(usize, irt::ItemParams)],
) -> Result<std::result::Result<LinkedCalibration, CalibrateOutput>> {
    let rules = DriftRules::default();
    match calibrate_linked_screened(
        &sample.matrix,
        sample.recent.as_ref(),
        config,
        anchors,
        cfg.link,
        Some(&rules),
    ) {
        Err(irt::IrtError::AnchorDrift(reason)) => {
            tracing::warn!(bank = %cfg.bank, %reason, "anchor drift: calibration refused, nothing written");
            Ok(Err(CalibrateOutput::refused(cfg, anchors.len(), &reason)))
        }
        other => Ok(Ok(other?)),
    }
}

/// The summary of a calibration written for `items` (the window's questions) with
/// `n_anchors` anchors, fitted on the sample `rule`; `scored` = (students, responses)
/// scored here. `elapsed_ms` and `phases_ms` are set by the caller.
fn calibrated_summary(
    cfg: &ValidInput,
    items: &[String],
    cal: &LinkedCalibration,
    n_anchors: usize,
    rule: &str,
    scored: Option<(usize, i64)>,
) -> CalibrateOutput {
    let fit = &cal.fit;
    let n_excluded = cal.items.iter().filter(|f| f.excluded.is_some()).count();
    CalibrateOutput {
        status: "calibrated".into(),
        run_id: cfg.run_id.clone(),
        run_date: cfg.run_date.format("%Y-%m-%d").to_string(),
        bank: cfg.bank.to_string(),
        model: cfg.model.to_string(),
        n_students: fit.n_students_used,
        n_students_excluded: fit.n_students_excluded,
        n_students_scored: scored.map_or(0, |s| s.0),
        n_items: items.len() - n_excluded,
        n_items_excluded: n_excluded,
        n_responses: fit.n_responses_used,
        n_responses_scored: scored.map_or(0, |s| s.1 as usize),
        sample: rule.to_string(),
        n_anchors,
        loglik: fit.loglik,
        aic: fit.aic,
        bic: fit.bic,
        iterations: fit.iterations,
        converged: fit.converged,
        termination: fit.termination.to_string(),
        linking: LinkingSummary {
            method: cal.method.to_string(),
            a: cal.constants.a,
            b: cal.constants.b,
            n_anchors_used: cal.n_anchors_used,
            flagged_anchors: cal
                .drift
                .iter()
                .filter(|(_, d)| d.flagged)
                .map(|(i, _)| items[*i].clone())
                .collect(),
        },
        elapsed_ms: 0,
        phases_ms: Phases::start(),
        message: summary_message(cal.method, n_anchors, cfg),
    }
}

/// The `abilities` rows of every student of the window and what they add up to.
struct WindowScores {
    batches: Vec<RecordBatch>,
    students: usize,
    responses: i64,
}

/// Scores every student of the window: the fit sample (buckets `0..k`) from the
/// calibration itself, then the other buckets in batches of at most
/// [`score_abilities::BATCH_PER_MAX_OBS`] × `max_obs` attempts (`sample::batches`), each
/// with [`LinkedCalibration::score`].
#[allow(clippy::too_many_arguments)]
async fn score_window(
    ctx: &datafusion::prelude::SessionContext,
    cfg: &ValidInput,
    scan: &data::Scan,
    cal: &LinkedCalibration,
    sample: data::Observations,
    counts: &[u64],
    k: usize,
    item_ix: &HashMap<&str, u32>,
) -> Result<WindowScores> {
    let now = cfg.run_ts;
    let mut unknown_items = sample.unknown_items;
    let mut scored = Scored::new();
    scored.push_all(sample.students, &cal.scores);
    drop(sample.matrix);
    let mut batches = vec![scored.abilities(&cfg.run_id, now)?];
    let max_obs = u64::try_from(cfg.max_obs).unwrap_or(u64::MAX);
    // the inline scoring's batches are score_abilities' (memory follows max_obs, never
    // the platform): each batch is one scan of the window's attempts
    let budget = max_obs.saturating_mul(score_abilities::BATCH_PER_MAX_OBS);
    for range in sample::batches(counts, k, budget) {
        let expected = counts[range.clone()].iter().sum();
        let obs = data::observations(ctx, scan, range.clone(), expected, item_ix, None).await?;
        unknown_items += obs.unknown_items;
        let scores = cal.score(&obs.matrix)?;
        let mut scored = Scored::new();
        scored.push_all(obs.students, &scores);
        tracing::debug!(buckets = ?range, students = scored.students.len(), "scored a batch");
        batches.push(scored.abilities(&cfg.run_id, now)?);
    }
    if unknown_items > 0 {
        tracing::warn!(
            unknown_items,
            "attempts at questions that appeared after the window was counted were not used"
        );
    }
    let students = batches.iter().map(|b| b.num_rows()).sum();
    let responses = batches
        .iter()
        .map(|b| {
            b.column(4)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .iter()
                .sum::<i64>()
        })
        .sum();
    Ok(WindowScores {
        batches,
        students,
        responses,
    })
}

fn summary_message(method: LinkingMethod, n_anchors: usize, cfg: &ValidInput) -> String {
    match method {
        LinkingMethod::None if cfg.link.is_none() => format!(
            "calibrated unlinked: {n_anchors} anchor(s) with known parameters in the bank (automatic linking needs {MIN_ANCHORS_AUTO})"
        ),
        LinkingMethod::None => "calibrated unlinked (link = none requested)".into(),
        m => format!("calibrated and linked to the anchor scale by {m} with {n_anchors} anchor(s)"),
    }
}

/// What the fit sample was, for [`model_spec`].
struct SampleInfo<'a> {
    rule: &'a str,
    buckets_fit: usize,
    buckets: usize,
    attempts_in_window: u64,
    attempts_in_sample: u64,
    score_batches: Option<usize>,
    scored_by: &'static str,
}

/// The fit's settings from the stage input: model, quadrature, tolerance, iterations,
/// minimum responses per item, and the prior on `c` when given.
fn fit_config(cfg: &ValidInput) -> Result<FitConfig> {
    let mut config = FitConfig::new(cfg.model);
    config.quadrature = Quadrature::new(cfg.quadpts, cfg.theta_min, cfg.theta_max)?;
    config.tol = cfg.tol;
    config.max_iter = cfg.max_iter;
    config.min_responses = cfg.min_responses;
    if let Some(prior) = cfg.prior_c {
        config.priors.c = prior;
    }
    Ok(config)
}

/// `fit_meta.model_spec`: everything needed to repeat the calibration (settings, priors,
/// window, sample rule, scoring), as JSON.
fn model_spec(
    cfg: &ValidInput,
    priors: &irt::Priors,
    fit: &irt::FitResult,
    sample: &SampleInfo<'_>,
) -> serde_json::Value {
    let run_date = cfg.run_date.format("%Y-%m-%d").to_string();
    serde_json::json!({
        "model": cfg.model.as_str(),
        "quadrature": {"points": cfg.quadpts, "min": cfg.theta_min, "max": cfg.theta_max},
        "tol": cfg.tol, "max_iter": cfg.max_iter, "min_responses": cfg.min_responses,
        "drift_recent_days": cfg.drift_recent_days,
        "priors": {
            "a": priors.a.map(|p| serde_json::json!({"lognormal": [p.meanlog, p.sdlog]})),
            "b": priors.b.map(|p| serde_json::json!({"normal": [p.mean, p.sd]})),
            "c": priors.c.map(|p| serde_json::json!({"beta": [p.alpha, p.beta]})),
        },
        "window": {"from": cfg.window_start().to_string(), "to": run_date, "lookback_days": cfg.lookback_days},
        "max_obs": cfg.max_obs,
        "observations": "first attempt per student and question in the window",
        "sample": {
            "rule": sample.rule,
            "unit": "students (all their first attempts in the window)",
            "hash": "student_bucket(student_id, seed), lake::shard",
            "seed": cfg.sample_seed,
            "buckets_fit": sample.buckets_fit,
            "buckets": sample.buckets,
            "attempts_in_window": sample.attempts_in_window,
            "attempts_in_sample": sample.attempts_in_sample,
            "score_batches": sample.score_batches,
        },
        "scoring": "eap",
        "scored_by": sample.scored_by,
        "se": fit.se_method,
        "latent": {"mean": fit.latent_mean, "sd": fit.latent_sd},
        "termination": fit.termination.as_str(),
        "n_students_excluded": fit.n_students_excluded,
    })
}

/// The calibration's one `fit_meta` row; `scored` = (students, responses) scored here
/// (`None` when `score_abilities` scores them by shard).
fn fit_meta_batch(
    cfg: &ValidInput,
    summary: &CalibrateOutput,
    cal: &LinkedCalibration,
    scored: Option<(usize, i64)>,
    spec: &serde_json::Value,
) -> Result<RecordBatch> {
    let (fit, method, constants) = (&cal.fit, cal.method, cal.constants);
    let linked = cal.is_linked();
    let f = |v: f64| Some(v).filter(|x| x.is_finite());
    Ok(TableBatch::new(FIT_META, 1)?
        .text("run_id", &cfg.run_id)?
        .text("bank_id", &summary.bank)?
        .text("model", cfg.model.as_str())?
        .i64s("n_students", vec![Some(summary.n_students as i64)])?
        .i64s("n_items", vec![Some(summary.n_items as i64)])?
        .i64s("n_responses", vec![Some(summary.n_responses as i64)])?
        .i64s("n_anchors", vec![Some(summary.n_anchors as i64)])?
        .f64s("loglik", vec![f(fit.loglik)])?
        .f64s("aic", vec![f(fit.aic)])?
        .f64s("bic", vec![f(fit.bic)])?
        .i64s("iterations", vec![Some(fit.iterations as i64)])?
        .bools("converged", vec![Some(fit.converged)])?
        .text("linking_method", method.as_str())?
        .f64s("linking_a", vec![linked.then_some(constants.a)])?
        .f64s("linking_b", vec![linked.then_some(constants.b)])?
        .i64s("n_anchors_used", vec![Some(cal.n_anchors_used as i64)])?
        .i64s("n_students_fit", vec![Some(summary.n_students as i64)])?
        .i64s("n_students_scored", vec![scored.map(|s| s.0 as i64)])?
        .i64s("n_responses_fit", vec![Some(summary.n_responses as i64)])?
        .i64s("n_responses_scored", vec![scored.map(|s| s.1)])?
        .text("sample", &summary.sample)?
        .i64s("elapsed_ms", vec![Some(summary.elapsed_ms)])?
        .text("model_spec", &spec.to_string())?
        .timestamp("fitted_at", cfg.run_ts)?
        .finish()?)
}

/// The `item_params` rows of a calibration: one per item of the window.
fn item_params_batch(
    cfg: &ValidInput,
    item_ids: &[String],
    is_anchor: &[bool],
    items: &[ItemFit],
    item_fit: &ItemFitReport,
    linked: bool,
    now: i64,
) -> Result<RecordBatch> {
    let n = item_ids.len();
    let fit_col = |f: &dyn Fn(&models::calibration::ItemFitStats) -> Option<f64>| -> ArrayRef {
        Arc::new(
            item_fit
                .items
                .iter()
                .map(|x| f(x).filter(|v| v.is_finite()))
                .collect::<Float64Array>(),
        )
    };
    let est = |f: &dyn Fn(&ItemFit) -> Option<f64>| -> ArrayRef {
        Arc::new(
            items
                .iter()
                .map(|it| if it.excluded.is_some() { None } else { f(it) })
                .collect::<Float64Array>(),
        )
    };
    let reasons: Vec<Option<String>> = items
        .iter()
        .map(|f| f.excluded.map(|e| e.to_string()))
        .collect();
    Ok(TableBatch::new(ITEM_PARAMS, n)?
        .text("run_id", &cfg.run_id)?
        .set(
            "item_id",
            Arc::new(StringArray::from_iter_values(item_ids.iter())),
        )?
        .text("model", cfg.model.as_str())?
        .set("a", est(&|f| Some(f.params.a)))?
        .set("b", est(&|f| Some(f.params.b)))?
        .set("c", est(&|f| Some(f.params.c)))?
        .set("se_a", est(&|f| f.se.map(|s| s.a)))?
        .set("se_b", est(&|f| f.se.map(|s| s.b)))?
        .set("se_c", est(&|f| f.se.map(|s| s.c)))?
        .set(
            "n_responses",
            Arc::new(Int64Array::from_iter_values(
                items.iter().map(|f| f.n_responses as i64),
            )),
        )?
        .set(
            "p_correct",
            Arc::new(Float64Array::from_iter_values(
                items.iter().map(|f| f.p_correct),
            )),
        )?
        .set(
            "is_anchor",
            Arc::new(BooleanArray::from(is_anchor.to_vec())),
        )?
        .set("linked", Arc::new(BooleanArray::from(vec![linked; n])))?
        .texts("excluded_reason", &reasons)?
        .timestamp("fitted_at", now)?
        .set("s_x2", fit_col(&|f| f.s_x2.map(|x| x.stat)))?
        .set(
            "df_s_x2",
            Arc::new(
                item_fit
                    .items
                    .iter()
                    .map(|f| f.s_x2.map(|x| x.df as i64))
                    .collect::<Int64Array>(),
            ),
        )?
        .set("p_s_x2", fit_col(&|f| f.s_x2.map(|x| x.p)))?
        .set("infit", fit_col(&|f| f.mean_squares.map(|m| m.infit)))?
        .set("outfit", fit_col(&|f| f.mean_squares.map(|m| m.outfit)))?
        .set("z_infit", fit_col(&|f| f.mean_squares.map(|m| m.z_infit)))?
        .set("z_outfit", fit_col(&|f| f.mean_squares.map(|m| m.z_outfit)))?
        .finish()?)
}

/// The `anchor_drift` rows of a calibration: one per screened anchor (none when the
/// linking method does not screen).
fn anchor_drift_batch(
    cfg: &ValidInput,
    item_ids: &[String],
    cal: &LinkedCalibration,
    now: i64,
) -> Result<RecordBatch> {
    let d = &cal.drift;
    let n = d.len();
    let col = |f: &dyn Fn(&models::linking::AnchorDrift) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(d.iter().map(|(_, x)| f(x))))
    };
    // the time-split test, moved to the anchor scale (differences and SEs times A)
    let k = cal.constants;
    let recent_f64 = |f: &dyn Fn(&RecentShift) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter(
            d.iter().map(|(_, x)| x.recent.as_ref().map(f)),
        ))
    };
    let recent_i64 = |f: &dyn Fn(&RecentShift) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            d.iter().map(|(_, x)| x.recent.as_ref().map(f)),
        ))
    };
    Ok(TableBatch::new(ANCHOR_DRIFT, n)?
        .text("run_id", &cfg.run_id)?
        .set(
            "item_id",
            Arc::new(StringArray::from_iter_values(
                d.iter().map(|(i, _)| item_ids[*i].as_str()),
            )),
        )?
        .text("linking_method", cal.method.as_str())?
        .set("a_ref", col(&|x| x.reference.a))?
        .set("b_ref", col(&|x| x.reference.b))?
        .set("c_ref", col(&|x| x.reference.c))?
        .set("a_compared", col(&|x| x.compared_with.a))?
        .set("b_compared", col(&|x| x.compared_with.b))?
        .set("a_est", col(&|x| x.estimate.a))?
        .set("b_est", col(&|x| x.estimate.b))?
        .set("diff_b", col(&|x| x.diff_b))?
        .set("log_a_ratio", col(&|x| x.log_a_ratio))?
        .set("z_b", col(&|x| x.z_b))?
        .set("z_a", col(&|x| x.z_a))?
        .set(
            "flagged",
            Arc::new(BooleanArray::from_iter(
                d.iter().map(|(_, x)| Some(x.flagged)),
            )),
        )?
        .set(
            "flagged_round",
            Arc::new(Int64Array::from_iter_values(
                d.iter().map(|(_, x)| x.round as i64),
            )),
        )?
        .timestamp("fitted_at", now)?
        .set("n_earlier", recent_i64(&|r| r.n_earlier as i64))?
        .set("n_recent", recent_i64(&|r| r.n_recent as i64))?
        .set("recent_shift_b", recent_f64(&|r| r.shift * k.a))?
        .set("recent_se_b", recent_f64(&|r| r.se * k.a))?
        .set("recent_z", recent_f64(&|r| r.z))?
        .set(
            "flagged_recent",
            Arc::new(BooleanArray::from_iter(
                d.iter().map(|(_, x)| x.recent.map(|r| r.flagged)),
            )),
        )?
        .finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query failing on I/O (a dropped connection mid-scan) is retried by Step
    /// Functions; a query the engine refuses is not.
    #[test]
    fn query_failures_are_retryable_only_when_transient() {
        let io = datafusion::error::DataFusionError::IoError(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        ));
        assert_eq!(CalibrateError::Query(io).error_name(), "Retryable.LakeIo");
        let plan = datafusion::error::DataFusionError::Plan("no such column".into());
        assert_eq!(CalibrateError::Query(plan).error_name(), "Fatal.Lake");
    }
}
