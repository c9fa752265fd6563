//! What every stage run shares: its input event (run date, id, timestamp, optional date
//! range), calendar helpers (weeks start on Monday, UTC), and lookups of the latest
//! calibration a downstream stage builds on.

use std::collections::HashMap;

use arrow::array::Array;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::columns::{Columns, opt_day};
use crate::error::{LakeError, Result};

const LATEST_CALIBRATION_SQL: &str = include_str!("../../sql/lake/latest_calibration.sql");
const FITTED_ITEMS_SQL: &str = include_str!("../../sql/calibrate/fitted_items.sql");

/// Days of history a stage looks back over when its event gives none.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 60;

/// The event of a downstream stage (`score_topics`, `features`, `kpis`, …).
/// Unknown fields are refused; the ranges of the fields are in [`crate::bounds`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    /// The day the run is for (UTC), `YYYY-MM-DD`. Default: today.
    #[serde(default, deserialize_with = "crate::bounds::opt_date")]
    pub run_date: Option<NaiveDate>,
    /// Id written on every output row. Default `<stage>-<run_date>`.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Time written on every output row (`computed_at`, `updated_at`). Default: now.
    /// The state machine passes its execution start, so a re-run writes the same bytes.
    #[serde(default)]
    pub run_ts: Option<DateTime<Utc>>,
    /// First day of a backfill range (inclusive). Default: the run date (its week for kpis).
    #[serde(default, deserialize_with = "crate::bounds::opt_date")]
    pub from: Option<NaiveDate>,
    /// Last day of a backfill range (inclusive). Default: the run date.
    #[serde(default, deserialize_with = "crate::bounds::opt_date")]
    pub to: Option<NaiveDate>,
    /// Days of attempts a stage looks back over (e.g. score_topics), 1 to 3660. Default 60.
    #[serde(default)]
    pub lookback_days: Option<u32>,
    /// This invocation's shard of the students, `0 .. shards` (with `shards`). Default 0.
    #[serde(default)]
    pub shard: Option<u32>,
    /// Number of student shards of the run, 1 to [`crate::shard::MAX_SHARDS`]
    /// (see [`crate::shard::Shard`]). Default 1: the whole platform in one invocation.
    #[serde(default)]
    pub shards: Option<u32>,
}

/// A stage run with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    /// Stage name.
    pub stage: &'static str,
    /// The day the run is for.
    pub run_date: NaiveDate,
    /// Id on every output row.
    pub run_id: String,
    /// Timestamp on every output row, µs since the epoch (UTC).
    pub run_ts: i64,
    /// First day of the range (inclusive).
    pub from: NaiveDate,
    /// Last day of the range (inclusive).
    pub to: NaiveDate,
    /// Days of history a stage may look back over.
    pub lookback_days: u32,
    /// The students this invocation reads and writes.
    pub shard: crate::shard::Shard,
}

