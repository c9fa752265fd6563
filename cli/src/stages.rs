//! The registry of pipeline stages: one place maps a stage name and its JSON event
//! to the stage library's `run`, and its result to a JSON summary or a stable error.
//!
//! The Lambda entry (`lambda.rs`) and the local state-machine runner (`run/`) both
//! call [`invoke`], so a stage behaves the same in AWS and on a laptop.

use std::time::Duration;

use lake::Lake;
use lake::runs::ErrorName;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One stage of the registry: its name, the type of its JSON event, and the summary
/// fields that count the rows it wrote.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec {
    /// Stage name (Lambda function suffix, ASL placeholder, `irtlake stage` argument).
    pub name: &'static str,
    /// The event type [`invoke`] decodes for it (last path segment).
    pub event: &'static str,
    /// Summary fields whose sum is the rows the stage wrote (the runner's table).
    pub rows: &'static [&'static str],
}

/// Every stage, in pipeline order (the same list as `local.stages` in Terraform and the
/// `${<stage>_arn}` placeholders of the state machine; a test keeps the three equal).
/// `plan` writes nothing: it chooses the student shards of the stages after it.
pub const REGISTRY: [StageSpec; 12] = [
    spec("export_attempts", "ExportInput", &["attempts", "questions"]),
    spec("calibrate", "CalibrateInput", &["n_items", "n_students"]),
    spec("plan", "PlanInput", &[]),
    spec("score_abilities", "StageInput", &["rows"]),
    spec("score_topics", "StageInput", &["rows"]),
    spec("features", "StageInput", &["rows"]),
    spec("kpis", "StageInput", &["rows"]),
    spec("churn", "StageInput", &["s_written", "churn_fit_rows"]),
    spec("growth", "StageInput", &["p_written", "growth_fit_rows"]),
    spec("forecast", "StageInput", &["forecast_rows", "anomaly_rows"]),
    spec("segments", "StageInput", &["students"]),
    spec(
        "reports",
        "ReportsInput",
        &["student_reports", "cohort_reports"],
    ),
];

const fn spec(name: &'static str, event: &'static str, rows: &'static [&'static str]) -> StageSpec {
    StageSpec { name, event, rows }
}

/// The stage names of [`REGISTRY`], in pipeline order.
pub const STAGES: [&str; REGISTRY.len()] = {
    let mut names = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        names[i] = REGISTRY[i].name;
        i += 1;
    }
    names
};

/// The registry entry of `stage`.
pub fn stage_spec(stage: &str) -> Option<&'static StageSpec> {
    REGISTRY.iter().find(|s| s.name == stage)
}

/// Configuration read once from the environment (per process / Lambda cold start).
#[derive(Debug, Clone, Default)]
pub struct StageEnv {
    /// PostgreSQL URL of the platform database (`DATABASE_URL`; export_attempts only).
    pub database_url: Option<String>,
    /// Secrets Manager secret holding that URL (`DATABASE_SECRET_ARN`), read at every
    /// export, so a rotated password is picked up and a failed read is retried.
    pub database_secret_arn: Option<String>,
    /// Lifetime of presigned report URLs (reports only).
    pub report_url_expiry: Option<Duration>,
}

impl StageEnv {
    /// Reads the configuration from the process environment: `DATABASE_URL`,
    /// `DATABASE_SECRET_ARN` and `REPORT_URL_EXPIRY_SECS` (seconds).
    pub fn from_env() -> anyhow::Result<Self> {
        use anyhow::Context;
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut env = StageEnv {
            database_url: var("DATABASE_URL"),
            database_secret_arn: var("DATABASE_SECRET_ARN"),
            ..StageEnv::default()
        };
        if let Some(secs) = var("REPORT_URL_EXPIRY_SECS") {
            let secs: u64 = secs.parse().with_context(|| {
                format!("REPORT_URL_EXPIRY_SECS={secs} is not a number of seconds")
            })?;
            anyhow::ensure!(
                (1..=lake::MAX_URL_EXPIRY.as_secs()).contains(&secs),
                "REPORT_URL_EXPIRY_SECS={secs}: presigned URLs live 1 s to {} s (7 days)",
                lake::MAX_URL_EXPIRY.as_secs()
            );
            env.report_url_expiry = Some(Duration::from_secs(secs));
        }
        Ok(env)
    }

