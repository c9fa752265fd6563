//! An interpreter for the subset of Amazon States Language that
//! `infra/statemachine/pipeline.asl.json` uses (see `infra/README.md`): Task (Lambda
//! invoke), Map (inline), Parallel, Pass, Choice (`IsPresent`, string/number/boolean
//! comparisons), Succeed and Fail, with `InputPath`, `Parameters`, `ItemSelector`,
//! `ResultSelector`, `ResultPath`, `OutputPath`, `Retry` and `Catch` as Step Functions
//! defines them (reference: the Amazon States Language specification).
//!
//! Tasks call an [`Invoker`]; the local runner's invoker runs the stage libraries
//! in-process. Differences from AWS, on purpose: Map iterations run as concurrent
//! futures on one thread (up to `MaxConcurrency`); Parallel branches run one after
//! another in their order, so a run is repeatable; `TimeoutSeconds`
//! only fires when the stage yields; retry waits are multiplied by
//! [`Options::retry_delay_scale`] (1 by default).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::path;

/// A boxed future (the interpreter recurses into Map and Parallel).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// An error as Step Functions names it: `Error` (e.g. `Retryable.LakeIo`,
/// `States.Runtime`) and `Cause`; the same type a stage fails with.
pub use crate::stages::StageFailure as ExecError;

impl ExecError {
    fn runtime(cause: impl std::fmt::Display) -> Self {
        Self::new("States.Runtime", cause)
    }

    fn as_json(&self) -> Value {
        json!({"Error": self.error, "Cause": self.cause})
    }
}

impl From<path::PathError> for ExecError {
    fn from(e: path::PathError) -> Self {
        ExecError::runtime(e)
    }
}

/// Calls a Task's function: `function` is the value of `FunctionName` (the stage name,
/// once the `${<stage>_arn}` placeholders are bound), `payload` the rendered `Payload`.
/// Returns the function's response (the stage summary).
pub trait Invoker {
    /// Invokes the function once.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
    ) -> BoxFuture<'a, Result<Value, ExecError>>;

    /// Told before each retry (for progress output).
    fn retrying(&self, _state: &str, _error: &ExecError, _attempt: u32, _wait: Duration) {}
}

/// Longest wait between retries: Step Functions' limit on `MaxDelaySeconds` (366 days
/// and 1 s).
pub const MAX_RETRY_WAIT_SECONDS: f64 = 31_622_401.0;

/// How the interpreter runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Multiplies every Retry wait (1 = as in AWS; 0 = no waiting, for tests).
    pub retry_delay_scale: f64,
    /// Upper bound on concurrent Map iterations (on top of `MaxConcurrency`).
    pub max_concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_delay_scale: 1.0,
            max_concurrency: 4,
        }
    }
}

/// A parsed state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    definition: Value,
}

/// The only Task resource the local runner knows (optimised Lambda integration).
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

impl StateMachine {
    /// Parses an ASL document after binding `${name}` placeholders with `bind`
    /// (the local runner binds `${<stage>_arn}` to the stage name).
    pub fn parse(text: &str, bind: impl Fn(&str) -> Option<String>) -> Result<Self, ExecError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or_else(|| {
                ExecError::new(
                    "States.Runtime",
                    "unclosed ${ placeholder in the definition",
                )
            })? + start;
            let name = &rest[start + 2..end];
            let value = bind(name).ok_or_else(|| {
                ExecError::runtime(format!("no binding for placeholder ${{{name}}}"))
            })?;
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        let definition: Value = serde_json::from_str(&out)
            .map_err(|e| ExecError::runtime(format!("the definition is not JSON: {e}")))?;
        check_scope(&definition)?;
        Ok(StateMachine { definition })
    }

    /// Runs an execution: `context` is the context object (`Execution.Id`, `StartTime`…).
    pub async fn execute(
        &self,
        invoker: &dyn Invoker,
        options: &Options,
        input: Value,
        context: Value,
    ) -> Result<Value, ExecError> {
        let exec = Exec {
            invoker,
            options,
            context,
        };
        exec.run_scope(&self.definition, input, None).await
    }
}