impl StageInput {
    /// Applies the defaults for `stage` and checks the range.
    /// Every field is checked against its range first ([`StageInput::check_bounds`]).
    pub fn context(&self, stage: &'static str) -> Result<RunContext> {
        self.check_bounds()?;
        let run_date = self.run_date.unwrap_or_else(|| Utc::now().date_naive());
        let from = self.from.unwrap_or(run_date);
        let to = self.to.unwrap_or(run_date);
        if from > to {
            return Err(LakeError::InvalidInput(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        if (to - from).num_days() >= crate::bounds::MAX_RANGE_DAYS {
            return Err(LakeError::InvalidInput(format!(
                "from {from} .. to {to} spans more than {} days; run it in parts",
                crate::bounds::MAX_RANGE_DAYS
            )));
        }
        let lookback_days = self.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS);
        if lookback_days == 0 {
            return Err(LakeError::InvalidInput(
                "lookback_days must be at least 1".into(),
            ));
        }
        let shard = self.shard()?;
        let run_id = self
            .run_id
            .clone()
            .unwrap_or_else(|| format!("{stage}-{}", run_date.format("%Y-%m-%d")));
        Ok(RunContext {
            stage,
            run_date,
            run_id,
            run_ts: self.run_ts.unwrap_or_else(Utc::now).timestamp_micros(),
            from,
            to,
            lookback_days,
            shard,
        })
    }

    /// The shard of `shard`/`shards` (both default: the whole platform).
    pub fn shard(&self) -> Result<crate::shard::Shard> {
        crate::shard::Shard::new(self.shard.unwrap_or(0), self.shards.unwrap_or(1))
            .map_err(LakeError::InvalidInput)
    }
}

impl RunContext {
    /// First day of the look-back window ending on `day` (inclusive).
    pub fn window_start(&self, day: NaiveDate) -> NaiveDate {
        day.checked_sub_days(Days::new(u64::from(self.lookback_days) - 1))
            .unwrap_or(NaiveDate::MIN)
    }
}

/// A date as a query parameter, compared with a date partition column (`dt`,
/// `week_start`, `run_date`): its `YYYY-MM-DD` string ([`day_str`]).
pub fn day_param(d: NaiveDate) -> ScalarValue {
    ScalarValue::Utf8(Some(day_str(d)))
}

/// `YYYY-MM-DD`, the form of every date partition value.
pub fn day_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The Monday (UTC) starting the week of `d`.
pub fn week_start(d: NaiveDate) -> NaiveDate {
    d - Days::new(u64::from(d.weekday().num_days_from_monday()))
}

/// A calibration that downstream stages build on.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationRef {
    /// Its run date (partition).
    pub run_date: String,
    /// Its run id.
    pub run_id: String,
    /// Latent mean on the reported scale: linking B (0 when unlinked).
    pub latent_mean: f64,
    /// Latent SD on the reported scale: linking A (1 when unlinked).
    pub latent_sd: f64,
    /// Item parameters `(a, b, c)` of the estimated (not excluded) items by item id.
    pub items: HashMap<String, (f64, f64, f64)>,
}

/// Runs one SQL statement with positional parameters (`$1`, `$2`, …) and collects its
/// batches. Engine errors come back as [`LakeError::DataFusion`], so a stage's error name
/// follows [`LakeError::is_retryable`].
pub async fn query(
    ctx: &SessionContext,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<Vec<arrow::array::RecordBatch>> {
    Ok(dataframe(ctx, sql, params).await?.collect().await?)
}

/// Runs CPU-bound work (a model fit, a scoring pass) from a stage's async code without
/// stalling other tasks: on a multi-threaded runtime (the Lambda entry, the CLI) it is
/// `tokio::task::block_in_place`, so when called from a spawned task (the local
/// runner's parallel branches) its worker hands its other tasks to the rest of the pool
/// while `f` runs; from the thread that drives `block_on` (a single stage invocation),
/// on a current-thread runtime (a `#[tokio::test]`) and outside a runtime, `f` simply
/// runs. `f` may borrow from the caller.
pub fn cpu_bound<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// One SQL statement with its positional parameters (`$1`, `$2`, …) bound, as a
/// DataFrame not yet executed: the one place a query's parameters are bound, for callers
/// that stream the result ([`crate::stream::query_stream`]) or transform it first.
pub async fn dataframe(
    ctx: &SessionContext,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<datafusion::dataframe::DataFrame> {
    Ok(ctx.sql(sql).await?.with_param_values(params)?)
}

/// The latest calibration of `bank` with `run_date <= on_or_before`, with its items;
/// `None` if there is none yet (`sql/lake/latest_calibration.sql`, then its items with
/// `sql/calibrate/fitted_items.sql`). The prior for scoring new responses on its scale is
/// N(latent_mean, latent_sd²): the calibration's N(0, 1) mapped by θ* = Aθ + B.
pub async fn latest_calibration(
    ctx: &SessionContext,
    bank: &str,
    on_or_before: NaiveDate,
) -> Result<Option<CalibrationRef>> {
    let utf8 = |s: String| ScalarValue::Utf8(Some(s));
    let meta = query(
        ctx,
        LATEST_CALIBRATION_SQL,
        vec![utf8(bank.to_string()), day_param(on_or_before)],
    )
    .await?;
    let Some(m) = meta.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let meta = Columns::of(m);
    let run_date = opt_day(meta.days("run_date")?, 0)
        .map(day_str)
        .ok_or_else(|| LakeError::InvalidInput(format!("fit_meta of bank {bank}: no run_date")))?;
    let run_id = meta.strings("run_id")?.value(0).to_string();
    let (a, b) = (meta.f64s("linking_a")?, meta.f64s("linking_b")?);
    let latent_sd = if a.is_null(0) { 1.0 } else { a.value(0) };
    let latent_mean = if b.is_null(0) { 0.0 } else { b.value(0) };
    let rows = query(
        ctx,
        FITTED_ITEMS_SQL,
        vec![utf8(run_date.clone()), utf8(run_id.clone())],
    )
    .await?;
    let mut items = HashMap::new();
    for r in &rows {
        let cols = Columns::of(r);
        let id = cols.strings("item_id")?;
        let (a, b, c) = (cols.f64s("a")?, cols.f64s("b")?, cols.f64s("c")?);
        for i in 0..r.num_rows() {
            let c = if c.is_null(i) { 0.0 } else { c.value(i) };
            items.insert(id.value(i).to_string(), (a.value(i), b.value(i), c));
        }
    }
    Ok(Some(CalibrationRef {
        run_date,
        run_id,
        latent_mean,
        latent_sd,
        items,
    }))
}

/// The latest `run_date` of a `run_date`-partitioned table with `run_date <= on_or_before`.
pub async fn latest_run_date(
    ctx: &SessionContext,
    table: &str,
    on_or_before: NaiveDate,
) -> Result<Option<String>> {
    crate::catalog::table(table)?;
    let b = query(
        ctx,
        &format!("SELECT max(run_date) AS run_date FROM {table} WHERE run_date <= $1"),
        vec![day_param(on_or_before)],
    )
    .await?;
    match b.first() {
        Some(b) if b.num_rows() > 0 => {
            Ok(opt_day(Columns::of(b).days("run_date")?, 0).map(day_str))
        }
        _ => Ok(None),
    }
}

/// The stable error names a stage fails with: what the state machine's `Retry` and
/// `Catch` rules match (`infra/statemachine/pipeline.asl.json`). `Retryable.*` names a
/// failure a later attempt may not meet (storage I/O, a timeout), and the state machine
/// retries it; `Fatal.*` one that will happen again (bad input, a model that refuses
/// its data, a bug), and the run stops at it. Every stage names its errors here, so the
/// names are written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// Lake storage failed in a transient way (`Retryable.LakeIo`).
    RetryableLakeIo,
    /// A dependency did not answer in time (`Retryable.Timeout`).
    RetryableTimeout,
    /// The event or the data cannot be used (`Fatal.InvalidInput`).
    FatalInvalidInput,
    /// The lake refused the request for good: a missing bucket, refused credentials
    /// (`Fatal.Lake`).
    FatalLake,
    /// A model refused its input (`Fatal.Model`).
    FatalModel,
    /// The platform database refused the export (`Fatal.Database`).
    FatalDatabase,
    /// A bug: a result that cannot be encoded, a template that does not render
    /// (`Fatal.Internal`).
    FatalInternal,
}

impl ErrorName {
    /// Every name.
    pub const ALL: [ErrorName; 7] = [
        ErrorName::RetryableLakeIo,
        ErrorName::RetryableTimeout,
        ErrorName::FatalInvalidInput,
        ErrorName::FatalLake,
        ErrorName::FatalModel,
        ErrorName::FatalDatabase,
        ErrorName::FatalInternal,
    ];

    /// The name as Step Functions sees it (`Retryable.LakeIo`, `Fatal.Model`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorName::RetryableLakeIo => "Retryable.LakeIo",
            ErrorName::RetryableTimeout => "Retryable.Timeout",
            ErrorName::FatalInvalidInput => "Fatal.InvalidInput",
            ErrorName::FatalLake => "Fatal.Lake",
            ErrorName::FatalModel => "Fatal.Model",
            ErrorName::FatalDatabase => "Fatal.Database",
            ErrorName::FatalInternal => "Fatal.Internal",
        }
    }

