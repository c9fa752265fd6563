//! Stage **calibrate**: item parameters, abilities and linking for one bank.
//!
//! For `(run_date, bank)` the stage reads the observations of the window
//! `[run_date − lookback_days + 1, run_date]` — the **first** attempt of each student on
//! each question (later attempts are practice, not fresh measurement; see
//! `sql/calibrate/observations.sql`), keeping the most recent `max_obs` — fits the IRT
//! model by marginal maximum likelihood (`models::irt::calibrate`), links it to the
//! anchor scale, scores every student by EAP, and writes `item_params`, `abilities`
//! and `fit_meta` for `(run_date, bank)`. `fit_meta` is written last: a run is
//! complete when its `fit_meta` row exists.
//!
//! Linking (`link`): by default Stocking–Lord when the bank holds ≥ 5 anchors with known
//! parameters among the calibrated items, else none (said in the summary and in
//! `fit_meta.linking_method`). `mean-mean`, `mean-sigma`, `stocking-lord`, `haebara`
//! transform the free calibration onto the anchor scale (θ* = Aθ + B, a* = a/A,
//! b* = Ab + B); `fixed` holds the anchors at their known values inside EM and reports
//! the estimated latent mean and SD as B and A.

mod input;
mod output;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::Float64Type;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, ABILITIES, FIT_META, ITEM_PARAMS};
use lake::runs::query;
use models::calibration::{MIN_ANCHORS_AUTO, calibrate_linked};
use models::irt::{self, FitConfig, ItemFit, ItemParams, Quadrature, ResponseMatrix};
use models::linking::LinkingMethod;

pub use input::{Bank, CalibrateInput, ValidInput};
pub use output::{CalibrateOutput, LinkingSummary};

const OBSERVATIONS_SQL: &str = include_str!("../../../sql/calibrate/observations.sql");
const QUESTIONS_SQL: &str = include_str!("../../../sql/calibrate/questions.sql");

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
        match self {
            CalibrateError::Lake(e) if e.is_retryable() => "Retryable.LakeIo",
            CalibrateError::Lake(_) | CalibrateError::Query(_) => "Fatal.Lake",
            CalibrateError::InvalidInput(_) => "Fatal.InvalidInput",
            CalibrateError::Irt(_) => "Fatal.Model",
            CalibrateError::Arrow(_) => "Fatal.Internal",
        }
    }
}

/// Result alias of the stage.
pub type Result<T, E = CalibrateError> = std::result::Result<T, E>;

/// The observations and question metadata of one bank and window.
struct BankData {
    students: Vec<String>,
    items: Vec<String>,
    matrix: ResponseMatrix,
    /// Known parameters of the anchors among `items` (index into `items`).
    anchors: Vec<(usize, ItemParams)>,
    is_anchor: Vec<bool>,
}

