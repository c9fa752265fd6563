//! `irtlake run`: executes the pipeline's one state-machine definition,
//! `infra/statemachine/pipeline.asl.json` (compiled into the binary; `--definition`
//! reads another file), locally and in-process: each Task's `${<stage>_arn}` is bound
//! to the stage name and the stage library runs through [`crate::stages::invoke`], the
//! same call the Lambda entry makes. Retry and Catch behave as in Step Functions.
//!
//! `--from` / `--until` skip the Tasks of stages outside the range (they return
//! `{"status": "skipped"}` without running), so e.g. `make demo` starts at `calibrate`
//! without a PostgreSQL source. The `plan` stage always runs (it only reads): the
//! Distributed Maps of the per-student stages need its shard items. `--shards N` gives
//! the shard count (the execution input's `shards`), else `plan` chooses it from the
//! lake, as in AWS; the children of a DISTRIBUTED Map run on up to `--max-parallel` OS
//! threads. `--backfill-from` extends features and kpis back to a
//! date (the demo's history). A progress line per stage goes to stderr; the final
//! table (stage, calls, rows, seconds, status) to stdout.

mod asl;
mod path;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lake::Lake;
use serde_json::{Value, json};

use crate::stages::{self, STAGES, StageEnv};
use asl::{BoxFuture, ExecError, Invoker, Options, StateMachine};

/// The state machine the runner executes by default: the one Terraform deploys.
const PIPELINE_ASL: &str = include_str!("../../../infra/statemachine/pipeline.asl.json");

/// Options of `irtlake run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The day the run is for (UTC); default: the execution's start (today).
    #[arg(long, value_parser = crate::bounds::date)]
    pub run_date: Option<chrono::NaiveDate>,
    /// First stage to run; earlier stages are skipped (e.g. calibrate: no export).
    #[arg(long, value_parser = parse_stage)]
    pub from: Option<String>,
    /// Last stage to run; later stages are skipped.
    #[arg(long, value_parser = parse_stage)]
    pub until: Option<String>,
    /// Banks to calibrate (all, subject:<id>, topic:<id>); repeat. Default: all.
    #[arg(long)]
    pub bank: Vec<String>,
    /// Also calibrate every subject bank found in `questions`.
    #[arg(long)]
    pub all_subjects: bool,
    /// Backfill: features and kpis also cover the days (weeks) from this date to the run
    /// date, as `irtlake stage features|kpis --from` would (a local extension: the
    /// state machine sends only the run date).
    #[arg(long, value_parser = crate::bounds::date)]
    pub backfill_from: Option<chrono::NaiveDate>,
    /// With --backfill-from: also calibrate bank `all` every this many days back from
    /// the run date to the backfill start (run date − k·DAYS, scored inline), so the
    /// cohort report's linking, log-likelihood, drift and item-fit history has points;
    /// 0 = only the run date (0 to 366).
    #[arg(long, value_parser = crate::bounds::u32_in(0, 366), default_value_t = 7)]
    pub calibrate_every: u32,
    /// Student shards of the per-student stages (score_topics … reports), 1 to 1024;
    /// default: the plan stage chooses (students with attempts in 60 days / 25,000).
    #[arg(long, value_parser = crate::bounds::u32_in(1, u64::from(MAX_SHARDS)))]
    pub shards: Option<u32>,
    /// Target students per shard when the plan stage chooses the count (100 to 10,000,000;
    /// default 25,000).
    #[arg(
        long,
        value_parser = clap::value_parser!(u64)
            .range(lake::plan::MIN_STUDENTS_PER_SHARD..=lake::plan::MAX_STUDENTS_PER_SHARD),
        conflicts_with = "shards"
    )]
    pub students_per_shard: Option<u64>,
    /// Child executions of a DISTRIBUTED Map running at once, each on its own OS thread
    /// (1 to 256; default: the CPUs available, at most the Map's MaxConcurrency).
    #[arg(long, value_parser = crate::bounds::usize_in(1, MAX_PARALLEL as u64))]
    pub max_parallel: Option<usize>,
    /// The execution's start time (RFC 3339, UTC), written on every output row;
    /// default now. Re-running with the same value writes the same bytes.
    #[arg(long)]
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Another state-machine file (ASL JSON) instead of the built-in pipeline.
    #[arg(long)]
    pub definition: Option<PathBuf>,
    /// Multiplies Retry waits (1 = as in AWS: 5 s, 10 s, 20 s; 0 = retry at once) (0 to 100).
    #[arg(long, value_parser = crate::bounds::f64_in(0.0, MAX_RETRY_DELAY_SCALE), default_value_t = 1.0)]
    pub retry_delay_scale: f64,
    /// Print the execution's final state (JSON) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Rehearsal: make STAGE fail with ERROR, N times (default always), e.g.
    /// `kpis=Retryable.LakeIo:1`. The stage does not run while it "fails".
    #[arg(long, hide = true, value_parser = parse_fault)]
    pub inject_failure: Vec<Fault>,
}