    /// Whether the state machine retries it (`Retryable.*`).
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorName::RetryableLakeIo | ErrorName::RetryableTimeout
        )
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of a downstream stage, with a stable name for Step Functions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The event or the data cannot be used; the message says what to fix.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Reading or writing the lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A model refused its input.
    #[error("model: {0}")]
    Model(String),
    /// A bug in the stage itself (a template that does not render, a panic): retrying
    /// cannot help and the input is not to blame.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<datafusion::error::DataFusionError> for StageError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        StageError::Lake(LakeError::DataFusion(e))
    }
}

impl From<arrow::error::ArrowError> for StageError {
    fn from(e: arrow::error::ArrowError) -> Self {
        StageError::Lake(LakeError::Arrow(e))
    }
}

impl StageError {
    /// Wraps a model error.
    pub fn model(e: impl std::fmt::Display) -> Self {
        StageError::Model(e.to_string())
    }

    /// `Retryable.LakeIo` for transient storage failures ([`LakeError::is_retryable`]),
    /// `Fatal.*` otherwise (`Fatal.Lake` for a missing bucket, refused credentials, …).
    pub fn error_name(&self) -> &'static str {
        match self {
            StageError::Lake(e) if e.is_retryable() => ErrorName::RetryableLakeIo,
            StageError::Lake(LakeError::InvalidInput(_)) | StageError::InvalidInput(_) => {
                ErrorName::FatalInvalidInput
            }
            StageError::Lake(_) => ErrorName::FatalLake,
            StageError::Model(_) => ErrorName::FatalModel,
            StageError::Internal(_) => ErrorName::FatalInternal,
        }
        .as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of stage failure has its name: bad input and models are fatal, a bug
    /// (a template that does not render) is `Fatal.Internal`, not the model's fault.
    #[test]
    fn stage_errors_have_their_names() {
        let name = |e: StageError| e.error_name();
        assert_eq!(
            name(StageError::InvalidInput("x".into())),
            "Fatal.InvalidInput"
        );
        assert_eq!(
            name(StageError::Lake(LakeError::InvalidInput("x".into()))),
            "Fatal.InvalidInput"
        );
        assert_eq!(name(StageError::Model("x".into())), "Fatal.Model");
        assert_eq!(name(StageError::Internal("x".into())), "Fatal.Internal");
        let names: std::collections::HashSet<&str> =
            ErrorName::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), ErrorName::ALL.len(), "names are distinct");
        for e in ErrorName::ALL {
            assert_eq!(
                e.is_retryable(),
                e.as_str().starts_with("Retryable."),
                "{e}"
            );
        }
    }

    #[test]
    fn weeks_start_on_monday_and_defaults_apply() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(week_start(d("2026-01-05")), d("2026-01-05"));
        assert_eq!(week_start(d("2026-01-11")), d("2026-01-05"));
        assert_eq!(week_start(d("2026-01-12")), d("2026-01-12"));
        let ctx = StageInput {
            run_date: Some(d("2026-03-05")),
            ..Default::default()
        }
        .context("kpis")
        .unwrap();
        assert_eq!(ctx.run_id, "kpis-2026-03-05");
        assert_eq!((ctx.from, ctx.to), (d("2026-03-05"), d("2026-03-05")));
        assert_eq!(ctx.window_start(d("2026-03-05")), d("2026-01-05"));
        let bad = StageInput {
            from: Some(d("2026-03-06")),
            to: Some(d("2026-03-05")),
            ..Default::default()
        };
        assert!(bad.context("kpis").is_err());
        assert!(
            serde_json::from_str::<StageInput>(r#"{"run_date":"2026-03-05","nope":1}"#).is_err()
        );
    }
}
