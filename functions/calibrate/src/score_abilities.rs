//! Stage **score_abilities**: the `abilities` of one student shard, for every
//! calibration of the run date that left its scoring to the shards.
//!
//! In the state machine, calibrate fits each bank on its sample and writes `item_params`
//! and `fit_meta` (`scoring = shards`, recorded as `model_spec.scored_by =
//! "score_abilities"`); then a Distributed Map runs this stage once per student shard
//! ([`lake::shard::Shard`]). An invocation, for each such calibration of `run_date`:
//!
//! 1. reads the calibration from the lake: its items as written to `item_params`
//!    (estimated, not excluded; on the final scale), its linking method and constants
//!    (`fit_meta`), and from `model_spec` its window, bank, quadrature, latent
//!    distribution, `max_obs` and the attempts in its window;
//! 2. reads the first attempts in that window of the shard's students, in batches of
//!    consecutive buckets of about [`BATCH_PER_MAX_OBS`] × `max_obs` attempts each (the
//!    bucket count is that budget / (attempts in the window / 4096), at least 1: buckets
//!    hold equal shares of the students up to sampling), so every query keeps at most
//!    about 2 × `max_obs` attempts; each batch is one scan of the window's attempts;
//! 3. scores each student by EAP on the final scale
//!    (`models::calibration::final_scale_scoring`: the calibration's nodes and prior
//!    mapped by θ* = Aθ + B, with the items as stored), so θ* and SE* are what
//!    calibrate's inline scoring gives, up to rounding (≤ 1e-9 in the tests);
//! 4. writes the shard's object of the `abilities` partition `(run_date, bank)`
//!    (`part-KKKK-of-NNNN.parquet`, or `part-0.parquet` for one shard), with the
//!    calibration's `run_id`.
//!
//! A run in N shards writes the same rows as a run in one. Memory per invocation: the
//! query pool (`IRTLAKE_QUERY_MEMORY_MB`) plus one batch's first attempts (about
//! 2 × `max_obs`, ~60 bytes each while they are gathered, ~10 bytes in the response
//! matrix) and the shard's output rows (~60 bytes per student): **≤ 0.5 GB for a
//! 100k-student shard** at the default `max_obs` (500,000).

use std::collections::HashMap;

use arrow::array::{Array, RecordBatch};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::ABILITIES;
use lake::columns::Columns;
use lake::phases::Phases;
use lake::runs::{StageError, StageInput, day_str, query};
use lake::shard::{SHARD_SEED, STUDENT_BUCKETS, Shard};
use models::calibration::final_scale_scoring;
use models::irt::{ItemParams, Quadrature, ScoringConfig, score_students};
use models::linking::{LinkingConstants, LinkingMethod};
use serde::Serialize;
use serde_json::Value;

use crate::data::{self, Scan};
use crate::{Bank, Scored};

const CALIBRATIONS_SQL: &str = include_str!("../../../sql/calibrate/scored_by_shard.sql");
const ITEMS_SQL: &str = include_str!("../../../sql/calibrate/fitted_items.sql");

/// `model_spec.scored_by` of a calibration whose students this stage scores.
pub const SCORED_BY: &str = "score_abilities";

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreAbilitiesOutput {
    /// `scored`, or `no_calibration` when no calibration of the run date left its
    /// scoring to the shards.
    pub status: String,
    /// Run date.
    pub run_date: String,
    /// The shard of the students this invocation scored (`"shard K of N"`).
    pub shard: String,
    /// Banks scored (their `bank` ids).
    pub banks: Vec<String>,
    /// `abilities` rows written, over every bank.
    pub rows: usize,
    /// Responses that entered those θ.
    pub responses: i64,
    /// Wall time of the stage's phases (ms): read (calibrations and each batch's
    /// attempts), scoring, write.
    pub phases_ms: Phases,
}

/// One calibration to score: what `fit_meta` and `item_params` say of it.
struct Calibration {
    bank: Bank,
    run_id: String,
    scan_from: String,
    scan_to: String,
    max_obs: u64,
    attempts_in_window: u64,
    /// Estimated items on the final scale, by question id.
    items: Vec<(String, ItemParams)>,
    scoring: ScoringConfig,
}