    /// The database URL: `DATABASE_URL`, else the secret's current value. A secret that
    /// cannot be reached is `Retryable.Timeout`; one that is refused or empty,
    /// `Fatal.InvalidInput`.
    pub async fn resolve_database_url(&self) -> Result<String, StageFailure> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        let Some(arn) = &self.database_secret_arn else {
            return Err(StageFailure::invalid_input(
                "export_attempts needs DATABASE_URL (or DATABASE_SECRET_ARN in AWS)",
            ));
        };
        crate::secrets::secret_string(arn).await.map_err(|e| {
            StageFailure::new(
                e.error_name(),
                format!("reading the secret {arn} (DATABASE_SECRET_ARN): {e}"),
            )
        })
    }
}

/// Rows a stage wrote, from its summary (the runner's table): the sum of the summary
/// fields [`StageSpec::rows`] names.
pub fn rows_written(stage: &str, summary: &Value) -> u64 {
    stage_spec(stage)
        .map_or(&[][..], |s| s.rows)
        .iter()
        .filter_map(|f| summary.get(*f).and_then(Value::as_u64))
        .sum()
}

/// A failed stage: the stable error name Step Functions matches (`Retryable.*`,
/// `Fatal.*`) and a message naming what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct StageFailure {
    /// Stable error name.
    pub error: String,
    /// Human-readable cause.
    pub cause: String,
}

impl StageFailure {
    /// A failure with the given name and cause.
    pub fn new(error: &str, cause: impl std::fmt::Display) -> Self {
        StageFailure {
            error: error.to_string(),
            cause: cause.to_string(),
        }
    }

    fn invalid_input(cause: impl std::fmt::Display) -> Self {
        Self::new(ErrorName::FatalInvalidInput.as_str(), cause)
    }
}

/// Decodes a stage event; the error names the field (`run_date: "2026-02-30" is not a
/// date (YYYY-MM-DD)`).
fn event<T: DeserializeOwned>(stage: &str, payload: Value) -> Result<T, StageFailure> {
    debug_assert!(
        stage_spec(stage).is_some_and(|s| std::any::type_name::<T>().ends_with(s.event)),
        "stage {stage} decodes {} but the registry says otherwise",
        std::any::type_name::<T>()
    );
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            StageFailure::invalid_input(format!("event of stage {stage}: {inner}"))
        } else {
            StageFailure::invalid_input(format!("event of stage {stage}: {path}: {inner}"))
        }
    })
}

fn summary<T: serde::Serialize>(out: T) -> Result<Value, StageFailure> {
    serde_json::to_value(out).map_err(|e| StageFailure::new(ErrorName::FatalInternal.as_str(), e))
}

macro_rules! downstream {
    ($krate:ident, $lake:expr, $stage:expr, $payload:expr) => {{
        let input: lake::runs::StageInput = event($stage, $payload)?;
        match $krate::run($lake, &input).await {
            Ok(out) => summary(out),
            Err(e) => Err(StageFailure::new(e.error_name(), format!("{e:#}"))),
        }
    }};
}

/// Runs stage `stage` on `lake` with the JSON event `payload` and returns its summary.
pub async fn invoke(
    lake: &Lake,
    env: &StageEnv,
    stage: &str,
    payload: Value,
) -> Result<Value, StageFailure> {
    tracing::info!(stage, %payload, lake = %lake.uri(), "stage starts");
    let started = std::time::Instant::now();
    // A panic inside a stage or a library it calls (e.g. a decoder meeting a corrupt
    // file) becomes a `Fatal.Internal` failure of the stage instead of ending the process.
    let run = std::panic::AssertUnwindSafe(dispatch(lake, env, stage, payload));
    let result = match futures::FutureExt::catch_unwind(run).await {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(StageFailure::new(
                ErrorName::FatalInternal.as_str(),
                format!("stage {stage} panicked: {msg}"),
            ))
        }
    };
    match &result {
        Ok(s) => {
            tracing::info!(stage, elapsed_ms = started.elapsed().as_millis() as u64, summary = %s, "stage done")
        }
        Err(f) => tracing::warn!(stage, error = %f.error, cause = %f.cause, "stage failed"),
    }
    result
}

