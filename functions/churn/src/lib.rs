//! Stage **churn** → `weekly_kpi.s`, `churn_fit` (model: `models::survival`).
//!
//! # Window, cohort, event and time
//! The stage reads the **churn window**: the `lookback_days` days ending on the run
//! date (`[run_date − lookback_days + 1, run_date]`, default 60 days), and nothing
//! older. The cohort is every student with at least one attempt in the window. Per
//! student: the first and last active day *in the window* (UTC days of attempts). The
//! student **churned** (event) when there was no activity for ≥ [`CHURN_GAP_DAYS`] days
//! before the run date (`run_date − last_day ≥ 14`, the days `last+1..=run_date` all
//! empty); the event time is `last_day − first_day` in days. Otherwise the student is
//! right-censored at `run_date − first_day`. A gap of 14 days or more *in the middle*
//! of a history that resumed later is not an event (the student came back).
//!
//! **Why the window** (a change from reading the whole history, which made the cost of
//! a run grow with the age of the platform: the session count per student over all
//! history alone took 8.3 GB at 400k students): the time origin is the student's first
//! day in the window, so a student active before the window is followed from the
//! window's first day (tenure is left-truncated at `lookback_days`), and the window is a
//! complete observation period — everyone active in it is in the cohort from the day
//! they are first seen in it, so the cohort is not selected on the outcome. For the
//! score this changes nothing for long-standing students: every event is seen within
//! the window, so the last event time `L` is at most `lookback_days − 15` days, and a
//! scored student whose history starts before the window has a window tenure of
//! `lookback_days − 1 > L` days, which the score caps just below `L` as it capped the
//! true tenure before (see *Model and score*). What changes is the fit: old students'
//! event times and covariates describe their last `lookback_days` days (recent
//! behaviour), and on a platform with at most `lookback_days` days of history nothing
//! changes at all. Widen the window with `lookback_days` (up to 3660) for a longer
//! tenure axis.
//!
//! # Covariates (one row per student, over the window up to the run date)
//! - `sessions_per_week`: distinct sessions (attempts without a session id count one
//!   session per day) per week of follow-up — from the first day to the last active day
//!   for churned students, to the run date otherwise — with follow-up floored at one week;
//! - `accuracy`: share of correct attempts;
//! - `hints_per_item`: mean hints per attempt (missing hint counts are 0);
//! - `theta`: the student's θ in the `abilities` of bank `all` of the latest calibration
//!   on or before the run date. Students without a θ there get the **mean θ of the fit
//!   sample's students that have one** (the cohort mean when the cohort is within the
//!   sample cap; the count over the sample is in the summary and in the `theta_imputed`
//!   diagnostic);
//! - `i_t`: the student's latest non-null `weekly_kpi.i_t` among the weeks from the
//!   window's first week to the run date's week; students without any get **0** (no
//!   measured improvement; counted in `it_missing`).
//!
//! A covariate that is constant over the fit sample (e.g. θ without any calibration:
//! every student imputed) carries no information; it is **dropped** from the model and
//! named in the summary (`dropped_covariates`). The model standardises the covariates
//! for the iteration (`CoxConfig::standardize`); every coefficient is reported per unit
//! of the raw covariate (the means and SDs used are in the `mean:<term>` /
//! `scale:<term>` diagnostics, so per-SD effects are `estimate · scale`).
//!
//! # Fit sample and shards
//! The cohort-level model (covariate selection, θ imputation mean, Cox coefficients,
//! baseline hazard, Kaplan–Meier curve) is fitted on the **fit sample**: the cohort's
//! students of student buckets `0..k` (`student_bucket(student_id, 0)`, the buckets of
//! `lake::shard`, seed 0), with `k = ⌊4096 / m⌋` for the smallest whole `m` whose
//! buckets hold at most [`ChurnConfig::max_fit_students`] cohort students (default
//! [`DEFAULT_MAX_FIT_STUDENTS`] = 50,000; [`Shard::fit_sample`] on the
//! cohort's students counted per bucket by one aggregation). The hash puts students in
//! buckets independently of everything about them, so the sample is a simple random
//! sample of `k/4096` of the cohort; when the cohort is within the cap, `k = 4096` and
//! the sample is the whole cohort. It is the same set of students in every invocation of
//! a run, whatever the shard, so every shard fits the same model, bit for bit.
//!
//! A run may be split into student shards (`shard`/`shards` of the input,
//! `lake::shard::Shard`): an invocation scores only the students of its shard (the
//! bucket predicate is in the `WHERE` of every scan, before aggregation), each with the
//! sample's model and its own covariates — a student's `s` does not depend on which
//! other students are read, so a sharded and an unsharded run write the same `s`.
//!
//! # Model and score
//! Cox proportional hazards with Efron ties ([`models::survival::cox_ph`]) and the
//! Kaplan–Meier curve of the sample ([`models::survival::kaplan_meier`], Greenwood SEs).
//! `s` = probability of churning within the next [`HORIZON_DAYS`] days for every student
//! of the shard active in the run date's week (last active day ≥ that Monday):
//! `event_probability(x, t, 14)` with tenure `t = run_date − first_day`. The Breslow-type
//! baseline hazard has no information beyond the last event time `L` (the model's docs:
//! the probability is 0 for t ≥ L), and `L` is at most the longest tenure − 14 (an event
//! is only seen 14 days after the last activity), so most active students have t ≥ L.
//! `t` is therefore **capped just below the last event time**, at `L − 0.5`
//! ([`T_CAP_BELOW_LAST_EVENT`]; with whole days the same as `L − 1`): such students
//! share the hazard of the last observed step and are ranked by their covariates, while
//! students with shorter tenures keep the baseline's tenure profile (newer students churn
//! more). The absolute level of `s` for capped tenures is a lower bound (no hazard is
//! extrapolated past `L`); the number of capped students and the cap are in the summary
//! and in the `t_cap_days` diagnostic.
//!
//! # Writes
//! - `weekly_kpi` partition of the run date's week, the shard's own object
//!   (`lake::shard::Shard::object_name`, as kpis wrote it with the same shard count):
//!   column `s` only, through [`Lake::set_float_columns`]; every other column (the KPIs,
//!   `p`, `sigma`, `run_id`, `updated_at`) is carried over exactly. Only students with a
//!   row get a value; rows of students not scored get null. Nothing is written when the
//!   shard has no object in that partition (run `kpis` first, with the same shard count;
//!   said in `notes`).
//! - `churn_fit` partition of the run date (replaced whole) — **by shard 0 only**: every
//!   shard fits the same model, the others skip the write and say so in `notes`.
//!   `run_id` and `fitted_at` from the run context, kinds:
//!   `coef` (term = covariate: estimate, se, z, p_value), `km` (term `survival`:
//!   time_days, estimate = Ŝ, se = Greenwood SE, n_risk, events), `baseline` (term
//!   `cumhaz`: time_days, estimate = cumulative hazard at the covariate means, R's
//!   `basehaz(fit)`), `diagnostic` (term = `concordance` (se = null), `loglik`,
//!   `loglik_null`, `lr_statistic` (p_value = its χ² p-value), `n`, `events`,
//!   `iterations`, `converged` (0/1), `possibly_infinite`, `fitted` (0/1),
//!   `theta_imputed`, `it_missing`, `t_cap_days`, `mean:<term>`, `scale:<term>`;
//!   `cohort_students` and `sample_buckets` (`k`) describe the sample). `n`, `events`
//!   and the curves are the sample's.
//!
//! # Shared reads
//! What every shard reads the same — the cohort's students per bucket, and the fit
//! sample's students and θ (the window's attempts aggregated per student and session:
//! most of a shard's read) — is read once per process and run ([`lake::memo`];
//! `SharedReads`): when one process serves several shards (the local runner, a warm
//! Lambda container), the later shards take the first one's (`reused_shared_work` in
//! the summary). The key names the run date, the window and the sample cap, and the
//! state of the tables read ([`SHARED_INPUTS`]). The sample's I_t and the model are
//! each shard's own: every shard rewrites its object of `weekly_kpi`, so no key over
//! that table would survive the next shard (the fit takes tens of ms).
//!
//! # Memory per invocation
//! Every query runs in the lake session's bounded DataFusion pool
//! (`IRTLAKE_QUERY_MEMORY_MB`, default 1 GiB) and spills beyond it: the session count is
//! two plain aggregations (no per-student distinct sets), the bucket count holds one
//! group per cohort student. Outside the pool the stage holds one row per student of
//! the fit sample and of the shard's students active in the run week (≈ 0.3 KB each:
//! ≈ 15 MB for the 50,000-student sample, ≈ 4 MB for a 12,500-student shard) and the
//! shard's object of the week's `weekly_kpi` partition. The students are read once
//! when the shard holds the sample (an unsharded run) or the sample holds the shard,
//! else twice (the sample, then the shard's active students). Measured peak RSS (dev
//! build, local lake, 100,000 students × 2,000 items × 60 days, 5.1 M attempts):
//! **0.29 GB** unsharded (was 1.10 GB reading the whole history with one
//! `count(DISTINCT …)` per student), **0.20 GB** for one shard of 8 (12,500 students) with
//! the 50,000-student fit sample. Bound: ≤ 1 GB per invocation for a shard of up to
//! 100,000 students, the fit sample included; what grows with the platform is the
//! spilled query state, not the invocation.
//!
//! # Degenerate input
//! Never a panic and never an error for data the model cannot use: no attempts in the
//! window → status `no_students`, nothing written; fewer than [`MIN_STUDENTS`] students
//! in the sample (`too_few_students`), fewer than [`MIN_EVENTS`] events
//! (`too_few_events`), no non-constant covariate (`no_usable_covariates`) or a singular
//! information matrix / other refusal of the Cox model (`model_refused`) → only the
//! `diagnostic` rows `n`, `events`, `fitted` = 0 are written to `churn_fit` (by shard
//! 0), `s` is left alone, and the summary says why.