/// Runs the stage for the shard of `input` (see the module docs).
pub async fn run(lake: &Lake, input: &StageInput) -> Result<ScoreAbilitiesOutput, StageError> {
    let mut phases = Phases::start();
    let rc = input.context("score_abilities")?;
    let ctx = lake.session()?;
    let run_date = day_str(rc.run_date);
    let mut out = ScoreAbilitiesOutput {
        status: "no_calibration".into(),
        run_date: run_date.clone(),
        shard: rc.shard.label(),
        banks: Vec::new(),
        rows: 0,
        responses: 0,
        phases_ms: Phases::start(),
    };
    let cals = calibrations(&ctx, &run_date).await?;
    phases.mark("read");
    for cal in cals {
        let (batches, responses) =
            score_shard(&ctx, &cal, rc.shard, rc.run_ts, &mut phases).await?;
        let bank = cal.bank.to_string();
        let part = [("run_date", run_date.as_str()), ("bank", bank.as_str())];
        lake.write_partition_shard(ABILITIES, &part, rc.shard, &batches)
            .await?;
        phases.mark("write");
        out.rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        out.responses += responses;
        out.banks.push(bank);
        out.status = "scored".into();
    }
    tracing::info!(shard = %out.shard, banks = out.banks.len(), rows = out.rows, %phases, "scored abilities");
    out.phases_ms = phases;
    Ok(out)
}

/// The calibrations of `run_date` whose `model_spec.scored_by` is [`SCORED_BY`], with
/// their items and scoring configuration on the final scale.
async fn calibrations(
    ctx: &SessionContext,
    run_date: &str,
) -> Result<Vec<Calibration>, StageError> {
    let utf8 = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
    let rows = query(ctx, CALIBRATIONS_SQL, vec![utf8(run_date)]).await?;
    let mut out = Vec::new();
    for b in &rows {
        let c = Columns::of(b);
        let (bank, run_id) = (c.strings("bank")?, c.strings("run_id")?);
        let (method, spec) = (c.strings("linking_method")?, c.strings("model_spec")?);
        let (a, bb) = (c.f64s("linking_a")?, c.f64s("linking_b")?);
        for r in 0..b.num_rows() {
            let spec: Value = serde_json::from_str(spec.value(r)).map_err(|e| {
                StageError::InvalidInput(format!(
                    "fit_meta of run {}: model_spec is not JSON: {e}",
                    run_id.value(r)
                ))
            })?;
            if spec.get("scored_by").and_then(Value::as_str) != Some(SCORED_BY) {
                continue;
            }
            let method: LinkingMethod = method
                .value(r)
                .parse()
                .map_err(|e| StageError::InvalidInput(format!("fit_meta.linking_method: {e}")))?;
            let constants = (!a.is_null(r) && !bb.is_null(r)).then(|| (a.value(r), bb.value(r)));
            let run_id = run_id.value(r).to_string();
            let items = fitted_items(ctx, run_date, &run_id).await?;
            out.push(calibration(
                bank.value(r),
                run_id,
                method,
                constants,
                &spec,
                items,
            )?);
        }
    }
    Ok(out)
}

/// A calibration from its `fit_meta` row: the window and sample sizes of its
/// `model_spec`, and its scoring configuration on the final scale (module docs, 3).
fn calibration(
    bank: &str,
    run_id: String,
    method: LinkingMethod,
    constants: Option<(f64, f64)>,
    spec: &Value,
    items: Vec<(String, ItemParams)>,
) -> Result<Calibration, StageError> {
    let missing = |what: &str| {
        StageError::InvalidInput(format!(
            "fit_meta of run {run_id}: model_spec has no {what}"
        ))
    };
    let num = |path: &[&str]| -> Result<f64, StageError> {
        path.iter()
            .try_fold(spec, |v, k| v.get(k))
            .and_then(Value::as_f64)
            .ok_or_else(|| missing(&path.join(".")))
    };
    let text = |path: &[&str]| -> Result<String, StageError> {
        path.iter()
            .try_fold(spec, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| missing(&path.join(".")))
    };
    let constants = match (method, constants) {
        (LinkingMethod::None | LinkingMethod::Fixed, _) => LinkingConstants::IDENTITY,
        (_, Some((a, b))) => LinkingConstants { a, b },
        (m, None) => {
            return Err(StageError::InvalidInput(format!(
                "fit_meta of run {run_id}: linked by {m} without linking constants"
            )));
        }
    };
    let points = num(&["quadrature", "points"])? as usize;
    let (lo, hi) = (num(&["quadrature", "min"])?, num(&["quadrature", "max"])?);
    let quadrature = Quadrature::new(points, lo, hi).map_err(StageError::model)?;
    let scoring = final_scale_scoring(
        method,
        constants,
        &quadrature,
        num(&["latent", "mean"])?,
        num(&["latent", "sd"])?,
    )
    .map_err(StageError::model)?;
    Ok(Calibration {
        bank: bank
            .parse()
            .map_err(|e| StageError::InvalidInput(format!("fit_meta.bank_id: {e}")))?,
        scan_from: text(&["window", "from"])?,
        scan_to: text(&["window", "to"])?,
        max_obs: num(&["max_obs"])?.max(1.0) as u64,
        attempts_in_window: num(&["sample", "attempts_in_window"])?.max(0.0) as u64,
        run_id,
        items,
        scoring,
    })
}