fn check_scope(scope: &Value) -> Result<(), ExecError> {
    let states = scope
        .get("States")
        .and_then(Value::as_object)
        .ok_or_else(|| ExecError::runtime("a scope without States"))?;
    let start = scope
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or_else(|| ExecError::runtime("a scope without StartAt"))?;
    if !states.contains_key(start) {
        return Err(ExecError::runtime(format!(
            "StartAt {start} is not a state"
        )));
    }
    for (name, s) in states {
        let ty = s.get("Type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "Task" | "Pass" | "Choice" | "Succeed" | "Fail" => {}
            "Map" => check_scope(
                s.get("ItemProcessor")
                    .or(s.get("Iterator"))
                    .ok_or_else(|| {
                        ExecError::runtime(format!("Map {name} has no ItemProcessor"))
                    })?,
            )?,
            "Parallel" => {
                for b in s
                    .get("Branches")
                    .and_then(Value::as_array)
                    .ok_or_else(|| ExecError::runtime(format!("Parallel {name} has no Branches")))?
                {
                    check_scope(b)?;
                }
            }
            other => {
                return Err(ExecError::runtime(format!(
                    "state {name}: type {other:?} is not supported by the local runner"
                )));
            }
        }
        if ty == "Task" && s.get("Resource").and_then(Value::as_str) != Some(LAMBDA_INVOKE) {
            return Err(ExecError::runtime(format!(
                "task {name}: only Resource {LAMBDA_INVOKE} is supported locally"
            )));
        }
        let next = s.get("Next").and_then(Value::as_str);
        let mut targets: Vec<&str> = next.into_iter().collect();
        for c in s
            .get("Catch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                s.get("Choices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
        {
            targets.extend(c.get("Next").and_then(Value::as_str));
        }
        targets.extend(s.get("Default").and_then(Value::as_str));
        for t in targets {
            if !states.contains_key(t) {
                return Err(ExecError::runtime(format!(
                    "state {name} goes to {t}, which is not in its scope"
                )));
            }
        }
    }
    Ok(())
}

/// Does `name` match one `ErrorEquals` entry? (`States.ALL` matches everything but
/// `States.Runtime`; `States.TaskFailed` everything but `States.Timeout` and `States.Runtime`.)
fn error_matches(pattern: &str, name: &str) -> bool {
    match pattern {
        "States.ALL" => name != "States.Runtime",
        "States.TaskFailed" => name != "States.Timeout" && name != "States.Runtime",
        p => p == name,
    }
}

fn matches_any(rule: &Value, name: &str) -> bool {
    rule.get("ErrorEquals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|p| error_matches(p, name))
}

struct Exec<'a> {
    invoker: &'a dyn Invoker,
    options: &'a Options,
    context: Value,
}

enum Outcome {
    Next(String, Value),
    End(Value),
}

fn str_field<'v>(s: &'v Value, k: &str) -> Option<&'v str> {
    s.get(k).and_then(Value::as_str)
}