mod cohort;
mod model;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use lake::Lake;
use lake::memo::Memo;
use lake::phases::Phases;
use lake::runs::{RunContext, StageError, StageInput, day_str, latest_calibration, week_start};
use lake::shard::{SHARD_SEED, STUDENT_BUCKETS, Shard};
use models::survival::{CoxFit, kaplan_meier};
use serde::Serialize;

use cohort::{Cohort, Window};
use model::Refusal;
use write::FitRows;

/// Days without activity that make a churn.
pub const CHURN_GAP_DAYS: i64 = 14;
/// Horizon of the churn score `s` (days).
pub const HORIZON_DAYS: f64 = 14.0;
/// Tenures are capped this many days below the last event time `L` of the fit (see
/// the crate docs): with whole-day times, `min(t, L − 0.5)` scores every tenure ≥ L as
/// tenure L − 1, whose 14-day window still holds the last step of the baseline hazard.
pub const T_CAP_BELOW_LAST_EVENT: f64 = 0.5;
/// Fewest students for a Cox fit.
pub const MIN_STUDENTS: usize = 10;
/// Fewest churn events for a Cox fit.
pub const MIN_EVENTS: usize = 5;
/// Covariate names, in model order (before dropping constant ones).
pub const COVARIATES: [&str; 5] = models::survival::CHURN_COVARIATES;
pub use models::sample::DEFAULT_MAX_FIT_STUDENTS;