/// The estimated (not excluded) items of calibration run `run_id`, by question id.
async fn fitted_items(
    ctx: &SessionContext,
    run_date: &str,
    run_id: &str,
) -> Result<Vec<(String, ItemParams)>, StageError> {
    let utf8 = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
    let rows = query(ctx, ITEMS_SQL, vec![utf8(run_date), utf8(run_id)]).await?;
    let mut items = Vec::new();
    for b in &rows {
        let cols = Columns::of(b);
        let id = cols.strings("item_id")?;
        let (a, bb, c) = (cols.f64s("a")?, cols.f64s("b")?, cols.f64s("c")?);
        for r in 0..b.num_rows() {
            items.push((
                id.value(r).to_string(),
                ItemParams {
                    a: a.value(r),
                    b: bb.value(r),
                    c: if c.is_null(r) { 0.0 } else { c.value(r) },
                },
            ));
        }
    }
    Ok(items)
}

/// A scoring batch's attempts at most, as a multiple of the calibration's `max_obs`.
/// Each batch scans the window's attempts once: at 100k students in 8 shards a shard
/// holds about 600,000 attempts: one scan with 2, two with 1 (0.78 → 0.48 s per shard,
/// peak RSS 150 MB either way).
pub const BATCH_PER_MAX_OBS: u64 = 2;

/// Buckets per scoring batch: about `max_obs` attempts of the window's
/// `attempts_in_window` spread over 4096 buckets; at least 1.
fn buckets_per_batch(max_obs: u64, attempts_in_window: u64) -> u64 {
    let per_bucket = attempts_in_window.div_ceil(STUDENT_BUCKETS).max(1);
    (max_obs / per_bucket).clamp(1, STUDENT_BUCKETS)
}

/// Scores the students of `shard` with `cal`; their `abilities` rows, and the responses
/// that entered them. Marks each batch's `read` and `scoring` in `phases`.
async fn score_shard(
    ctx: &SessionContext,
    cal: &Calibration,
    shard: Shard,
    now: i64,
    phases: &mut Phases,
) -> Result<(Vec<RecordBatch>, i64), StageError> {
    let item_ix: HashMap<&str, u32> = cal
        .items
        .iter()
        .enumerate()
        .map(|(i, (q, _))| (q.as_str(), i as u32))
        .collect();
    let params: Vec<Option<ItemParams>> = cal.items.iter().map(|(_, p)| Some(*p)).collect();
    let scan = Scan::new(&cal.scan_from, &cal.scan_to, &cal.bank, SHARD_SEED);
    let budget = cal.max_obs.saturating_mul(BATCH_PER_MAX_OBS);
    let step = buckets_per_batch(budget, cal.attempts_in_window);
    let range = shard.bucket_range();
    let mut batches = Vec::new();
    let mut responses = 0i64;
    let mut lo = range.start;
    while lo < range.end {
        let hi = (lo + step).min(range.end);
        // the buckets hash students uniformly: the range's share of the window's attempts
        let expected = cal.attempts_in_window.saturating_mul(hi - lo) / STUDENT_BUCKETS;
        let obs = data::observations(
            ctx,
            &scan,
            lo as usize..hi as usize,
            expected,
            &item_ix,
            None,
        )
        .await?;
        phases.mark("read");
        let scores =
            score_students(&obs.matrix, &params, &cal.scoring).map_err(StageError::model)?;
        let mut scored = Scored::new();
        scored.push_all(obs.students, &scores);
        responses += scored.n.iter().sum::<i64>();
        batches.push(scored.abilities(&cal.run_id, now)?);
        phases.mark("scoring");
        lo = hi;
    }
    Ok((batches, responses))
}

/// A calibrate error met while scoring, as a stage error: lake and query failures keep
/// their `Retryable.LakeIo`/`Fatal.Lake` class, invalid input and model errors theirs.
impl From<crate::CalibrateError> for StageError {
    fn from(e: crate::CalibrateError) -> Self {
        match e {
            crate::CalibrateError::Lake(e) => StageError::Lake(e),
            crate::CalibrateError::Query(e) => StageError::from(e),
            crate::CalibrateError::Arrow(e) => StageError::from(e),
            crate::CalibrateError::InvalidInput(m) => StageError::InvalidInput(m),
            crate::CalibrateError::Irt(e) => StageError::model(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_about_max_obs_attempts() {
        // 4096 buckets of 100 attempts: 500 attempts per batch = 5 buckets.
        assert_eq!(buckets_per_batch(500, 409_600), 5);
        assert_eq!(buckets_per_batch(50, 409_600), 1, "at least one bucket");
        assert_eq!(buckets_per_batch(10_000_000, 409_600), 4096);
        assert_eq!(buckets_per_batch(500, 0), 500, "an empty window");
    }
}
