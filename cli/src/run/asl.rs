//! An interpreter for the subset of Amazon States Language that
//! `infra/statemachine/pipeline.asl.json` uses (see `infra/README.md`): Task (Lambda
//! invoke), Map (INLINE and DISTRIBUTED), Parallel, Pass, Choice (`IsPresent`,
//! string/number/boolean comparisons), Succeed and Fail, with `InputPath`, `Parameters`,
//! `ItemSelector`, `ResultSelector`, `ResultPath`, `OutputPath`, `Retry` and `Catch` as
//! Step Functions defines them (reference: the Amazon States Language specification and
//! the Step Functions guide, "Map state in Distributed mode").
//!
//! Tasks call an [`Invoker`]; the local runner's invoker runs the stage libraries
//! in-process. Differences from AWS, on purpose: INLINE Map iterations run as concurrent
//! futures on one thread (up to `MaxConcurrency`); a DISTRIBUTED Map runs its child
//! executions on a bounded pool of OS threads ([`Options::max_parallel`], at most
//! `MaxConcurrency`), so the stages of several shards really run at once (when only one
//! child can run at a time they run in turn on the calling task); Parallel
//! branches run one after another in their order, so a run is repeatable;
//! `TimeoutSeconds` only fires when the stage yields; retry waits are multiplied by
//! [`Options::retry_delay_scale`] (1 by default).
//!
//! A DISTRIBUTED Map behaves as a Map Run with `ToleratedFailurePercentage` 0: once a
//! child execution fails, no new child starts, the children already running finish, and
//! the Map fails with `States.ExceedToleratedFailureThreshold` (as in AWS, which does not
//! pass the child's error on; the local cause names the child and its error). Each child
//! has its own context object (`$$.Execution` of the child: its own id, start time and
//! input, and no `$$.Map`), as a child workflow execution has.
//!
//! The definition is read into types (`asl/definition.rs`): one per state type, with
//! the fields the runner implements. A state type or field it does not implement (for a
//! Map: `ItemReader`, `ResultWriter`, `ItemBatcher`, a tolerated failure above 0, the
//! `…Path` forms) is refused when the definition is loaded, naming the state and the
//! field.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::path;

mod definition;

use definition::{
    After, Catcher, Comparison, Definition, MapMode, MapState, ParallelState, PathField, Scope,
    State, TaskState, Test, check_scope,
};

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
/// Returns the function's response (the stage summary). `Sync`: the children of a
/// DISTRIBUTED Map call it from several threads at once.
pub trait Invoker: Sync {
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
    /// Upper bound on concurrent iterations of an INLINE Map (on top of `MaxConcurrency`);
    /// on a multi-thread runtime they run on at most `max_parallel` threads.
    pub max_concurrency: usize,
    /// Upper bound on the OS threads, i.e. child executions running at once, of a
    /// DISTRIBUTED Map (on top of `MaxConcurrency`).
    pub max_parallel: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_delay_scale: 1.0,
            max_concurrency: 4,
            max_parallel: default_max_parallel(),
        }
    }
}

/// The default of [`Options::max_parallel`]: the CPUs this process may use.
pub fn default_max_parallel() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The error of a DISTRIBUTED Map whose failed children exceed its tolerated failure
/// threshold (0 here), as Step Functions names it.
pub const EXCEED_TOLERATED_FAILURE: &str = "States.ExceedToleratedFailureThreshold";

/// Runs `run(0)`, …, `run(n − 1)` on up to `limit` OS threads and returns each outcome
/// in index order, `None` for one never started: the first failure stops new ones from
/// starting. On a multi-thread tokio runtime (`shared`) each thread drives its future
/// with the runtime's `Handle::block_on` (what the stages spawn, and the lake's
/// connections, live on that runtime); otherwise each thread has its own current-thread
/// runtime. Stages run CPU-bound fits in place (`lake::runs::cpu_bound`), so futures
/// polled by one task would run their fits one after the other: threads run them side
/// by side. Threads are named `{name}-{k}`.
pub(crate) fn on_threads<'f, F, Fut>(
    n: usize,
    limit: usize,
    shared: Option<&tokio::runtime::Handle>,
    name: &str,
    run: F,
) -> Vec<Option<Result<Value, ExecError>>>
where
    F: Fn(usize) -> Fut + Sync + 'f,
    Fut: std::future::Future<Output = Result<Value, ExecError>> + 'f,
{
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results = Mutex::new(vec![None; n]);
    let store = |i: usize, r: Result<Value, ExecError>| {
        if r.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        if let Ok(mut slots) = results.lock() {
            slots[i] = Some(r);
        }
    };
    let worker = || {
        let own = match shared {
            Some(_) => None,
            None => match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => Some(rt),
                Err(e) => {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i < n {
                        store(
                            i,
                            Err(ExecError::runtime(format!("starting a runtime: {e}"))),
                        );
                    }
                    return;
                }
            },
        };
        while !failed.load(Ordering::SeqCst) {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= n {
                break;
            }
            let r = match (shared, &own) {
                (Some(h), _) => h.block_on(run(i)),
                (None, Some(rt)) => rt.block_on(run(i)),
                (None, None) => Err(ExecError::runtime("no runtime for the child")),
            };
            store(i, r);
        }
    };
    std::thread::scope(|scope| {
        let mut started = 0;
        for k in 0..limit.min(n) {
            match std::thread::Builder::new()
                .name(format!("{name}-{k}"))
                .spawn_scoped(scope, worker)
            {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(error = %e, "could not start a Map thread"),
            }
        }
        if started == 0 && n > 0 {
            worker();
        }
    });
    results.into_inner().unwrap_or_default()
}

