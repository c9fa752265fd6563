//! The AWS Lambda entry: when the Lambda service starts the `irtlake` binary as the
//! function's `bootstrap` (`AWS_LAMBDA_RUNTIME_API` is set), it serves the stage
//! named by the `STAGE` variable. One binary, built once, serves every stage.
//!
//! This module only wires `lambda_runtime`: JSON logs, configuration read once from
//! the environment, the lake client built once, then `run(service_fn(...))`. The
//! work is done by [`crate::stages::invoke`]; a failure is reported with its stable
//! name (`Retryable.*` / `Fatal.*`) as the Lambda `errorType`, which Step Functions
//! matches in `Retry` and `Catch`.

use std::sync::Arc;

use anyhow::{Context, Result};
use lake::Lake;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::stages::{self, StageEnv, StageFailure};

/// True when the process was started by a Lambda runtime (real or emulated).
pub fn started_by_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

impl From<StageFailure> for Diagnostic {
    fn from(f: StageFailure) -> Self {
        Diagnostic {
            error_type: f.error,
            error_message: f.cause,
        }
    }
}

/// Everything built once per cold start.
struct Function {
    stage: String,
    lake: Lake,
    env: StageEnv,
}

fn init_json_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .with_writer(std::io::stdout)
        .init();
}

/// Reads the function's configuration from the environment (once).
async fn configure() -> Result<Function> {
    let stage = std::env::var("STAGE").context("the STAGE variable names the stage to serve")?;
    if !stages::STAGES.contains(&stage.as_str()) {
        anyhow::bail!(
            "STAGE={stage} is not a stage; stages: {}",
            stages::STAGES.join(", ")
        );
    }
    let lake = Lake::open_from_env().context("opening the lake named by LAKE_URI")?;
    let env = StageEnv::from_env()?;
    Ok(Function { stage, lake, env })
}

/// Serves events until the Lambda service stops the process.
pub fn main() -> Result<()> {
    init_json_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let function = Arc::new(configure().await?);
        tracing::info!(stage = %function.stage, lake = %function.lake.uri(), "ready");
        let handler = service_fn(move |event: LambdaEvent<Value>| {
            let function = Arc::clone(&function);
            async move {
                tracing::info!(request_id = %event.context.request_id, "event");
                stages::invoke(
                    &function.lake,
                    &function.env,
                    &function.stage,
                    event.payload,
                )
                .await
            }
        });
        lambda_runtime::run(handler)
            .await
            .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
    })
}