/// A rehearsed failure (`--inject-failure`).
#[derive(Debug, Clone)]
pub struct Fault {
    stage: String,
    error: String,
    times: u32,
}

fn parse_stage(s: &str) -> Result<String, String> {
    let s = s.replace('-', "_");
    if STAGES.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(format!("not a stage; stages: {}", STAGES.join(", ")))
    }
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    let (stage, rest) = s
        .split_once('=')
        .ok_or_else(|| "expected STAGE=ERROR[:N]".to_string())?;
    let stage = parse_stage(stage)?;
    let (error, times) = match rest.rsplit_once(':') {
        Some((e, n)) => (
            e.to_string(),
            n.parse().map_err(|_| format!("{n:?} is not a count"))?,
        ),
        None => (rest.to_string(), u32::MAX),
    };
    Ok(Fault {
        stage,
        error,
        times,
    })
}

/// One stage invocation as the final table shows it.
#[derive(Debug, Clone)]
struct Call {
    /// What the table shows: the stage and its bank or shard.
    stage: String,
    rows: u64,
    seconds: f64,
    status: String,
}

/// Runs Tasks in-process and records what happened. Shared by the threads of a
/// DISTRIBUTED Map.
struct LocalInvoker<'a> {
    lake: &'a Lake,
    env: StageEnv,
    from: usize,
    until: usize,
    faults: Vec<Fault>,
    /// Failures injected so far, per stage (checked and counted under one lock, so
    /// `STAGE=ERROR:N` fails exactly N calls however many shards run at once).
    injected: Mutex<HashMap<String, u32>>,
    backfill_from: Option<chrono::NaiveDate>,
    /// Days between the backfill's calibrations of bank `all` (0: none).
    calibrate_every: u32,
    /// The backfill's calibrations running at once (`--max-parallel`).
    max_parallel: usize,
    calls: Mutex<Vec<Call>>,
    progress: ProgressBar,
}

impl LocalInvoker<'_> {
    fn record(&self, call: Call) {
        self.progress.println(format!(
            "{:<16} {:>8} rows {:>8.2} s  {}",
            call.stage, call.rows, call.seconds, call.status
        ));
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    fn injected(&self, stage: &str) -> Option<ExecError> {
        let fault = self.faults.iter().find(|f| f.stage == stage)?;
        let mut injected = self.injected.lock().ok()?;
        let done = injected.entry(stage.to_string()).or_insert(0);
        (*done < fault.times).then(|| {
            *done += 1;
            ExecError::new(
                &fault.error,
                format!("injected failure of stage {stage} (--inject-failure)"),
            )
        })
    }
}

impl Invoker for LocalInvoker<'_> {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Value,
    ) -> BoxFuture<'a, Result<Value, ExecError>> {
        Box::pin(async move {
            let position = STAGES.iter().position(|s| *s == function);
            if let Some(p) = position
                && (p < self.from || p > self.until)
                && function != PLAN_STAGE
            {
                return Ok(json!({"status": "skipped", "stage": function}));
            }
            let mut payload = payload;
            if let (Some(from), "features" | "kpis", Value::Object(m)) =
                (self.backfill_from, function, &mut payload)
            {
                m.entry("from")
                    .or_insert_with(|| json!(from.format("%Y-%m-%d").to_string()));
            }
            let label = match payload.get("bank").or(payload.get("shard")) {
                Some(v) => format!(
                    "{function} {}",
                    v.as_str().map_or(v.to_string(), str::to_string)
                ),
                None => function.to_string(),
            };
            if function == "calibrate" && payload.get("bank") == Some(&json!("all")) {
                self.run_history(function, &label, self.history_calibrations(&payload))
                    .await?;
            }
            self.run_one(function, payload, label).await
        })
    }

    fn retrying(&self, state: &str, error: &ExecError, attempt: u32, wait: Duration) {
        self.progress.println(format!(
            "{state}: {} — retry {attempt} in {:.1} s",
            error.error,
            wait.as_secs_f64()
        ));
    }
}