impl<'a> Exec<'a> {
    fn with_map_item(&self, index: usize, value: &Value) -> Exec<'a> {
        let mut context = self.context.clone();
        if let Value::Object(m) = &mut context {
            m.insert(
                "Map".into(),
                json!({"Item": {"Index": index, "Value": value}}),
            );
        }
        Exec {
            invoker: self.invoker,
            options: self.options,
            context,
        }
    }

    /// Runs the states of one scope (the machine, a Map iteration, a Parallel branch).
    fn run_scope<'s>(
        &'s self,
        scope: &'s Value,
        input: Value,
        _parent: Option<&'s str>,
    ) -> BoxFuture<'s, Result<Value, ExecError>> {
        Box::pin(async move {
            let states = scope
                .get("States")
                .and_then(Value::as_object)
                .ok_or_else(|| ExecError::runtime("scope without States"))?;
            let mut name = str_field(scope, "StartAt")
                .ok_or_else(|| ExecError::runtime("scope without StartAt"))?
                .to_string();
            let mut data = input;
            loop {
                let state = states
                    .get(&name)
                    .ok_or_else(|| ExecError::runtime(format!("no state {name}")))?;
                tracing::debug!(state = %name, "entering");
                match self.run_state(&name, state, data).await? {
                    Outcome::Next(next, out) => {
                        name = next;
                        data = out;
                    }
                    Outcome::End(out) => return Ok(out),
                }
            }
        })
    }

    fn transition(state: &Value, out: Value) -> Result<Outcome, ExecError> {
        if state.get("End").and_then(Value::as_bool) == Some(true) {
            return Ok(Outcome::End(out));
        }
        match str_field(state, "Next") {
            Some(n) => Ok(Outcome::Next(n.to_string(), out)),
            None => Err(ExecError::runtime("a state with neither Next nor End")),
        }
    }

    fn input_path(&self, state: &Value, raw: &Value) -> Result<Value, ExecError> {
        match state.get("InputPath") {
            None => Ok(raw.clone()),
            Some(Value::Null) => Ok(json!({})),
            Some(Value::String(p)) => Ok(path::get(p, raw, &self.context)?),
            Some(other) => Err(ExecError::runtime(format!("bad InputPath {other}"))),
        }
    }

    /// `ResultPath` then `OutputPath`.
    fn output(&self, state: &Value, raw_input: Value, result: Value) -> Result<Value, ExecError> {
        let combined = match state.get("ResultPath") {
            None => result,
            Some(Value::Null) => raw_input,
            Some(Value::String(p)) => path::set(raw_input, p, result)?,
            Some(other) => return Err(ExecError::runtime(format!("bad ResultPath {other}"))),
        };
        match state.get("OutputPath") {
            None => Ok(combined),
            Some(Value::Null) => Ok(json!({})),
            Some(Value::String(p)) => Ok(path::get(p, &combined, &self.context)?),
            Some(other) => Err(ExecError::runtime(format!("bad OutputPath {other}"))),
        }
    }

    fn selected(&self, state: &Value, result: Value) -> Result<Value, ExecError> {
        match state.get("ResultSelector") {
            Some(t) => Ok(path::render(t, &result, &self.context)?),
            None => Ok(result),
        }
    }

    /// A failed Task/Map/Parallel: the first matching Catch, else the error.
    fn caught(
        &self,
        state: &Value,
        raw_input: Value,
        err: ExecError,
    ) -> Result<Outcome, ExecError> {
        for rule in state
            .get("Catch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if matches_any(rule, &err.error) {
                let next = str_field(rule, "Next")
                    .ok_or_else(|| ExecError::runtime("a Catch without Next"))?;
                let out = match rule.get("ResultPath") {
                    None => err.as_json(),
                    Some(Value::Null) => raw_input,
                    Some(Value::String(p)) => path::set(raw_input, p, err.as_json())?,
                    Some(other) => {
                        return Err(ExecError::runtime(format!("bad Catch ResultPath {other}")));
                    }
                };
                return Ok(Outcome::Next(next.to_string(), out));
            }
        }
        Err(err)
    }

    async fn run_state(&self, name: &str, state: &Value, raw: Value) -> Result<Outcome, ExecError> {
        let ty = str_field(state, "Type").unwrap_or("");
        match ty {
            "Pass" => {
                let input = self.input_path(state, &raw)?;
                let result = if let Some(r) = state.get("Result") {
                    r.clone()
                } else if let Some(t) = state.get("Parameters") {
                    path::render(t, &input, &self.context)?
                } else {
                    input
                };
                let out = self.output(state, raw, result)?;
                Self::transition(state, out)
            }
            "Choice" => {
                let input = self.input_path(state, &raw)?;
                for rule in state
                    .get("Choices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if self.choice_matches(rule, &input)? {
                        let next = str_field(rule, "Next")
                            .ok_or_else(|| ExecError::runtime("a Choice rule without Next"))?;
                        return Ok(Outcome::Next(next.to_string(), raw));
                    }
                }
                match str_field(state, "Default") {
                    Some(d) => Ok(Outcome::Next(d.to_string(), raw)),
                    None => Err(ExecError::new(
                        "States.NoChoiceMatched",
                        format!("no choice of {name} matched"),
                    )),
                }
            }
            "Succeed" => {
                let input = self.input_path(state, &raw)?;
                Ok(Outcome::End(input))
            }
            "Fail" => {
                let error = match (str_field(state, "Error"), str_field(state, "ErrorPath")) {
                    (Some(e), _) => e.to_string(),
                    (None, Some(p)) => value_text(&path::get(p, &raw, &self.context)?),
                    _ => "States.Fail".to_string(),
                };
                let cause = match (str_field(state, "Cause"), str_field(state, "CausePath")) {
                    (Some(c), _) => c.to_string(),
                    (None, Some(p)) => value_text(&path::get(p, &raw, &self.context)?),
                    _ => String::new(),
                };
                Err(ExecError { error, cause })
            }
            "Task" => {
                let result = self.task(name, state, &raw).await;
                self.finish(state, raw, result)
            }
            "Map" => {
                let result = self.map(state, &raw).await;
                self.finish(state, raw, result)
            }
            "Parallel" => {
                let result = self.parallel(state, &raw).await;
                self.finish(state, raw, result)
            }
            other => Err(ExecError::runtime(format!("state {name}: type {other:?}"))),
        }
    }

    fn finish(
        &self,
        state: &Value,
        raw: Value,
        result: Result<Value, ExecError>,
    ) -> Result<Outcome, ExecError> {
        match result.and_then(|r| self.selected(state, r)) {
            Ok(r) => {
                let out = self.output(state, raw, r)?;
                Self::transition(state, out)
            }
            Err(e) if e.error == "States.Runtime" => Err(e),
            Err(e) => self.caught(state, raw, e),
        }
    }

    fn choice_matches(&self, rule: &Value, input: &Value) -> Result<bool, ExecError> {
        if let Some(all) = rule.get("And").and_then(Value::as_array) {
            for r in all {
                if !self.choice_matches(r, input)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        if let Some(any) = rule.get("Or").and_then(Value::as_array) {
            for r in any {
                if self.choice_matches(r, input)? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        if let Some(r) = rule.get("Not") {
            return Ok(!self.choice_matches(r, input)?);
        }
        let var = str_field(rule, "Variable")
            .ok_or_else(|| ExecError::runtime("a Choice rule without Variable"))?;
        if let Some(want) = rule.get("IsPresent").and_then(Value::as_bool) {
            return Ok(path::is_present(var, input, &self.context) == want);
        }
        let value = path::get(var, input, &self.context)?;
        for (op, want) in rule.as_object().into_iter().flatten() {
            let hit = match op.as_str() {
                "StringEquals" => value.as_str() == want.as_str(),
                "BooleanEquals" => value.as_bool() == want.as_bool(),
                "NumericEquals" => value.as_f64() == want.as_f64(),
                "NumericGreaterThan" => num_cmp(&value, want, |a, b| a > b),
                "NumericLessThan" => num_cmp(&value, want, |a, b| a < b),
                "IsNull" => value.is_null() == want.as_bool().unwrap_or(true),
                "Variable" | "Next" => continue,
                other => {
                    return Err(ExecError::runtime(format!(
                        "Choice operator {other} is not supported by the local runner"
                    )));
                }
            };
            return Ok(hit);
        }
        Err(ExecError::runtime("a Choice rule without a comparison"))
    }

    async fn task(&self, name: &str, state: &Value, raw: &Value) -> Result<Value, ExecError> {
        let input = self.input_path(state, raw)?;
        let params = match state.get("Parameters") {
            Some(t) => path::render(t, &input, &self.context)?,
            None => input,
        };
        let function = str_field(&params, "FunctionName")
            .ok_or_else(|| ExecError::runtime(format!("task {name}: Parameters.FunctionName")))?
            .to_string();
        let payload = params.get("Payload").cloned().unwrap_or(json!({}));
        let timeout = state
            .get("TimeoutSeconds")
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        let retries: Vec<&Value> = state
            .get("Retry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let mut attempts = vec![0u32; retries.len()];
        loop {
            let call = self.invoker.invoke(&function, payload.clone());
            let result = match timeout {
                Some(t) => match tokio::time::timeout(t, call).await {
                    Ok(r) => r,
                    Err(_) => Err(ExecError::new(
                        "States.Timeout",
                        format!("task {name} ran longer than {} s", t.as_secs()),
                    )),
                },
                None => call.await,
            };
            let err = match result {
                Ok(summary) => return Ok(json!({ "Payload": summary, "StatusCode": 200 })),
                Err(e) => e,
            };
            let Some(i) = retries.iter().position(|r| matches_any(r, &err.error)) else {
                return Err(err);
            };
            let rule = retries[i];
            let max = rule.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3) as u32;
            if attempts[i] >= max {
                return Err(err);
            }
            let interval = rule
                .get("IntervalSeconds")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            let backoff = rule
                .get("BackoffRate")
                .and_then(Value::as_f64)
                .unwrap_or(2.0);
            let mut wait = interval * backoff.powi(attempts[i] as i32);
            if let Some(cap) = rule.get("MaxDelaySeconds").and_then(Value::as_f64) {
                wait = wait.min(cap);
            }
            attempts[i] += 1;
            // A definition's huge or NaN interval must not panic the runner: clamp to
            // 0..=MAX_RETRY_WAIT_SECONDS, NaN as 0.
            let secs = wait * self.options.retry_delay_scale;
            let secs = if secs.is_nan() {
                0.0
            } else {
                secs.clamp(0.0, MAX_RETRY_WAIT_SECONDS)
            };
            let wait = Duration::from_secs_f64(secs);
            self.invoker.retrying(name, &err, attempts[i], wait);
            tokio::time::sleep(wait).await;
        }
    }

    async fn map(&self, state: &Value, raw: &Value) -> Result<Value, ExecError> {
        let input = self.input_path(state, raw)?;
        let items = match str_field(state, "ItemsPath") {
            Some(p) => path::get(p, &input, &self.context)?,
            None => input.clone(),
        };
        let items = items
            .as_array()
            .ok_or_else(|| ExecError::runtime("Map ItemsPath is not an array"))?
            .clone();
        let processor = state
            .get("ItemProcessor")
            .or(state.get("Iterator"))
            .ok_or_else(|| ExecError::runtime("Map without ItemProcessor"))?;
        let selector = state.get("ItemSelector").or(state.get("Parameters"));
        let limit = match state.get("MaxConcurrency").and_then(Value::as_u64) {
            Some(0) | None => self.options.max_concurrency,
            Some(n) => (n as usize).min(self.options.max_concurrency),
        }
        .max(1);
        let mut iterations = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let exec = self.with_map_item(i, &item);
            let item_input = match selector {
                Some(t) => path::render(t, &input, &exec.context)?,
                None => item,
            };
            iterations.push((exec, item_input));
        }
        let results: Vec<Result<Value, ExecError>> = futures::stream::iter(
            iterations
                .iter()
                .map(|(exec, item_input)| exec.run_scope(processor, item_input.clone(), None)),
        )
        .buffered(limit)
        .collect()
        .await;
        results
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }

    async fn parallel(&self, state: &Value, raw: &Value) -> Result<Value, ExecError> {
        let input = self.input_path(state, raw)?;
        let input = match state.get("Parameters") {
            Some(t) => path::render(t, &input, &self.context)?,
            None => input,
        };
        let branches = state
            .get("Branches")
            .and_then(Value::as_array)
            .ok_or_else(|| ExecError::runtime("Parallel without Branches"))?;
        // One branch after another, in order: in AWS they run side by side, and readers
        // of a table another branch rewrites (segments reading weekly_kpi while churn
        // updates it) rely on Retry; locally the order makes runs repeatable.
        let mut results = Vec::with_capacity(branches.len());
        for b in branches {
            results.push(self.run_scope(b, input.clone(), None).await?);
        }
        Ok(Value::Array(results))
    }
}

fn num_cmp(v: &Value, w: &Value, f: impl Fn(f64, f64) -> bool) -> bool {
    matches!((v.as_f64(), w.as_f64()), (Some(a), Some(b)) if f(a, b))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The context object of an execution (`$$`).
pub fn context_object(execution_id: &str, name: &str, start_time: &str, input: &Value) -> Value {
    let mut m = Map::new();
    m.insert(
        "Execution".into(),
        json!({"Id": execution_id, "Name": name, "StartTime": start_time, "Input": input}),
    );
    m.insert(
        "StateMachine".into(),
        json!({"Id": "local:irtlake-pipeline", "Name": "irtlake-pipeline"}),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    const PIPELINE: &str = include_str!("../../../infra/statemachine/pipeline.asl.json");

    /// Records calls; `faults[stage]` = (error name, how many calls fail; u32::MAX = always).
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<(String, Value)>>,
        faults: HashMap<String, (String, u32)>,
    }

    impl Invoker for Fake {
        fn invoke<'a>(
            &'a self,
            function: &'a str,
            payload: Value,
        ) -> BoxFuture<'a, Result<Value, ExecError>> {
            Box::pin(async move {
                let mut calls = self.calls.lock().unwrap();
                let n = calls.iter().filter(|(f, _)| f == function).count() as u32;
                calls.push((function.to_string(), payload.clone()));
                if let Some((error, times)) = self.faults.get(function)
                    && n < *times
                {
                    return Err(ExecError::new(
                        error,
                        format!("{function} failed (call {n})"),
                    ));
                }
                Ok(json!({"stage": function, "payload": payload}))
            })
        }
    }

    fn machine() -> StateMachine {
        StateMachine::parse(PIPELINE, |name| {
            name.strip_suffix("_arn").map(|s| s.to_string())
        })
        .unwrap()
    }

    async fn execute(fake: &Fake, input: Value) -> Result<Value, ExecError> {
        let opts = Options {
            retry_delay_scale: 0.0,
            max_concurrency: 4,
        };
        let ctx = context_object("local:test", "test", "2026-03-05T03:00:00Z", &input);
        machine().execute(fake, &opts, input, ctx).await
    }

    fn stages_called(fake: &Fake) -> Vec<String> {
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(f, _)| f.clone())
            .collect()
    }

    #[tokio::test]
    async fn the_pipeline_visits_every_stage_in_order_with_the_documented_payloads() {
        let fake = Fake::default();
        let out = execute(
            &fake,
            json!({"run_date": "2026-03-05T03:00:00Z", "banks": ["all", "subject:math"],
                   "shards": [{"shard": 0, "shards": 2}, {"shard": 1, "shards": 2}]}),
        )
        .await
        .unwrap();
        let called = stages_called(&fake);
        assert_eq!(
            called,
            [
                "export_attempts",
                "calibrate",
                "calibrate",
                "score_topics",
                "features",
                "kpis",
                "churn",
                "growth",
                "forecast",
                "segments",
                "reports",
                "reports"
            ]
        );
        let calls = fake.calls.lock().unwrap();
        assert_eq!(calls[0].1, json!({"run_date": "2026-03-05"}));
        assert_eq!(
            calls[2].1,
            json!({"run_date": "2026-03-05", "bank": "subject:math"})
        );
        assert_eq!(
            calls[4].1,
            json!({"run_date": "2026-03-05", "run_ts": "2026-03-05T03:00:00Z"})
        );
        assert_eq!(calls[11].1["shard"], 1);
        assert_eq!(calls[11].1["shards"], 2);
        assert_eq!(out["run_date"], "2026-03-05");
        assert_eq!(
            out["results"]["calibrate"][1]["summary"]["payload"]["bank"],
            "subject:math"
        );
        assert_eq!(
            out["results"]["models"]["growth"]["summary"]["stage"],
            "growth"
        );
        assert_eq!(out["results"]["reports"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn defaults_apply_without_banks_shards_or_run_date() {
        let fake = Fake::default();
        let out = execute(&fake, json!({})).await.unwrap();
        // run_date comes from the execution's start time, cut to the date.
        assert_eq!(out["run_date"], "2026-03-05");
        let calls = fake.calls.lock().unwrap();
        let cal: Vec<_> = calls.iter().filter(|(f, _)| f == "calibrate").collect();
        assert_eq!(cal.len(), 1);
        assert_eq!(cal[0].1["bank"], "all");
        let rep: Vec<_> = calls.iter().filter(|(f, _)| f == "reports").collect();
        assert_eq!(rep.len(), 1);
        assert_eq!(
            (rep[0].1["shard"].clone(), rep[0].1["shards"].clone()),
            (json!(0), json!(1))
        );
    }

    #[tokio::test]
    async fn a_retryable_error_is_retried_and_the_run_succeeds() {
        let mut fake = Fake::default();
        fake.faults
            .insert("kpis".into(), ("Retryable.LakeIo".into(), 1));
        execute(&fake, json!({"run_date": "2026-03-05"}))
            .await
            .unwrap();
        let called = stages_called(&fake);
        assert_eq!(called.iter().filter(|s| *s == "kpis").count(), 2);
        assert_eq!(called.last().unwrap(), "reports");
    }

    #[tokio::test]
    async fn retries_stop_after_max_attempts_and_the_error_is_recorded() {
        let mut fake = Fake::default();
        fake.faults
            .insert("features".into(), ("Retryable.Timeout".into(), u32::MAX));
        let err = execute(&fake, json!({"run_date": "2026-03-05"}))
            .await
            .unwrap_err();
        assert_eq!(err.error, "Retryable.Timeout");
        assert!(err.cause.contains("features failed"), "{err:?}");
        let called = stages_called(&fake);
        // one call and three retries, then nothing after features.
        assert_eq!(called.iter().filter(|s| *s == "features").count(), 4);
        assert!(!called.iter().any(|s| s == "kpis"));
    }

    #[tokio::test]
    async fn a_fatal_error_is_not_retried_and_fails_the_run_from_inside_parallel_and_map() {
        let mut fake = Fake::default();
        fake.faults
            .insert("growth".into(), ("Fatal.Model".into(), u32::MAX));
        let err = execute(&fake, json!({"run_date": "2026-03-05"}))
            .await
            .unwrap_err();
        assert_eq!(err.error, "Fatal.Model");
        let called = stages_called(&fake);
        assert_eq!(called.iter().filter(|s| *s == "growth").count(), 1);
        assert!(!called.iter().any(|s| s == "reports"));

        let mut fake = Fake::default();
        fake.faults
            .insert("calibrate".into(), ("Fatal.InvalidInput".into(), u32::MAX));
        let err = execute(&fake, json!({"run_date": "2026-03-05", "banks": ["all"]}))
            .await
            .unwrap_err();
        assert_eq!(err.error, "Fatal.InvalidInput");
        assert!(!stages_called(&fake).iter().any(|s| s == "score_topics"));
    }

    #[test]
    fn definitions_outside_the_supported_subset_are_refused() {
        let bad =
            r#"{"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "End": true}}}"#;
        assert!(StateMachine::parse(bad, |_| None).is_err());
        let bad = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#;
        assert!(StateMachine::parse(bad, |_| None).is_err());
        let unbound =
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${x}", "End": true}}}"#;
        assert!(StateMachine::parse(unbound, |_| None).is_err());
    }
}