/// Settings of the stage that are not part of the run's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnConfig {
    /// Most students in the fit sample (see the crate docs); at least 1.
    pub max_fit_students: u64,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        Self {
            max_fit_students: DEFAULT_MAX_FIT_STUDENTS,
        }
    }
}

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnOutput {
    /// Run id.
    pub run_id: String,
    /// Run date.
    pub run_date: String,
    /// This invocation's shard (`shard K of N`).
    pub shard: String,
    /// `fitted`, `no_students`, `too_few_students`, `too_few_events`,
    /// `no_usable_covariates` or `model_refused`.
    pub status: String,
    /// Why the model was not fitted (degenerate input), if it was not.
    pub message: Option<String>,
    /// First day of the churn window.
    pub window_start: String,
    /// Students of the cohort (active in the window), over every shard.
    pub cohort_students: u64,
    /// The fit sample: `student_bucket<k/4096 seed=0` (`k` = 4096: the whole cohort).
    pub fit_sample: String,
    /// Cap on the fit sample's students.
    pub max_fit_students: u64,
    /// Students in the fit sample (the Cox model's n).
    pub students: usize,
    /// Churned students (events) in the fit sample.
    pub events: usize,
    /// Covariates in the model.
    pub covariates: Vec<String>,
    /// Covariates dropped because they are constant over the fit sample.
    pub dropped_covariates: Vec<String>,
    /// The calibration run θ comes from (none: θ imputed for everyone).
    pub theta_run: Option<String>,
    /// Students of the fit sample without θ, given the sample's mean θ.
    pub theta_imputed: usize,
    /// Students of the fit sample without any I_t, given 0.
    pub it_missing: usize,
    /// Harrell's C of the fitted linear predictor.
    pub concordance: Option<f64>,
    /// Newton–Raphson converged.
    pub converged: Option<bool>,
    /// Iterations taken.
    pub iterations: Option<usize>,
    /// Monday of the week `s` is written to.
    pub week_start: String,
    /// Students of this shard active in that week (scored).
    pub scored: usize,
    /// `weekly_kpi` rows of this shard that received an `s`.
    pub s_written: usize,
    /// Scored students whose tenure was capped (see the crate docs).
    pub t_capped: usize,
    /// Rows written to `churn_fit` (0 on shards other than 0).
    pub churn_fit_rows: usize,
    /// Anything the operator should know.
    pub notes: Vec<String>,
    /// Whether this invocation found the run's shared reads (the cohort's bucket
    /// counts, the fit sample's students and θ) begun by an earlier invocation of the
    /// run in the same process ([`lake::memo`]; see [`SHARED_INPUTS`]).
    pub reused_shared_work: bool,
    /// Wall time of the stage (ms).
    pub elapsed_ms: u64,
    /// Wall time of the stage's phases (ms): read (the sample, and the shard's students
    /// when read apart), fit, score, write.
    pub phases_ms: Phases,
}