impl LocalInvoker<'_> {
    /// The backfill's earlier calibrations of a `calibrate` payload: for each date
    /// run_date − k·`calibrate_every` (k ≥ 1) on or after the backfill start, oldest
    /// first, the payload with that run date, its 03:00 UTC as run time, and inline
    /// scoring (every student of that day's window gets that day's θ, as a daily run
    /// would have written).
    fn history_calibrations(&self, payload: &Value) -> Vec<(chrono::NaiveDate, Value)> {
        let (Some(from), step) = (self.backfill_from, self.calibrate_every) else {
            return Vec::new();
        };
        let run_date = payload
            .get("run_date")
            .and_then(Value::as_str)
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        let (Some(run_date), true) = (run_date, step > 0) else {
            return Vec::new();
        };
        let mut dates: Vec<chrono::NaiveDate> = (1..)
            .map_while(|k: u64| run_date.checked_sub_days(chrono::Days::new(k * u64::from(step))))
            .take_while(|d| *d >= from)
            .collect();
        dates.reverse();
        dates
            .into_iter()
            .map(|d| {
                let mut p = payload.clone();
                if let Value::Object(m) = &mut p {
                    let day = d.format("%Y-%m-%d").to_string();
                    m.insert("run_ts".into(), json!(format!("{day}T03:00:00Z")));
                    m.insert("run_date".into(), json!(day));
                    m.insert("scoring".into(), json!("inline"));
                }
                (d, p)
            })
            .collect()
    }

    /// Runs the backfill's earlier calibrations ([`Self::history_calibrations`]),
    /// `max_parallel` at a time on threads when the runtime has several (they are
    /// independent: each reads attempts and questions and writes its own run date's
    /// partitions), else one after the other. The first failure is the result.
    async fn run_history(
        &self,
        function: &str,
        label: &str,
        history: Vec<(chrono::NaiveDate, Value)>,
    ) -> Result<(), ExecError> {
        let run = |i: usize| {
            let (date, payload) = &history[i];
            self.run_one(function, payload.clone(), format!("{label} @{date}"))
        };
        let Some(h) = asl::multi_thread_runtime().filter(|_| self.max_parallel > 1) else {
            for i in 0..history.len() {
                run(i).await?;
            }
            return Ok(());
        };
        let outcomes = tokio::task::block_in_place(|| {
            asl::on_threads(
                history.len(),
                self.max_parallel,
                Some(&h),
                "irtlake-history",
                run,
            )
        });
        outcomes.into_iter().flatten().try_for_each(|r| r.map(drop))
    }

    /// Runs one stage invocation (or its injected failure) and records it as `label`.
    async fn run_one(
        &self,
        function: &str,
        payload: Value,
        label: String,
    ) -> Result<Value, ExecError> {
        self.progress.set_message(label.clone());
        let started = Instant::now();
        let result = match self.injected(function) {
            Some(err) => Err(err),
            None => stages::invoke(self.lake, &self.env, function, payload).await,
        };
        let (rows, status) = match &result {
            Ok(summary) => (
                stages::rows_written(function, summary),
                summary
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("ok")
                    .to_string(),
            ),
            Err(f) => (0, format!("failed: {}", f.error)),
        };
        self.record(Call {
            stage: label,
            rows,
            seconds: started.elapsed().as_secs_f64(),
            status,
        });
        result
    }
}

/// Banks for the state machine's Map: `--bank` values (default `all`), plus every
/// subject with `--all-subjects`.
async fn banks(lake: &Lake, args: &RunArgs) -> Result<Vec<String>> {
    let mut banks = if args.bank.is_empty() {
        vec!["all".to_string()]
    } else {
        args.bank.clone()
    };
    if args.all_subjects {
        banks.extend(crate::subject_banks(lake).await?);
    }
    Ok(banks)
}

/// Most student shards `--shards` accepts: [`lake::shard::MAX_SHARDS`].
pub const MAX_SHARDS: u32 = lake::shard::MAX_SHARDS;

/// Most threads `--max-parallel` accepts.
pub const MAX_PARALLEL: usize = 256;

/// The stage that chooses the shards; it runs whatever `--from`/`--until` say.
const PLAN_STAGE: &str = "plan";

/// Largest `--retry-delay-scale`: Retry waits up to 100 times AWS's (5 s → 500 s).
pub const MAX_RETRY_DELAY_SCALE: f64 = 100.0;

/// Positions in [`STAGES`] of `--from` and `--until` (defaults: first and last stage).
fn range(args: &RunArgs) -> (usize, usize) {
    let position = |s: &Option<String>, default: usize| {
        s.as_deref()
            .and_then(|s| STAGES.iter().position(|x| *x == s))
            .unwrap_or(default)
    };
    (
        position(&args.from, 0),
        position(&args.until, STAGES.len() - 1),
    )
}