/// Runs the stage for one bank (see the crate docs).
pub async fn run(lake: &Lake, input: &CalibrateInput) -> Result<CalibrateOutput> {
    let started = Instant::now();
    let cfg = input.validate()?;
    let ctx = lake.session()?;
    let Some(data) = load(&ctx, &cfg).await? else {
        let out = CalibrateOutput::empty(&cfg);
        tracing::info!(bank = %cfg.bank, run_date = %cfg.run_date, "no observations in the window: nothing written");
        return Ok(out);
    };
    let mut config = FitConfig::new(cfg.model);
    config.quadrature = Quadrature::new(cfg.quadpts, cfg.theta_min, cfg.theta_max)?;
    config.tol = cfg.tol;
    config.max_iter = cfg.max_iter;
    config.min_responses = cfg.min_responses;
    if let Some(prior) = cfg.prior_c {
        config.priors.c = prior;
    }
    let priors = config.priors;
    tracing::info!(
        bank = %cfg.bank, students = data.students.len(), items = data.items.len(),
        responses = data.matrix.n_responses(), model = %cfg.model,
        "calibrating"
    );
    let cal = calibrate_linked(&data.matrix, config, &data.anchors, cfg.link)?;
    let (fit, method, constants) = (&cal.fit, cal.method, cal.constants);
    let now = chrono::Utc::now().timestamp_micros();
    let run_date = cfg.run_date.format("%Y-%m-%d").to_string();
    let bank = cfg.bank.to_string();
    let part = [("run_date", run_date.as_str()), ("bank", bank.as_str())];
    let linked = !matches!(method, LinkingMethod::None);

    let items_batch = item_params_batch(&cfg, &data, &cal.items, linked, now)?;
    lake.write_partition(ITEM_PARAMS, &part, &[items_batch])
        .await?;

    let mut ab_students = Vec::new();
    let mut ab_theta = Vec::new();
    let mut ab_se = Vec::new();
    let mut ab_n = Vec::new();
    for (s, score) in cal.scores.iter().enumerate() {
        if let Some(sc) = score {
            let (t, se) = (sc.theta, sc.se);
            ab_students.push(data.students[s].as_str());
            ab_theta.push(t);
            ab_se.push(se);
            ab_n.push(sc.n_responses as i64);
        }
    }
    let n_scored = ab_students.len();
    let abilities = RecordBatch::try_new(
        catalog::table(ABILITIES)?.file_schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![cfg.run_id.as_str(); n_scored])) as ArrayRef,
            Arc::new(StringArray::from(ab_students)),
            Arc::new(Float64Array::from(ab_theta)),
            Arc::new(Float64Array::from(ab_se)),
            Arc::new(Int64Array::from(ab_n)),
            Arc::new(StringArray::from(vec!["eap"; n_scored])),
            Arc::new(TimestampMicrosecondArray::from(vec![now; n_scored]).with_timezone("UTC")),
        ],
    )?;
    lake.write_partition(ABILITIES, &part, &[abilities]).await?;

    let n_excluded = cal.items.iter().filter(|f| f.excluded.is_some()).count();
    let elapsed_ms = started.elapsed().as_millis() as i64;
    let summary = CalibrateOutput {
        status: "calibrated".into(),
        run_id: cfg.run_id.clone(),
        run_date: run_date.clone(),
        bank: bank.clone(),
        model: cfg.model.to_string(),
        n_students: fit.n_students_used,
        n_students_excluded: fit.n_students_excluded,
        n_items: data.items.len() - n_excluded,
        n_items_excluded: n_excluded,
        n_responses: fit.n_responses_used,
        n_anchors: data.anchors.len(),
        loglik: fit.loglik,
        aic: fit.aic,
        bic: fit.bic,
        iterations: fit.iterations,
        converged: fit.converged,
        termination: fit.termination.to_string(),
        linking: LinkingSummary {
            method: method.to_string(),
            a: constants.a,
            b: constants.b,
            n_anchors_used: cal.n_anchors_used,
        },
        elapsed_ms,
        message: summary_message(method, data.anchors.len(), &cfg),
    };
    let spec = serde_json::json!({
        "model": cfg.model.as_str(),
        "quadrature": {"points": cfg.quadpts, "min": cfg.theta_min, "max": cfg.theta_max},
        "tol": cfg.tol, "max_iter": cfg.max_iter, "min_responses": cfg.min_responses,
        "priors": {
            "a": priors.a.map(|p| serde_json::json!({"lognormal": [p.meanlog, p.sdlog]})),
            "b": priors.b.map(|p| serde_json::json!({"normal": [p.mean, p.sd]})),
            "c": priors.c.map(|p| serde_json::json!({"beta": [p.alpha, p.beta]})),
        },
        "window": {"from": cfg.window_start().to_string(), "to": run_date, "lookback_days": cfg.lookback_days},
        "max_obs": cfg.max_obs,
        "observations": "first attempt per student and question in the window",
        "scoring": "eap",
        "se": fit.se_method,
        "latent": {"mean": fit.latent_mean, "sd": fit.latent_sd},
        "termination": fit.termination.as_str(),
        "n_students_excluded": fit.n_students_excluded,
    });
    let f = |v: f64| Some(v).filter(|x| x.is_finite());
    let meta = RecordBatch::try_new(
        catalog::table(FIT_META)?.file_schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![cfg.run_id.as_str()])) as ArrayRef,
            Arc::new(StringArray::from(vec![bank.as_str()])),
            Arc::new(StringArray::from(vec![cfg.model.as_str()])),
            Arc::new(Int64Array::from(vec![summary.n_students as i64])),
            Arc::new(Int64Array::from(vec![summary.n_items as i64])),
            Arc::new(Int64Array::from(vec![summary.n_responses as i64])),
            Arc::new(Int64Array::from(vec![summary.n_anchors as i64])),
            Arc::new(Float64Array::from(vec![f(fit.loglik)])),
            Arc::new(Float64Array::from(vec![f(fit.aic)])),
            Arc::new(Float64Array::from(vec![f(fit.bic)])),
            Arc::new(Int64Array::from(vec![fit.iterations as i64])),
            Arc::new(BooleanArray::from(vec![fit.converged])),
            Arc::new(StringArray::from(vec![method.as_str()])),
            Arc::new(Float64Array::from(vec![linked.then_some(constants.a)])),
            Arc::new(Float64Array::from(vec![linked.then_some(constants.b)])),
            Arc::new(Int64Array::from(vec![cal.n_anchors_used as i64])),
            Arc::new(Int64Array::from(vec![elapsed_ms])),
            Arc::new(StringArray::from(vec![spec.to_string()])),
            Arc::new(TimestampMicrosecondArray::from(vec![now]).with_timezone("UTC")),
        ],
    )?;
    lake.write_partition(FIT_META, &part, &[meta]).await?;
    tracing::info!(bank = %bank, iterations = fit.iterations, converged = fit.converged, elapsed_ms, "calibrated");
    Ok(summary)
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