impl ChurnOutput {
    fn new(rc: &RunContext, w: &Window, cfg: &ChurnConfig) -> Self {
        Self {
            run_id: rc.run_id.clone(),
            run_date: day_str(rc.run_date),
            shard: rc.shard.label(),
            status: "fitted".into(),
            message: None,
            window_start: day_str(w.start),
            cohort_students: 0,
            fit_sample: String::new(),
            max_fit_students: cfg.max_fit_students,
            students: 0,
            events: 0,
            covariates: Vec::new(),
            dropped_covariates: Vec::new(),
            theta_run: None,
            theta_imputed: 0,
            it_missing: 0,
            concordance: None,
            converged: None,
            iterations: None,
            week_start: day_str(w.week),
            scored: 0,
            s_written: 0,
            t_capped: 0,
            churn_fit_rows: 0,
            notes: Vec::new(),
            reused_shared_work: false,
            elapsed_ms: 0,
            phases_ms: Phases::start(),
        }
    }
}

/// Whether the buckets of `outer` include those of `inner`.
fn covers(outer: Shard, inner: Shard) -> bool {
    let (o, i) = (outer.bucket_range(), inner.bucket_range());
    o.start <= i.start && i.end <= o.end
}

/// What every shard of a run reads alike, read once per process and run
/// ([`lake::memo`]): the cohort's students per bucket, and the fit sample's students
/// and θ. Not the sample's I_t: every shard rewrites its object of `weekly_kpi` (column
/// `s`), so a key over `weekly_kpi` would change after each shard; each shard reads
/// the I_t (one small query) itself.
#[derive(Default)]
struct SharedReads {
    counts: tokio::sync::OnceCell<Vec<u64>>,
    sample: tokio::sync::OnceCell<Arc<Students>>,
}