/// A Map's output: its iterations' outputs in order, or the first failure in that order
/// (iterations not started after a failure come after it, see [`on_threads`]).
fn first_failure_or_outputs(results: Vec<Result<Value, ExecError>>) -> Result<Value, ExecError> {
    results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// The tokio runtime the calling task runs on, when it is a multi-thread one (the CLI's
/// and the Lambda entry's; tests use current-thread runtimes).
pub(crate) fn multi_thread_runtime() -> Option<tokio::runtime::Handle> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    Handle::try_current()
        .ok()
        .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// A parsed state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    root: Scope,
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
        let definition = Definition::deserialize(definition).map_err(ExecError::runtime)?;
        let root = Scope {
            _comment: definition._comment,
            start_at: definition.start_at,
            states: definition.states,
        };
        check_scope(&root)?;
        Ok(StateMachine { root })
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
        exec.run_scope(&self.root, input).await
    }
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

fn matches_any(error_equals: &[String], name: &str) -> bool {
    error_equals.iter().any(|p| error_matches(p, name))
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
        scope: &'s Scope,
        input: Value,
    ) -> BoxFuture<'s, Result<Value, ExecError>> {
        Box::pin(async move {
            let mut name = scope.start_at.clone();
            let mut data = input;
            loop {
                let state = scope
                    .states
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

    fn transition(next: Option<&str>, end: bool, out: Value) -> Result<Outcome, ExecError> {
        if end {
            return Ok(Outcome::End(out));
        }
        match next {
            Some(n) => Ok(Outcome::Next(n.to_string(), out)),
            None => Err(ExecError::runtime("a state with neither Next nor End")),
        }
    }

    fn input_path(&self, input_path: &PathField, raw: &Value) -> Result<Value, ExecError> {
        match input_path {
            PathField::Absent => Ok(raw.clone()),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => Ok(path::get(p, raw, &self.context)?),
        }
    }

    /// `ResultPath` then `OutputPath`.
    fn output(
        &self,
        result_path: &PathField,
        output_path: &PathField,
        raw_input: Value,
        result: Value,
    ) -> Result<Value, ExecError> {
        let combined = match result_path {
            PathField::Absent => result,
            PathField::Null => raw_input,
            PathField::Path(p) => path::set(raw_input, p, result)?,
        };
        match output_path {
            PathField::Absent => Ok(combined),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => Ok(path::get(p, &combined, &self.context)?),
        }
    }

    fn selected(&self, selector: Option<&Value>, result: Value) -> Result<Value, ExecError> {
        match selector {
            Some(t) => Ok(path::render(t, &result, &self.context)?),
            None => Ok(result),
        }
    }

    /// A failed Task/Map/Parallel: the first matching Catch, else the error.
    fn caught(
        &self,
        catch: &[Catcher],
        raw_input: Value,
        err: ExecError,
    ) -> Result<Outcome, ExecError> {
        for rule in catch {
            if matches_any(&rule.error_equals, &err.error) {
                let out = match &rule.result_path {
                    PathField::Absent => err.as_json(),
                    PathField::Null => raw_input,
                    PathField::Path(p) => path::set(raw_input, p, err.as_json())?,
                };
                return Ok(Outcome::Next(rule.next.clone(), out));
            }
        }
        Err(err)
    }

    async fn run_state(&self, name: &str, state: &State, raw: Value) -> Result<Outcome, ExecError> {
        match state {
            State::Pass(s) => {
                let input = self.input_path(&s.input_path, &raw)?;
                let result = if let Some(r) = &s.result {
                    r.clone()
                } else if let Some(t) = &s.parameters {
                    path::render(t, &input, &self.context)?
                } else {
                    input
                };
                let out = self.output(&s.result_path, &s.output_path, raw, result)?;
                Self::transition(s.next.as_deref(), s.end, out)
            }
            State::Choice(s) => {
                let input = self.input_path(&s.input_path, &raw)?;
                for rule in &s.choices {
                    if self.choice_matches(&rule.test, &input)? {
                        return Ok(Outcome::Next(rule.next.clone(), raw));
                    }
                }
                match &s.default {
                    Some(d) => Ok(Outcome::Next(d.clone(), raw)),
                    None => Err(ExecError::new(
                        "States.NoChoiceMatched",
                        format!("no choice of {name} matched"),
                    )),
                }
            }
            State::Succeed(s) => {
                let input = self.input_path(&s.input_path, &raw)?;
                Ok(Outcome::End(input))
            }
            State::Fail(s) => {
                let error = match (&s.error, &s.error_path) {
                    (Some(e), _) => e.clone(),
                    (None, Some(p)) => value_text(&path::get(p, &raw, &self.context)?),
                    _ => "States.Fail".to_string(),
                };
                let cause = match (&s.cause, &s.cause_path) {
                    (Some(c), _) => c.clone(),
                    (None, Some(p)) => value_text(&path::get(p, &raw, &self.context)?),
                    _ => String::new(),
                };
                Err(ExecError { error, cause })
            }
            State::Task(s) => {
                let result = self.task(name, s, &raw).await;
                self.finish(&s.after(), raw, result)
            }
            State::Map(s) => {
                let result = self.map(name, s, &raw).await;
                self.finish(&s.after(), raw, result)
            }
            State::Parallel(s) => {
                let result = self.parallel(s, &raw).await;
                self.finish(&s.after(), raw, result)
            }
        }
    }

    fn finish(
        &self,
        after: &After<'_>,
        raw: Value,
        result: Result<Value, ExecError>,
    ) -> Result<Outcome, ExecError> {
        match result.and_then(|r| self.selected(after.result_selector, r)) {
            Ok(r) => {
                let out = self.output(after.result_path, after.output_path, raw, r)?;
                Self::transition(after.next, after.end, out)
            }
            Err(e) if e.error == "States.Runtime" => Err(e),
            Err(e) => self.caught(after.catch, raw, e),
        }
    }

    fn choice_matches(&self, test: &Test, input: &Value) -> Result<bool, ExecError> {
        let (var, op) = match test {
            Test::And(all) => {
                for t in all {
                    if !self.choice_matches(t, input)? {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            Test::Or(any) => {
                for t in any {
                    if self.choice_matches(t, input)? {
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            Test::Not(t) => return Ok(!self.choice_matches(t, input)?),
            Test::Compare { variable, op } => (variable.as_str(), op),
        };
        // IsPresent does not read the variable (reading an absent path is an error).
        let value = || path::get(var, input, &self.context);
        Ok(match op {
            Comparison::IsPresent(want) => path::is_present(var, input, &self.context) == *want,
            Comparison::IsNull(want) => value()?.is_null() == *want,
            Comparison::StringEquals(want) => value()?.as_str() == Some(want.as_str()),
            Comparison::BooleanEquals(want) => value()?.as_bool() == Some(*want),
            Comparison::NumericEquals(want) => value()?.as_f64() == Some(*want),
            Comparison::NumericGreaterThan(want) => value()?.as_f64().is_some_and(|v| v > *want),
            Comparison::NumericLessThan(want) => value()?.as_f64().is_some_and(|v| v < *want),
        })
    }

    async fn task(&self, name: &str, state: &TaskState, raw: &Value) -> Result<Value, ExecError> {
        let input = self.input_path(&state.input_path, raw)?;
        let params = match &state.parameters {
            Some(t) => path::render(t, &input, &self.context)?,
            None => input,
        };
        let function = str_field(&params, "FunctionName")
            .ok_or_else(|| ExecError::runtime(format!("task {name}: Parameters.FunctionName")))?
            .to_string();
        let payload = params.get("Payload").cloned().unwrap_or(json!({}));
        let timeout = state.timeout_seconds.map(Duration::from_secs);
        let retries = &state.retry;
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
            let Some(i) = retries
                .iter()
                .position(|r| matches_any(&r.error_equals, &err.error))
            else {
                return Err(err);
            };
            let rule = &retries[i];
            let max = rule.max_attempts.unwrap_or(3) as u32;
            if attempts[i] >= max {
                return Err(err);
            }
            let interval = rule.interval_seconds.unwrap_or(1.0);
            let backoff = rule.backoff_rate.unwrap_or(2.0);
            let mut wait = interval * backoff.powi(attempts[i] as i32);
            if let Some(cap) = rule.max_delay_seconds {
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

    async fn map(&self, name: &str, state: &MapState, raw: &Value) -> Result<Value, ExecError> {
        let mode = state.processor.config.mode;
        let input = self.input_path(&state.input_path, raw)?;
        let items = match &state.items_path {
            Some(p) => path::get(p, &input, &self.context)?,
            None => input.clone(),
        };
        let items = items
            .as_array()
            .ok_or_else(|| ExecError::runtime(format!("Map {name}: ItemsPath is not an array")))?
            .clone();
        let processor = &state.processor.scope;
        let selector = state.item_selector.as_ref().or(state.parameters.as_ref());
        let bound = match mode {
            MapMode::Inline => self.options.max_concurrency,
            MapMode::Distributed => self.options.max_parallel,
        };
        let limit = match state.max_concurrency {
            Some(0) | None => bound,
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(bound),
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
        if mode == MapMode::Distributed {
            let inputs: Vec<Value> = iterations.into_iter().map(|(_, v)| v).collect();
            return self.distributed(name, processor, &inputs, limit).await;
        }
        // On a multi-thread runtime the iterations run on threads (at most one per CPU,
        // `max_parallel`), so their CPU-bound work (a bank's fit) runs side by side;
        // otherwise as futures of this task.
        let threads = limit.min(self.options.max_parallel).min(iterations.len());
        if let (Some(h), true) = (multi_thread_runtime(), threads > 1) {
            let outcomes = tokio::task::block_in_place(|| {
                on_threads(
                    iterations.len(),
                    threads,
                    Some(&h),
                    &format!("irtlake-{name}"),
                    |i| {
                        let (exec, item_input) = &iterations[i];
                        exec.run_scope(processor, item_input.clone())
                    },
                )
            });
            let mut outputs = Vec::with_capacity(outcomes.len());
            for (i, outcome) in outcomes.into_iter().enumerate() {
                match outcome {
                    Some(r) => outputs.push(r),
                    // not started after a failure: that failure is the Map's
                    None => outputs.push(Err(ExecError::runtime(format!(
                        "Map {name}: iteration {i} did not run"
                    )))),
                }
            }
            return first_failure_or_outputs(outputs);
        }
        let results: Vec<Result<Value, ExecError>> = futures::stream::iter(
            iterations
                .iter()
                .map(|(exec, item_input)| exec.run_scope(processor, item_input.clone())),
        )
        .buffered(limit)
        .collect()
        .await;
        first_failure_or_outputs(results)
    }

    /// The context object of a child execution of the DISTRIBUTED Map `map`: its own
    /// `Execution` (id under the parent's, start time now, the item as input), the
    /// parent's `StateMachine`, and no `Map`.
    fn child(&self, map: &str, index: usize, input: &Value) -> Exec<'a> {
        let parent = self
            .context
            .pointer("/Execution/Id")
            .and_then(Value::as_str)
            .unwrap_or("local");
        let name = format!("{map}-{index}");
        let start = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut context = context_object(&format!("{parent}/{name}"), &name, &start, input);
        if let (Some(machine), Value::Object(m)) = (self.context.get("StateMachine"), &mut context)
        {
            m.insert("StateMachine".into(), machine.clone());
        }
        Exec {
            invoker: self.invoker,
            options: self.options,
            context,
        }
    }

    /// Runs the child executions of the DISTRIBUTED Map `name`, one per input, on up to
    /// `limit` OS threads, and returns their outputs in item order. The first failed
    /// child stops new ones from starting; the Map then fails with
    /// [`EXCEED_TOLERATED_FAILURE`] once the running ones end.
    ///
    /// With one child at a time (one item, or a limit of 1) the children run in turn on
    /// the calling task, as an unsharded run did before, with no thread to start.
    /// Otherwise, on a multi-thread tokio runtime each thread drives its child with the
    /// runtime's `Handle::block_on` (what the stages spawn, and the lake's connections,
    /// live on that runtime), the calling worker stepping aside with `block_in_place`;
    /// on a current-thread runtime (e.g. a test) each thread has its own runtime.
    async fn distributed(
        &self,
        name: &str,
        processor: &Scope,
        inputs: &[Value],
        limit: usize,
    ) -> Result<Value, ExecError> {
        let shared = multi_thread_runtime();
        let results = if limit.min(inputs.len()) <= 1 {
            let mut results = vec![None; inputs.len()];
            for (i, input) in inputs.iter().enumerate() {
                let r = self
                    .child(name, i, input)
                    .run_scope(processor, input.clone())
                    .await;
                let failed = r.is_err();
                results[i] = Some(r);
                if failed {
                    break;
                }
            }
            results
        } else {
            match &shared {
                Some(h) => tokio::task::block_in_place(|| {
                    self.run_children(name, processor, inputs, limit, Some(h))
                }),
                None => self.run_children(name, processor, inputs, limit, None),
            }
        };
        let total = inputs.len();
        let mut outputs = Vec::with_capacity(total);
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Some(Ok(v)) => outputs.push(v),
                Some(Err(e)) => {
                    return Err(ExecError::new(
                        EXCEED_TOLERATED_FAILURE,
                        format!(
                            "The specified tolerated failure threshold was exceeded: child {i} \
                             of {total} of Map {name} failed with {}: {}",
                            e.error, e.cause
                        ),
                    ));
                }
                None => {
                    return Err(ExecError::runtime(format!(
                        "Map {name}: child {i} of {total} did not run"
                    )));
                }
            }
        }
        Ok(Value::Array(outputs))
    }

    /// The thread pool of [`Exec::distributed`]: each slot of the result is the child's
    /// outcome, `None` for a child that never started (after a failure).
    fn run_children(
        &self,
        map: &str,
        processor: &Scope,
        inputs: &[Value],
        limit: usize,
        shared: Option<&tokio::runtime::Handle>,
    ) -> Vec<Option<Result<Value, ExecError>>> {
        on_threads(
            inputs.len(),
            limit,
            shared,
            &format!("irtlake-{map}"),
            |i| async move {
                self.child(map, i, &inputs[i])
                    .run_scope(processor, inputs[i].clone())
                    .await
            },
        )
    }

    async fn parallel(&self, state: &ParallelState, raw: &Value) -> Result<Value, ExecError> {
        let input = self.input_path(&state.input_path, raw)?;
        let input = match &state.parameters {
            Some(t) => path::render(t, &input, &self.context)?,
            None => input,
        };
        let branches = &state.branches;
        // One branch after another, in order: in AWS they run side by side, and readers
        // of a table another branch rewrites (segments reading weekly_kpi while churn
        // updates it) rely on Retry; locally the order makes runs repeatable.
        let mut results = Vec::with_capacity(branches.len());
        for b in branches {
            results.push(self.run_scope(b, input.clone()).await?);
        }
        Ok(Value::Array(results))
    }
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
    use std::sync::{Condvar, Mutex};

    const PIPELINE: &str = include_str!("../../../infra/statemachine/pipeline.asl.json");
    const START: &str = "2026-03-05T03:00:00Z";

    /// Records calls; `faults[stage]` = (error name, how many calls fail; u32::MAX = always).
    /// `plan` answers with the items of its `shards` (1 when null), as the stage does.
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
                if function == "plan" {
                    let n = payload["shards"].as_u64().unwrap_or(1);
                    let items: Vec<Value> =
                        (0..n).map(|k| json!({"shard": k, "shards": n})).collect();
                    return Ok(json!({"students": null, "shard_count": n, "shards": items}));
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

    /// Runs the pipeline with one child thread per DISTRIBUTED Map, so calls come in order.
    async fn execute(fake: &Fake, input: Value) -> Result<Value, ExecError> {
        let opts = Options {
            retry_delay_scale: 0.0,
            max_concurrency: 4,
            max_parallel: 1,
        };
        let ctx = context_object("local:test", "test", START, &input);
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

    fn calls_of(fake: &Fake, stage: &str) -> Vec<Value> {
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, _)| f == stage)
            .map(|(_, p)| p.clone())
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
        let mut want = vec!["export_attempts", "calibrate", "calibrate"];
        for stage in [
            "score_abilities",
            "score_topics",
            "features",
            "kpis",
            "churn",
            "growth",
        ] {
            want.extend([stage, stage]);
        }
        want.extend(["forecast", "segments", "segments", "reports", "reports"]);
        assert_eq!(called, want, "a list of shard items skips plan");
        let calls = fake.calls.lock().unwrap();
        assert_eq!(calls[0].1, json!({"run_date": "2026-03-05"}));
        assert_eq!(
            calls[2].1,
            json!({"run_date": "2026-03-05", "run_ts": START, "bank": "subject:math", "scoring": "shards"})
        );
        // Every per-student stage gets its shard and the parent's start time as run_ts
        // (a child execution's own $$.Execution.StartTime is another time).
        assert_eq!(
            calls[6].1,
            json!({"run_date": "2026-03-05", "run_ts": START, "shard": 1, "shards": 2})
        );
        assert_eq!(
            calls[15].1,
            json!({"run_date": "2026-03-05", "run_ts": START})
        );
        assert_eq!(calls[19].1["shard"], 1);
        assert_eq!(calls[19].1["shards"], 2);
        assert_eq!(out["run_date"], "2026-03-05");
        assert_eq!(
            out["results"]["calibrate"][1]["summary"]["payload"]["bank"],
            "subject:math"
        );
        assert_eq!(
            out["results"]["models"]["growth"],
            json!({"shards": 2, "failed": []})
        );
        assert_eq!(
            out["results"]["models"]["forecast"]["summary"]["stage"],
            "forecast"
        );
        assert_eq!(
            out["results"]["reports"],
            json!({"shards": 2, "failed": []})
        );
    }

    #[tokio::test]
    async fn without_shards_the_plan_stage_chooses_them_and_a_count_is_planned_as_given() {
        let fake = Fake::default();
        let out = execute(&fake, json!({})).await.unwrap();
        // run_date comes from the execution's start time, cut to the date.
        assert_eq!(out["run_date"], "2026-03-05");
        let cal = calls_of(&fake, "calibrate");
        assert_eq!(cal.len(), 1);
        assert_eq!(cal[0]["bank"], "all");
        assert_eq!(
            calls_of(&fake, "plan"),
            [json!({"run_date": "2026-03-05", "shards": null, "students_per_shard": null})]
        );
        let rep = calls_of(&fake, "reports");
        assert_eq!(rep.len(), 1);
        assert_eq!(
            (&rep[0]["shard"], &rep[0]["shards"]),
            (&json!(0), &json!(1))
        );

        let fake = Fake::default();
        execute(
            &fake,
            json!({"run_date": "2026-03-05", "shards": 3, "students_per_shard": 500}),
        )
        .await
        .unwrap();
        assert_eq!(
            calls_of(&fake, "plan"),
            [json!({"run_date": "2026-03-05", "shards": 3, "students_per_shard": 500})]
        );
        for stage in [
            "score_abilities",
            "score_topics",
            "features",
            "kpis",
            "churn",
            "growth",
            "segments",
            "reports",
        ] {
            let shards: Vec<Value> = calls_of(&fake, stage)
                .iter()
                .map(|p| p["shard"].clone())
                .collect();
            assert_eq!(shards, [json!(0), json!(1), json!(2)], "{stage}");
        }
        assert_eq!(
            calls_of(&fake, "forecast").len(),
            1,
            "forecast stays one task"
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
        // one call and three retries, then the Catch: nothing after features.
        assert_eq!(called.iter().filter(|s| *s == "features").count(), 4);
        assert!(!called.iter().any(|s| s == "kpis"));
    }

    #[tokio::test]
    async fn a_failed_shard_fails_the_run_with_the_stages_own_error_after_the_other_shards() {
        let mut fake = Fake::default();
        fake.faults.insert("kpis".into(), ("Fatal.Model".into(), 1));
        let err = execute(&fake, json!({"run_date": "2026-03-05", "shards": 3}))
            .await
            .unwrap_err();
        // Not States.ExceedToleratedFailureThreshold: the child returns its error and
        // the run fails with it, at RecordFailure / PipelineFailed.
        assert_eq!(err.error, "Fatal.Model");
        assert!(err.cause.contains("kpis failed (call 0)"), "{err:?}");
        assert_eq!(calls_of(&fake, "kpis").len(), 3, "the other shards ran");
        assert!(calls_of(&fake, "churn").is_empty());
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
        let refused = |def: &str| StateMachine::parse(def, |_| None).unwrap_err().cause;
        let bad =
            r#"{"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "End": true}}}"#;
        let cause = refused(bad);
        assert!(
            cause.contains("state A") && cause.contains("Wait"),
            "{cause}"
        );
        let bad = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#;
        assert!(refused(bad).contains("state A goes to B"));
        let unbound =
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${x}", "End": true}}}"#;
        assert!(refused(unbound).contains("${x}"));
        let bad = r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "x"}}}"#;
        assert!(refused(bad).contains("task A: only Resource"));
    }

    /// A field the runner does not implement is refused when loading, naming the state
    /// (and the states around it in a nested scope) and the field, not ignored.
    #[test]
    fn unknown_fields_are_refused_naming_the_state_and_the_field() {
        let refused = |def: Value| {
            StateMachine::parse(&def.to_string(), |_| None)
                .unwrap_err()
                .cause
        };
        let task = json!({"Type": "Task", "Resource": LAMBDA_INVOKE, "End": true,
                          "Parameters": {"FunctionName": "work"}});
        let with = |state: &Value, field: &str, value: Value| {
            let mut state = state.clone();
            state[field] = value;
            state
        };
        for (state, field) in [
            (
                with(&task, "HeartbeatSeconds", json!(60)),
                "HeartbeatSeconds",
            ),
            (
                with(
                    &task,
                    "Retry",
                    json!([{"ErrorEquals": ["X"], "JitterStrategy": "FULL"}]),
                ),
                "JitterStrategy",
            ),
            (
                json!({"Type": "Succeed", "OutputPath": "$.x"}),
                "OutputPath",
            ),
            (
                json!({"Type": "Choice", "Default": "A",
                       "Choices": [{"Variable": "$.x", "StringMatches": "a*", "Next": "A"}]}),
                "StringMatches",
            ),
        ] {
            let cause = refused(json!({"StartAt": "A", "States": {"A": state}}));
            assert!(
                cause.starts_with("state A: ") && cause.contains(field),
                "{field}: {cause}"
            );
        }
        let nested = json!({"StartAt": "P", "States": {"P": {
            "Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "A", "States": {"A": with(&task, "Credentials", json!({}))}}]
        }}});
        let cause = refused(nested);
        assert!(
            cause.starts_with("state P: state A: ") && cause.contains("Credentials"),
            "{cause}"
        );
        // A Choice rule is one test with its Next.
        for rule in [
            json!({"Variable": "$.x", "IsPresent": true}),
            json!({"Variable": "$.x", "Next": "A"}),
            json!({"Variable": "$.x", "IsPresent": true, "IsNull": false, "Next": "A"}),
        ] {
            let cause = refused(json!({"StartAt": "A", "States": {"A": {
                "Type": "Choice", "Choices": [rule.clone()], "Default": "A"}}}));
            assert!(
                cause.starts_with("state A: a Choice rule"),
                "{rule}: {cause}"
            );
        }
    }

    // ------------------------------------------------------------ DISTRIBUTED Map

    /// A DISTRIBUTED Map over `$.items` whose child calls `work` with its item; `extra`
    /// adds (or, with null, removes) fields of the Map state.
    fn distributed(extra: Value) -> Value {
        let mut map = json!({
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"i.$": "$$.Map.Item.Value", "parent_start.$": "$$.Execution.StartTime"},
            "MaxConcurrency": 8,
            "ToleratedFailurePercentage": 0,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Work",
                "States": {"Work": {
                    "Type": "Task",
                    "Resource": LAMBDA_INVOKE,
                    "Parameters": {"FunctionName": "work", "Payload": {
                        "i.$": "$.i",
                        "parent_start.$": "$.parent_start",
                        "child_start.$": "$$.Execution.StartTime",
                        "child_id.$": "$$.Execution.Id"
                    }},
                    "ResultSelector": {"i.$": "$.Payload.i"},
                    "Retry": [{"ErrorEquals": ["Retryable.LakeIo"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                    "End": true
                }}
            },
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": true
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                map.as_object_mut().unwrap().remove(k);
            } else {
                map[k] = v.clone();
            }
        }
        json!({"StartAt": "M", "States": {"M": map, "Caught": {"Type": "Pass", "End": true}}})
    }

    /// `work` for the DISTRIBUTED Map tests: item `i` fails `faults[i]` = (error, times);
    /// with `barrier` = (n, wait), each call waits until n calls are in `work` at once
    /// and fails with `Test.NotParallel` if that does not happen within `wait`.
    #[derive(Default)]
    struct Items {
        calls: Mutex<Vec<Value>>,
        faults: HashMap<u64, (String, u32)>,
        barrier: Option<(usize, Duration)>,
        inside: Mutex<usize>,
        arrived: Condvar,
    }

    impl Items {
        fn wait_for_others(&self, n: usize, wait: Duration) -> bool {
            let mut inside = self.inside.lock().unwrap();
            *inside += 1;
            self.arrived.notify_all();
            let (inside, timeout) = self
                .arrived
                .wait_timeout_while(inside, wait, |k| *k < n)
                .unwrap();
            drop(inside);
            !timeout.timed_out()
        }
    }

    impl Invoker for Items {
        fn invoke<'a>(
            &'a self,
            _function: &'a str,
            payload: Value,
        ) -> BoxFuture<'a, Result<Value, ExecError>> {
            Box::pin(async move {
                let i = payload["i"].as_u64().unwrap();
                let n = {
                    let mut calls = self.calls.lock().unwrap();
                    let n = calls.iter().filter(|p| p["i"] == payload["i"]).count() as u32;
                    calls.push(payload.clone());
                    n
                };
                if let Some((k, wait)) = self.barrier
                    && !self.wait_for_others(k, wait)
                {
                    return Err(ExecError::new(
                        "Test.NotParallel",
                        "the children ran one at a time",
                    ));
                }
                match self.faults.get(&i) {
                    Some((error, times)) if n < *times => {
                        Err(ExecError::new(error, format!("item {i} failed (call {n})")))
                    }
                    _ => Ok(payload),
                }
            })
        }
    }

    async fn run_distributed(
        def: &Value,
        items: &Items,
        n: u64,
        max_parallel: usize,
    ) -> Result<Value, ExecError> {
        let machine = StateMachine::parse(&def.to_string(), |_| None)?;
        let opts = Options {
            retry_delay_scale: 0.0,
            max_concurrency: 4,
            max_parallel,
        };
        let input = json!({"items": (0..n).collect::<Vec<_>>()});
        let ctx = context_object("local:test", "test", START, &input);
        machine.execute(items, &opts, input, ctx).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_child_fails_the_distributed_map_and_no_new_child_starts() {
        let mut items = Items::default();
        items.faults.insert(1, ("Fatal.Model".into(), u32::MAX));
        let out = run_distributed(&distributed(json!({})), &items, 5, 1)
            .await
            .unwrap();
        // As in AWS: the Map fails with States.ExceedToleratedFailureThreshold (caught
        // here); the local cause names the child and its own error.
        assert_eq!(out["error"]["Error"], EXCEED_TOLERATED_FAILURE);
        let cause = out["error"]["Cause"].as_str().unwrap();
        assert!(
            cause.contains("child 1 of 5") && cause.contains("Fatal.Model: item 1 failed"),
            "{cause}"
        );
        let called: Vec<Value> = items
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|p| p["i"].clone())
            .collect();
        assert_eq!(called, [json!(0), json!(1)], "children 2..4 never start");

        // Without a Catch the execution ends with that error.
        let mut items = Items::default();
        items.faults.insert(0, ("Fatal.Model".into(), u32::MAX));
        let err = run_distributed(&distributed(json!({"Catch": null})), &items, 2, 2)
            .await
            .unwrap_err();
        assert_eq!(err.error, EXCEED_TOLERATED_FAILURE);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_failing_once_with_a_retryable_error_is_retried_and_the_map_succeeds() {
        let mut items = Items::default();
        items.faults.insert(2, ("Retryable.LakeIo".into(), 1));
        let out = run_distributed(&distributed(json!({})), &items, 4, 4)
            .await
            .unwrap();
        assert_eq!(
            out,
            json!([{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]),
            "in item order"
        );
        let calls = items.calls.lock().unwrap();
        assert_eq!(calls.len(), 5);
        assert_eq!(calls.iter().filter(|p| p["i"] == 2).count(), 2);
        for p in calls.iter() {
            // The ItemSelector sees the parent; the child has its own execution.
            assert_eq!(p["parent_start"], START);
            let id = p["child_id"].as_str().unwrap();
            assert!(id.starts_with("local:test/M-"), "{id}");
            assert_ne!(p["child_start"], START);
        }
    }

    fn barrier_test(max_parallel: usize, wait: Duration) -> Result<Value, ExecError> {
        let items = Items {
            barrier: Some((2, wait)),
            ..Items::default()
        };
        let def = distributed(json!({"Catch": null}));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_distributed(&def, &items, 2, max_parallel))
    }

    #[test]
    fn children_of_a_distributed_map_run_at_once_on_os_threads() {
        // Each child waits until both are inside the stage: only true parallelism
        // passes (the wait is a guard against hanging, not a timing assertion).
        let out = barrier_test(2, Duration::from_secs(60)).unwrap();
        assert_eq!(out.as_array().unwrap().len(), 2);
        // The control: one thread at a time cannot meet the barrier.
        let err = barrier_test(1, Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.error, EXCEED_TOLERATED_FAILURE);
        assert!(err.cause.contains("Test.NotParallel"), "{err:?}");
        // On a current-thread runtime each child thread has its own runtime.
        let items = Items {
            barrier: Some((2, Duration::from_secs(60))),
            ..Items::default()
        };
        let def = distributed(json!({"Catch": null}));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(run_distributed(&def, &items, 2, 2)).unwrap();
        assert_eq!(out.as_array().unwrap().len(), 2);
    }

    #[test]
    fn map_fields_the_runner_does_not_implement_are_refused_naming_state_and_field() {
        let processor = |mode: Value| {
            let mut p = distributed(json!({}))["States"]["M"]["ItemProcessor"].clone();
            p["ProcessorConfig"] = mode;
            p
        };
        for (extra, needle) in [
            (
                json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject"}}),
                "ItemReader",
            ),
            (
                json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"}}),
                "ResultWriter",
            ),
            (
                json!({"ItemBatcher": {"MaxItemsPerBatch": 10}}),
                "ItemBatcher",
            ),
            (
                json!({"ToleratedFailureCount": 1}),
                "ToleratedFailureCount 1",
            ),
            (
                json!({"ToleratedFailurePercentage": 10}),
                "ToleratedFailurePercentage 10",
            ),
            (
                json!({"ToleratedFailurePercentagePath": "$.p"}),
                "ToleratedFailurePercentagePath",
            ),
            (json!({"MaxConcurrencyPath": "$.n"}), "MaxConcurrencyPath"),
            (
                json!({"ItemProcessor": processor(json!({"Mode": "DISTRIBUTED"}))}),
                "ExecutionType",
            ),
            (
                json!({"ItemProcessor": processor(json!({"Mode": "SHARDED"}))}),
                "Mode \"SHARDED\"",
            ),
            (
                json!({"ItemProcessor": processor(json!({"Mode": "INLINE"}))}),
                "ToleratedFailurePercentage",
            ),
        ] {
            let def = distributed(extra.clone());
            let err = StateMachine::parse(&def.to_string(), |_| None).unwrap_err();
            assert_eq!(err.error, "States.Runtime");
            assert!(
                err.cause.starts_with("state M: ") && err.cause.contains(needle),
                "{extra}: {}",
                err.cause
            );
        }
        // The supported form loads, as does EXPRESS; ToleratedFailureCount 0 is fine.
        assert!(
            StateMachine::parse(
                &distributed(json!({"ToleratedFailureCount": 0})).to_string(),
                |_| None
            )
            .is_ok()
        );
        let express = distributed(
            json!({"ItemProcessor": processor(json!({"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}))}),
        );
        assert!(StateMachine::parse(&express.to_string(), |_| None).is_ok());
    }
}