async fn dispatch(
    lake: &Lake,
    env: &StageEnv,
    stage: &str,
    payload: Value,
) -> Result<Value, StageFailure> {
    match stage {
        "export_attempts" => {
            let input: export_attempts::ExportInput = event(stage, payload)?;
            // A bad event is refused before the database secret is read.
            input
                .window()
                .map_err(|e| StageFailure::new(e.error_name(), format!("{e:#}")))?;
            let url = env.resolve_database_url().await?;
            match export_attempts::run(lake, &url, &input).await {
                Ok(out) => summary(out),
                Err(e) => Err(StageFailure::new(e.error_name(), format!("{e:#}"))),
            }
        }
        "calibrate" => {
            let input: calibrate::CalibrateInput = event(stage, payload)?;
            match calibrate::run(lake, &input).await {
                Ok(out) => summary(out),
                Err(e) => Err(StageFailure::new(e.error_name(), format!("{e:#}"))),
            }
        }
        "plan" => {
            let input: lake::plan::PlanInput = event(stage, payload)?;
            match lake::plan::plan_shards(lake, &input).await {
                Ok(out) => summary(out),
                Err(e) => Err(StageFailure::new(e.error_name(), format!("{e:#}"))),
            }
        }
        "score_abilities" => {
            let input: lake::runs::StageInput = event(stage, payload)?;
            match calibrate::score_abilities::run(lake, &input).await {
                Ok(out) => summary(out),
                Err(e) => Err(StageFailure::new(e.error_name(), format!("{e:#}"))),
            }
        }
        "score_topics" => downstream!(score_topics, lake, stage, payload),
        "features" => downstream!(features, lake, stage, payload),
        "kpis" => downstream!(kpis, lake, stage, payload),
        "churn" => downstream!(churn, lake, stage, payload),
        "growth" => downstream!(growth, lake, stage, payload),
        "forecast" => downstream!(forecast, lake, stage, payload),
        "segments" => downstream!(segments, lake, stage, payload),
        "reports" => {
            let input: reports::ReportsInput = event(stage, payload)?;
            let expiry = env.report_url_expiry.unwrap_or(reports::DEFAULT_URL_EXPIRY);
            match reports::run(lake, &input, expiry).await {
                Ok(out) => summary(out),
                Err(e) => Err(StageFailure::new(e.error_name(), format!("{e:#}"))),
            }
        }
        other => Err(StageFailure::invalid_input(format!(
            "unknown stage {other:?}; stages: {}",
            STAGES.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    async fn fails(stage: &str, payload: Value) -> StageFailure {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&format!("file://{}", dir.path().display())).unwrap();
        invoke(&lake, &StageEnv::default(), stage, payload)
            .await
            .unwrap_err()
    }

    /// Every stage of the registry decodes its registered event type (a mismatch would
    /// fail the registry's debug check and come back as `Fatal.Internal`) and refuses a
    /// field it does not know as invalid input.
    #[tokio::test]
    async fn every_registered_stage_decodes_its_event_type() {
        for spec in REGISTRY {
            let f = fails(spec.name, json!({"no_such_field": 1})).await;
            assert_eq!(f.error, "Fatal.InvalidInput", "{}: {f:?}", spec.name);
            assert!(f.cause.contains("no_such_field"), "{}: {f:?}", spec.name);
        }
        assert_eq!(STAGES.len(), REGISTRY.len());
        assert!(stage_spec("nope").is_none());
    }

    #[tokio::test]
    async fn event_fields_out_of_range_are_invalid_input_naming_the_field() {
        for (stage, payload, needle) in [
            (
                "kpis",
                json!({"run_date": "2026-02-30"}),
                r#"run_date: "2026-02-30" is not a date"#,
            ),
            (
                "calibrate",
                json!({"run_date": "2026-13-01"}),
                r#"run_date: "2026-13-01" is not a date"#,
            ),
            (
                "reports",
                json!({"week_start": "x"}),
                r#"week_start: "x" is not a date"#,
            ),
            (
                "calibrate",
                json!({"run_date": "2026-03-05", "quadpts": 100_000_000}),
                "quadpts must be between 5 and 301",
            ),
            (
                "calibrate",
                json!({"run_date": "2026-03-05", "min_responses": 0}),
                "min_responses must be between 1",
            ),
            (
                "features",
                json!({"run_date": "2026-03-05", "lookback_days": 0}),
                "lookback_days must be between 1",
            ),
            (
                "features",
                json!({"lookback_days": 1e10}),
                "lookback_days: invalid",
            ),
            (
                "score_topics",
                json!({"run_date": "0001-01-01"}),
                "run_date 0001-01-01 is out of range",
            ),
            (
                "reports",
                json!({"run_date": "2026-03-05", "shards": 4_000_000_000u32}),
                "shards must be between 1 and 1024",
            ),
            (
                "export_attempts",
                json!({"from": "0001-01-01", "to": "0001-01-02"}),
                "from 0001-01-01 is out of range",
            ),
            (
                "plan",
                json!({"run_date": "2026-03-05", "shards": 1025}),
                "shards must be in 1..=1024",
            ),
            (
                "plan",
                json!({"run_date": "2026-03-05", "shards": [{"shard": 0, "shards": 1}]}),
                "shards: invalid type",
            ),
            (
                "kpis",
                json!({"run_date": "2026-03-05", "shard": 2, "shards": 2}),
                "shard must be in 0..shards",
            ),
        ] {
            let f = fails(stage, payload.clone()).await;
            assert_eq!(f.error, "Fatal.InvalidInput", "{stage} {payload}: {f}");
            assert!(f.cause.contains(needle), "{stage} {payload}: {}", f.cause);
        }
    }

    /// The `stages = [...]` list of infra/terraform/locals.tf, in order.
    fn terraform_stages() -> Vec<String> {
        let text = include_str!("../../infra/terraform/locals.tf");
        let start = text.find("stages = [").unwrap() + "stages = [".len();
        let end = start + text[start..].find(']').unwrap();
        text[start..end]
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The stages named by `${<stage>_arn}` placeholders in the state machine, in the
    /// order they first appear.
    fn asl_stages() -> Vec<String> {
        let text = include_str!("../../infra/statemachine/pipeline.asl.json");
        let mut out: Vec<String> = Vec::new();
        for part in text.split("${").skip(1) {
            let name = &part[..part.find('}').unwrap()];
            let stage = name.strip_suffix("_arn").unwrap_or(name).to_string();
            if !out.contains(&stage) {
                out.push(stage);
            }
        }
        out
    }

    /// `reads` and `writes` of one stage in locals.tf's `stage_tables`.
    fn terraform_tables(stage: &str) -> Vec<String> {
        let text = include_str!("../../infra/terraform/locals.tf");
        let block = &text[text.find("stage_tables = {").unwrap()..];
        let start = block.find(&format!("\n    {stage} = {{")).unwrap();
        let body = &block[start..start + block[start..].find("\n    }").unwrap()];
        body.split('[')
            .skip(1)
            .flat_map(|list| list[..list.find(']').unwrap()].split(','))
            .map(|t| t.trim().trim_matches('"').to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Least privilege holds only if every table a stage's code reads is among its
    /// Terraform reads or writes (else the function works on a local lake and fails with
    /// AccessDenied on S3). The tables read are found in the stage's SQL (`sql/<stage>/`,
    /// `FROM`/`JOIN` of catalog tables), its crate's sources, and the shared helpers it
    /// calls (`latest_calibration`, `weekly_thetas`). A heuristic scan: it finds the
    /// omissions of this kind (churn and growth lacked item_params/fit_meta, reports five
    /// tables), not every possible read.
    #[test]
    fn every_table_a_stage_reads_is_granted_in_terraform() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog: Vec<&str> = lake::TABLES.iter().map(|t| t.name).collect();
        let helpers: [(&str, &[&str]); 2] = [
            ("latest_calibration", &["item_params", "fit_meta"]),
            ("weekly_thetas", &["attempts", "item_params", "fit_meta"]),
        ];
        let read_dir = |dir: std::path::PathBuf, ext: &str| -> String {
            let mut text = String::new();
            let mut stack = vec![dir];
            while let Some(d) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == ext) {
                        text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                    }
                }
            }
            text
        };
        fn crate_of(stage: &str) -> &str {
            match stage {
                "score_abilities" | "plan" => "calibrate",
                other => other,
            }
        }
        for stage in STAGES.iter().copied().filter(|s| *s != "export_attempts") {
            let code = read_dir(
                root.join("functions").join(crate_of(stage)).join("src"),
                "rs",
            );
            let sql = read_dir(root.join("sql").join(stage), "sql").to_lowercase();
            let mut needed: Vec<&str> = Vec::new();
            let words: Vec<&str> = sql.split_whitespace().collect();
            for w in words.windows(2) {
                if matches!(w[0], "from" | "join") {
                    let t = w[1].trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
                    if let Some(t) = catalog.iter().find(|c| **c == t) {
                        needed.push(t);
                    }
                }
            }
            for (helper, tables) in helpers {
                if code.contains(&format!("{helper}(")) {
                    needed.extend(tables);
                }
            }
            needed.sort_unstable();
            needed.dedup();
            let granted = terraform_tables(stage);
            let missing: Vec<&&str> = needed
                .iter()
                .filter(|t| !granted.iter().any(|g| g == **t))
                .collect();
            assert!(
                missing.is_empty(),
                "{stage} reads {missing:?} but infra/terraform/locals.tf grants only {granted:?}"
            );
        }
    }

    /// The tables a stage's memo fingerprints (`lake::memo`) are listed on every
    /// invocation: each must be a catalog table among the stage's Terraform reads, or
    /// the list is denied on S3.
    #[test]
    fn every_table_a_memo_lists_is_granted_in_terraform() {
        let memos: [(&str, &[&str]); 4] = [
            ("churn", &churn::SHARED_INPUTS),
            ("growth", &growth::SHARED_INPUTS),
            ("segments", &segments::SHARED_INPUTS),
            ("reports", &reports::data::COHORT_INPUTS),
        ];
        for (stage, tables) in memos {
            let granted = terraform_tables(stage);
            for t in tables {
                assert!(lake::catalog::table(t).is_ok(), "{stage}: {t} is no table");
                assert!(
                    granted.iter().any(|g| g == t),
                    "{stage}'s memo lists {t} but infra/terraform/locals.tf grants only {granted:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn terraform_the_state_machine_and_the_registry_name_the_same_stages_in_order() {
        let cli: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            terraform_stages(),
            cli,
            "infra/terraform/locals.tf local.stages"
        );
        assert_eq!(asl_stages(), cli, "placeholders of pipeline.asl.json");
        // Every stage dispatches (an unknown one is refused by name, not by its event).
        for stage in STAGES {
            let f = fails(stage, json!({"run_date": "2026-13-01"})).await;
            assert!(!f.cause.contains("unknown stage"), "{stage}: {f}");
        }
    }

    /// The state machine matches the stages' error names as `lake::runs::ErrorName`
    /// writes them: every `Retryable.*`/`Fatal.*` name in a `Retry` or `Catch` rule is
    /// one of them, and every retryable name is retried somewhere (a typo in either
    /// place would silently turn a retry into a failure).
    #[test]
    fn the_state_machine_retries_exactly_the_retryable_error_names() {
        let asl: Value =
            serde_json::from_str(include_str!("../../infra/statemachine/pipeline.asl.json"))
                .unwrap();
        let (mut retried, mut matched) = (Vec::new(), Vec::new());
        fn walk(v: &Value, in_retry: bool, retried: &mut Vec<String>, all: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if k == "ErrorEquals" {
                            for name in x.as_array().into_iter().flatten() {
                                let name = name.as_str().unwrap_or_default().to_string();
                                if in_retry {
                                    retried.push(name.clone());
                                }
                                all.push(name);
                            }
                        } else {
                            walk(x, in_retry || k == "Retry", retried, all);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, in_retry, retried, all)),
                _ => {}
            }
        }
        walk(&asl, false, &mut retried, &mut matched);
        let ours: Vec<&str> = ErrorName::ALL.iter().map(|e| e.as_str()).collect();
        for name in &matched {
            if name.starts_with("Retryable.") || name.starts_with("Fatal.") {
                assert!(ours.contains(&name.as_str()), "{name} is no ErrorName");
            }
        }
        for e in ErrorName::ALL.iter().filter(|e| e.is_retryable()) {
            assert!(
                retried.iter().any(|r| r == e.as_str()),
                "{e} is never retried"
            );
        }
        assert!(
            !retried.iter().any(|r| r.starts_with("Fatal.")),
            "a Fatal.* name is retried: {retried:?}"
        );
    }
}