/// The shared reads of the latest run this process served (one entry).
static SHARED_READS: Memo<SharedReads> = Memo::new();

/// The catalog tables the shared reads read: attempts, the latest calibration of bank
/// `all` and its abilities (the memo lists them: each must be among churn's Terraform
/// reads).
pub const SHARED_INPUTS: [&str; 4] = [
    lake::catalog::ATTEMPTS,
    lake::catalog::FIT_META,
    lake::catalog::ITEM_PARAMS,
    lake::catalog::ABILITIES,
];

/// The students of a bucket range and their θ.
struct Students {
    students: Vec<cohort::Student>,
    thetas: HashMap<String, f64>,
}

impl Students {
    /// Reads the students of `part` whose last active day is on or after `since`, with
    /// their θ of the calibration run of `cal_run_date`.
    async fn load(
        ctx: &datafusion::prelude::SessionContext,
        w: &Window,
        part: Shard,
        since: chrono::NaiveDate,
        cal_run_date: Option<&str>,
    ) -> Result<Self, StageError> {
        let students = cohort::load_students(ctx, w, part, since).await?;
        let thetas = match cal_run_date {
            Some(d) => cohort::load_thetas(ctx, d, part).await?,
            None => HashMap::new(),
        };
        Ok(Self { students, thetas })
    }
}

/// The students of a bucket range, with what the model needs of them.
struct Part {
    read: Arc<Students>,
    its: HashMap<String, f64>,
}

impl Part {
    /// The students `read` of `part`, with their latest I_t read now.
    async fn with_its(
        ctx: &datafusion::prelude::SessionContext,
        w: &Window,
        part: Shard,
        read: Arc<Students>,
    ) -> Result<Self, StageError> {
        let its = cohort::load_its(ctx, w, part).await?;
        Ok(Self { read, its })
    }

    /// Copies of the students that `keep` keeps, in order.
    fn students_where(&self, keep: impl Fn(&cohort::Student) -> bool) -> Vec<cohort::Student> {
        self.read
            .students
            .iter()
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }

    fn cohort(&self, students: Vec<cohort::Student>, w: &Window, theta_mean: f64) -> Cohort {
        cohort::build_cohort(
            students,
            w.run_date,
            &self.read.thetas,
            &self.its,
            theta_mean,
        )
    }
}

/// Runs the stage with the default [`ChurnConfig`].
pub async fn run(lake: &Lake, input: &StageInput) -> Result<ChurnOutput, StageError> {
    run_with(lake, input, &ChurnConfig::default()).await
}