/// True when the run starts with the export stage, i.e. it may create the lake.
pub fn starts_with_export(args: &RunArgs) -> bool {
    range(args).0 == 0
}

/// Checks the options of `irtlake run` before anything runs (or a lake is opened):
/// `--from` not after `--until`, `--shards` (when given) in 1..=[`MAX_SHARDS`],
/// `--retry-delay-scale` finite in 0..=[`MAX_RETRY_DELAY_SCALE`], and a PostgreSQL
/// source when the run starts with export_attempts. Returns the stage range.
pub fn validate(args: &RunArgs) -> Result<(usize, usize)> {
    let (from, until) = range(args);
    anyhow::ensure!(
        from <= until,
        "--from {} comes after --until {}",
        STAGES[from],
        STAGES[until]
    );
    if let Some(n) = args.shards {
        anyhow::ensure!(
            (1..=MAX_SHARDS).contains(&n),
            "--shards {n} is out of range: give 1 to {MAX_SHARDS}"
        );
    }
    anyhow::ensure!(
        args.retry_delay_scale.is_finite()
            && (0.0..=MAX_RETRY_DELAY_SCALE).contains(&args.retry_delay_scale),
        "--retry-delay-scale {} is out of range: give a number from 0 to {MAX_RETRY_DELAY_SCALE}",
        args.retry_delay_scale
    );
    if from == 0
        && std::env::var_os("DATABASE_URL").is_none()
        && std::env::var_os("DATABASE_SECRET_ARN").is_none()
    {
        anyhow::bail!(
            "the pipeline starts with export_attempts, which needs DATABASE_URL (or \
             DATABASE_SECRET_ARN); set it, or start later with --from calibrate"
        );
    }
    Ok((from, until))
}

/// Runs `irtlake run`.
pub async fn run(lake: &Lake, args: RunArgs) -> Result<()> {
    let text = match &args.definition {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the state machine {}", p.display()))?,
        None => PIPELINE_ASL.to_string(),
    };
    let machine = StateMachine::parse(&text, |name| {
        name.strip_suffix("_arn")
            .filter(|s| STAGES.contains(s))
            .map(str::to_string)
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("loading the state machine definition")?;
    let (from, until) = validate(&args)?;
    let start = args.start_time.unwrap_or_else(chrono::Utc::now);
    let start_text = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut input = json!({ "banks": banks(lake, &args).await? });
    if let Some(n) = args.shards {
        input["shards"] = json!(n);
    }
    if let Some(n) = args.students_per_shard {
        input["students_per_shard"] = json!(n);
    }
    if let Some(d) = args.run_date {
        input["run_date"] = json!(d.format("%Y-%m-%d").to_string());
    }
    let name = format!("local-{}", start.format("%Y%m%dT%H%M%SZ"));
    let context = asl::context_object(
        &format!("local:irtlake-pipeline:{name}"),
        &name,
        &start_text,
        &input,
    );
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    let max_parallel = args.max_parallel.unwrap_or_else(asl::default_max_parallel);
    let invoker = LocalInvoker {
        lake,
        env: StageEnv::from_env()?,
        max_parallel,
        from,
        until,
        faults: args.inject_failure.clone(),
        injected: Mutex::new(HashMap::new()),
        backfill_from: args.backfill_from,
        calibrate_every: args.calibrate_every,
        calls: Mutex::new(Vec::new()),
        progress: progress.clone(),
    };
    let options = Options {
        retry_delay_scale: args.retry_delay_scale.max(0.0),
        max_parallel,
        ..Options::default()
    };
    let started = Instant::now();
    let result = machine.execute(&invoker, &options, input, context).await;
    progress.finish_and_clear();
    let calls = invoker.calls.into_inner().unwrap_or_default();
    match result {
        Ok(output) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&output)?);
            } else {
                print_table(&calls, started.elapsed());
                println!("execution {name}: succeeded");
            }
            Ok(())
        }
        Err(e) => {
            if !args.json {
                print_table(&calls, started.elapsed());
            }
            anyhow::bail!(
                "execution {name} failed (PipelineFailed): {}: {}",
                e.error,
                e.cause
            )
        }
    }
}

fn print_table(calls: &[Call], total: Duration) {
    println!("{:<22} {:>10} {:>9}  status", "stage", "rows", "seconds");
    for c in calls {
        println!(
            "{:<22} {:>10} {:>9.2}  {}",
            c.stage, c.rows, c.seconds, c.status
        );
    }
    println!(
        "{:<22} {:>10} {:>9.2}",
        "total",
        calls.iter().map(|c| c.rows).sum::<u64>(),
        total.as_secs_f64()
    );
}