fn item_params_batch(
    cfg: &ValidInput,
    data: &BankData,
    items: &[ItemFit],
    linked: bool,
    now: i64,
) -> Result<RecordBatch> {
    let n = data.items.len();
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
    Ok(RecordBatch::try_new(
        catalog::table(ITEM_PARAMS)?.file_schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![cfg.run_id.as_str(); n])) as ArrayRef,
            Arc::new(StringArray::from_iter_values(data.items.iter())),
            Arc::new(StringArray::from(vec![cfg.model.as_str(); n])),
            est(&|f| Some(f.params.a)),
            est(&|f| Some(f.params.b)),
            est(&|f| Some(f.params.c)),
            est(&|f| f.se.map(|s| s.a)),
            est(&|f| f.se.map(|s| s.b)),
            est(&|f| f.se.map(|s| s.c)),
            Arc::new(Int64Array::from_iter_values(
                items.iter().map(|f| f.n_responses as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                items.iter().map(|f| f.p_correct),
            )),
            Arc::new(BooleanArray::from(data.is_anchor.clone())),
            Arc::new(BooleanArray::from(vec![linked; n])),
            Arc::new(StringArray::from(reasons)),
            Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
        ],
    )?)
}

/// Reads the observations and the bank's questions; `None` when the window is empty.
async fn load(ctx: &SessionContext, cfg: &ValidInput) -> Result<Option<BankData>> {
    let (kind, id) = cfg.bank.sql_params();
    let utf8 = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
    let obs = query(
        ctx,
        OBSERVATIONS_SQL,
        vec![
            utf8(&cfg.window_start().format("%Y-%m-%d").to_string()),
            utf8(&cfg.run_date.format("%Y-%m-%d").to_string()),
            utf8(kind),
            utf8(id),
        ],
    )
    .await?;
    let mut student_ix: HashMap<String, u32> = HashMap::new();
    let mut item_ix: HashMap<String, u32> = HashMap::new();
    let mut triplets: Vec<(u32, u32, bool)> = Vec::new();
    'batches: for batch in &obs {
        let st = batch.column(0).as_string::<i32>();
        let q = batch.column(1).as_string::<i32>();
        let ok = batch.column(2).as_boolean();
        for r in 0..batch.num_rows() {
            if triplets.len() >= cfg.max_obs {
                break 'batches;
            }
            let n = student_ix.len() as u32;
            let s = *student_ix.entry(st.value(r).to_string()).or_insert(n);
            let n = item_ix.len() as u32;
            let i = *item_ix.entry(q.value(r).to_string()).or_insert(n);
            triplets.push((s, i, ok.value(r)));
        }
    }
    if triplets.is_empty() {
        return Ok(None);
    }
    // Sorted ids give a deterministic layout whatever order the query returned.
    let mut students: Vec<String> = student_ix.keys().cloned().collect();
    students.sort_unstable();
    let mut items: Vec<String> = item_ix.keys().cloned().collect();
    items.sort_unstable();
    let s_new: HashMap<&str, u32> = students
        .iter()
        .enumerate()
        .map(|(k, s)| (s.as_str(), k as u32))
        .collect();
    let i_new: HashMap<&str, u32> = items
        .iter()
        .enumerate()
        .map(|(k, s)| (s.as_str(), k as u32))
        .collect();
    let s_map: Vec<u32> = {
        let mut v = vec![0; students.len()];
        for (id, old) in &student_ix {
            v[*old as usize] = s_new[id.as_str()];
        }
        v
    };
    let i_map: Vec<u32> = {
        let mut v = vec![0; items.len()];
        for (id, old) in &item_ix {
            v[*old as usize] = i_new[id.as_str()];
        }
        v
    };
    for t in &mut triplets {
        *t = (s_map[t.0 as usize], i_map[t.1 as usize], t.2);
    }
    let matrix = ResponseMatrix::from_triplets(students.len(), items.len(), &triplets)?;

    let qs = query(ctx, QUESTIONS_SQL, vec![utf8(kind), utf8(id)]).await?;
    let mut anchors = Vec::new();
    let mut is_anchor = vec![false; items.len()];
    for batch in &qs {
        let q = batch.column(0).as_string::<i32>();
        let anc = batch.column(1).as_boolean();
        let (a, b, c) = (
            batch.column(2).as_primitive::<Float64Type>(),
            batch.column(3).as_primitive::<Float64Type>(),
            batch.column(4).as_primitive::<Float64Type>(),
        );
        for r in 0..batch.num_rows() {
            let Some(&i) = i_new.get(q.value(r)) else {
                continue;
            };
            if !anc.value(r) {
                continue;
            }
            is_anchor[i as usize] = true;
            if a.is_null(r) || b.is_null(r) {
                continue;
            }
            let p = ItemParams {
                a: a.value(r),
                b: b.value(r),
                c: if c.is_null(r) { 0.0 } else { c.value(r) },
            };
            if p.validate(i as usize).is_ok() {
                anchors.push((i as usize, p));
            } else {
                tracing::warn!(
                    question = q.value(r),
                    "anchor with invalid known parameters ignored"
                );
            }
        }
    }
    anchors.sort_by_key(|(i, _)| *i);
    Ok(Some(BankData {
        students,
        items,
        matrix,
        anchors,
        is_anchor,
    }))
}