/// Runs the stage: fit on the sample, score the shard, write (see the crate docs).
pub async fn run_with(
    lake: &Lake,
    input: &StageInput,
    cfg: &ChurnConfig,
) -> Result<ChurnOutput, StageError> {
    let started = Instant::now();
    let mut phases = Phases::start();
    let rc = input.context("churn")?;
    let ctx = lake.session()?;
    let w = Window {
        start: rc.window_start(rc.run_date),
        run_date: rc.run_date,
        week: week_start(rc.run_date),
    };
    let mut out = ChurnOutput::new(&rc, &w, cfg);
    let key = [
        day_str(rc.run_date),
        day_str(w.start),
        format!("max_fit_students={}", cfg.max_fit_students),
    ];
    let (shared, computed) = SHARED_READS
        .run_work(lake, "churn", &key, &SHARED_INPUTS)
        .await?;
    out.reused_shared_work = !computed;
    let counts = shared
        .counts
        .get_or_try_init(|| cohort::bucket_counts(&ctx, &w))
        .await?;
    out.cohort_students = counts.iter().sum();
    if out.cohort_students == 0 {
        out.status = "no_students".into();
        out.message = Some(format!(
            "no attempts from {} to {}: nothing written",
            out.window_start, out.run_date
        ));
        out.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(out);
    }
    let sample = Shard::fit_sample(counts, cfg.max_fit_students);
    let k = sample.bucket_range().end as usize;
    out.fit_sample = models::sample::rule(k, STUDENT_BUCKETS as usize, SHARD_SEED);
    let cal = latest_calibration(&ctx, "all", rc.run_date).await?;
    out.theta_run = cal.as_ref().map(|c| c.run_id.clone());
    let cal_date = cal.as_ref().map(|c| c.run_date.as_str());
    // One scan when the shard holds the sample (an unsharded run) or the other way round;
    // the sample's students and θ are the run's shared reads.
    let loaded = if covers(rc.shard, sample) {
        rc.shard
    } else {
        sample
    };
    let part = if loaded == rc.shard {
        let read = Students::load(&ctx, &w, rc.shard, w.start, cal_date).await?;
        Part::with_its(&ctx, &w, rc.shard, Arc::new(read)).await?
    } else {
        let read = shared
            .sample
            .get_or_try_init(|| async {
                Students::load(&ctx, &w, sample, w.start, cal_date)
                    .await
                    .map(Arc::new)
            })
            .await?;
        Part::with_its(&ctx, &w, sample, Arc::clone(read)).await?
    };
    phases.mark("read");
    let sample_students = part.students_where(|s| sample.contains(&s.id));
    let theta_mean = cohort::theta_mean(&sample_students, &part.read.thetas);
    let fitted = part.cohort(sample_students, &w, theta_mean);
    describe_sample(&mut out, &fitted, cal.is_some(), cfg);
    let used = model::usable_covariates(&fitted);
    out.covariates = used.iter().map(|&j| COVARIATES[j].to_string()).collect();
    out.dropped_covariates = (0..COVARIATES.len())
        .filter(|j| !used.contains(j))
        .map(|j| COVARIATES[j].to_string())
        .collect();
    let fit = match lake::runs::cpu_bound(|| model::fit(&fitted, &used))? {
        Ok(f) => f,
        Err(refusal) => {
            phases.mark("fit");
            out.phases_ms = phases;
            return refuse(lake, &rc, out, refusal, started).await;
        }
    };
    phases.mark("fit");
    describe_fit(&mut out, &fit, &used);

    // The shard's students active in the run date's week, scored with the sample's fit.
    let scored = if covers(loaded, rc.shard) {
        let active = part.students_where(|s| s.last >= w.week && rc.shard.contains(&s.id));
        part.cohort(active, &w, theta_mean)
    } else {
        drop(part);
        let read = Students::load(&ctx, &w, rc.shard, w.week, cal_date).await?;
        let own = Part::with_its(&ctx, &w, rc.shard, Arc::new(read)).await?;
        let active = own.students_where(|_| true);
        own.cohort(active, &w, theta_mean)
    };
    phases.mark("read");
    let (scores, capped) = lake::runs::cpu_bound(|| model::score(&fit, &used, &scored))?;
    phases.mark("score");
    out.scored = scores.len();
    out.t_capped = capped;
    out.s_written = write::write_scores(lake, w.week, rc.shard, &scores).await?;
    if out.s_written == 0 {
        out.notes.push(format!(
            "no weekly_kpi rows of {} for the week of {} to put s in: run kpis for that week (with the same shard count) first",
            out.shard, out.week_start
        ));
    }
    if rc.shard.index == 0 {
        out.churn_fit_rows = write_churn_fit(lake, &rc, &out, &fitted, &fit, &used, k).await?;
    } else {
        out.notes.push(SHARD_ZERO_WRITES_FIT.into());
    }
    phases.mark("write");
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        students = out.students,
        events = out.events,
        scored = out.scored,
        shard = %out.shard,
        elapsed_ms = out.elapsed_ms,
        %phases,
        "churn fitted"
    );
    out.phases_ms = phases;
    Ok(out)
}

/// Fills the summary's fit diagnostics: concordance, convergence and the notes on a
/// fit that did not converge or has possibly infinite coefficients.
fn describe_fit(out: &mut ChurnOutput, fit: &CoxFit, used: &[usize]) {
    out.concordance = Some(fit.concordance.value);
    out.converged = Some(fit.converged);
    out.iterations = Some(fit.iterations);
    if !fit.converged {
        out.notes
            .push("Newton–Raphson did not converge within its iteration budget".into());
    }
    if !fit.possibly_infinite.is_empty() {
        out.notes.push(format!(
            "coefficients possibly infinite (monotone likelihood): {:?}",
            fit.possibly_infinite
                .iter()
                .map(|&j| COVARIATES[used[j]])
                .collect::<Vec<_>>()
        ));
    }
}

/// Writes `churn_fit` (shard 0 only): the fit's coefficients, the sample's Kaplan–Meier
/// curve and the diagnostics; `k` is the sample's bucket count. Returns the rows written.
async fn write_churn_fit(
    lake: &Lake,
    rc: &RunContext,
    out: &ChurnOutput,
    fitted: &Cohort,
    fit: &CoxFit,
    used: &[usize],
    k: usize,
) -> Result<usize, StageError> {
    let km = kaplan_meier(&fitted.time, &fitted.event).map_err(StageError::model)?;
    let mut rows = FitRows::default();
    write::fit_rows(&mut rows, fit, &km, used, out, model::t_cap(fit));
    rows.diag("cohort_students", out.cohort_students as f64);
    rows.diag("sample_buckets", k as f64);
    write::write_fit(lake, &rc.run_id, rc.run_ts, rc.run_date, rows).await
}

/// The note of a shard other than 0.
const SHARD_ZERO_WRITES_FIT: &str =
    "churn_fit not written by this shard: shard 0 writes it (every shard fits the same model)";

/// Fills the summary's counts of the fit sample and the notes about imputations.
fn describe_sample(out: &mut ChurnOutput, fitted: &Cohort, calibrated: bool, cfg: &ChurnConfig) {
    out.students = fitted.students.len();
    out.events = fitted.event.iter().filter(|&&e| e).count();
    out.theta_imputed = fitted.theta_imputed;
    out.it_missing = fitted.it_missing;
    if out.students as u64 > cfg.max_fit_students {
        out.notes.push(format!(
            "the fit sample ({}) holds {} students, more than the cap of {}: even the smallest bucket range exceeds it",
            out.fit_sample, out.students, cfg.max_fit_students
        ));
    }
    if !calibrated {
        out.notes.push(
            "no calibration of bank all on or before the run date: θ is imputed for every student"
                .into(),
        );
    } else if fitted.theta_imputed > 0 {
        out.notes.push(format!(
            "{} students of the fit sample without θ got the sample's mean θ (so do such students of every shard)",
            fitted.theta_imputed
        ));
    }
    if fitted.it_missing > 0 {
        out.notes.push(format!(
            "{} students of the fit sample without any I_t got 0",
            fitted.it_missing
        ));
    }
}

/// Degenerate input: diagnostics only (written by shard 0), `s` left alone.
async fn refuse(
    lake: &Lake,
    rc: &RunContext,
    mut out: ChurnOutput,
    (status, message): Refusal,
    started: Instant,
) -> Result<ChurnOutput, StageError> {
    tracing::warn!(status, %message, "churn model not fitted");
    out.status = status.into();
    out.message = Some(format!(
        "{message}; only diagnostics written, s left unchanged"
    ));
    if rc.shard.index == 0 {
        let mut rows = FitRows::default();
        rows.diag("n", out.students as f64);
        rows.diag("events", out.events as f64);
        rows.diag("fitted", 0.0);
        out.churn_fit_rows =
            write::write_fit(lake, &rc.run_id, rc.run_ts, rc.run_date, rows).await?;
    } else {
        out.notes.push(SHARD_ZERO_WRITES_FIT.into());
    }
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}
