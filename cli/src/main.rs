//! `irtlake`: the command line of the irtlake IRT analytics pipeline.

mod anchors;
mod bounds;
mod demo;
mod export;
mod fit;
mod irt;
mod lambda;
mod output;
mod report;
mod run;
mod secrets;
mod shell;
mod sql;
mod stages;
mod status;

use std::path::PathBuf;

use anyhow::{Context, Result};
use arrow::array::Array;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use lake::Lake;

/// IRT analytics over a data lake: calibrate items, score students, KPIs, reports.
#[derive(Debug, Parser)]
#[command(name = "irtlake", version, about, propagate_version = true)]
struct Cli {
    /// The lake of the command that follows, for the commands that use one (each also
    /// takes --lake after its name, with $LAKE_URI and the default there).
    #[arg(long = "lake", id = "lake_before_command", value_name = "URI")]
    lake: Option<String>,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// `--lake`, flattened into every command that reads or writes a lake (and only those:
/// `irt`, `fit` and `completions` have none).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LakeArgs {
    /// The lake: file://PATH (relative or absolute) or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URI", env = "LAKE_URI", default_value = lake::DEFAULT_LAKE_URI)]
    lake: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a platform export (CSV or Parquet) into the lake.
    Ingest {
        /// What the file holds.
        kind: IngestKind,
        /// The file (.csv or .parquet).
        file: PathBuf,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Read-only SQL over every lake table (DataFusion): queries, EXPLAIN, SHOW, DESCRIBE.
    /// Without a query: an interactive shell on a terminal, else the SQL read from stdin.
    Sql {
        /// The statement(s); or use -f, or stdin.
        query: Option<String>,
        /// Read the SQL from a file (several statements separated by ';'); `-` is stdin.
        #[arg(short = 'f', long = "file", conflicts_with = "query")]
        file: Option<PathBuf>,
        /// Output format (parquet needs --out).
        #[arg(long, value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
        /// Write the result of the one statement to this local file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Print what the lake holds: rows per table, attempt dates, anchors.
    Status(LakeArgs),
    /// Generate a realistic, deterministic demo platform into the lake.
    DemoData {
        #[command(flatten)]
        args: demo::DemoArgs,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Calibrate one bank (stage calibrate): item_params, abilities, fit_meta.
    Calibrate(CalibrateArgs),
    /// Run one downstream stage (plan, score_abilities, score_topics, features, kpis, churn, growth, forecast, segments).
    Stage(StageArgs),
    /// Anchor questions: tag candidates from the latest calibration.
    #[command(subcommand)]
    Anchors(anchors::AnchorsCommand),
    /// The pipeline's models on a CSV file (no lake): cox, km, lmm, growth, kmeans, forecast.
    #[command(subcommand)]
    Fit(fit::FitCommand),
    /// The IRT engine on files (no lake): fit and score.
    #[command(subcommand)]
    Irt(irt::IrtCommand),
    /// Export attempts and questions from the platform's PostgreSQL (stage export_attempts).
    Export {
        #[command(flatten)]
        args: export::ExportArgs,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Weekly HTML reports per student and for the cohort (stage reports).
    Report {
        #[command(flatten)]
        args: report::ReportArgs,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Run the pipeline's state machine (infra/statemachine/pipeline.asl.json) locally.
    Run {
        #[command(flatten)]
        args: run::RunArgs,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Print a shell completion script (no lake): e.g. `irtlake completions bash >
    /// ~/.local/share/bash-completion/completions/irtlake`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Options of `irtlake calibrate` (see the calibrate stage for defaults).
#[derive(Debug, clap::Args)]
struct CalibrateArgs {
    /// Last day of the window (UTC); default today.
    #[arg(long, value_parser = crate::bounds::date)]
    run_date: Option<chrono::NaiveDate>,
    /// rasch, 2pl (default) or 3pl.
    #[arg(long)]
    model: Option<String>,
    /// all (default), subject:<id> or topic:<id>; repeat for several banks.
    #[arg(long)]
    bank: Vec<String>,
    /// Days in the window (default 60) (1 to 3660).
    #[arg(long, value_parser = crate::bounds::u32_in(1, 3660))]
    lookback_days: Option<u32>,
    /// Attempts at most in the fit sample, a seeded random sample of students (default
    /// 500000) (1 to 50,000,000); every student of the window is scored whatever this value.
    #[arg(long, value_parser = crate::bounds::usize_in(1, 50_000_000))]
    max_obs: Option<usize>,
    /// Seed of the fit sample, student_bucket(student_id, seed) (default 0).
    #[arg(long)]
    sample_seed: Option<u64>,
    /// none, mean-mean, mean-sigma, stocking-lord, haebara, fixed (default: stocking-lord with >= 5 anchors).
    #[arg(long)]
    link: Option<String>,
    /// Quadrature points (default 61) (5 to 301).
    #[arg(long, value_parser = crate::bounds::usize_in(5, 301))]
    quadpts: Option<usize>,
    /// EM tolerance (default 1e-4) (1e-12 to 1).
    #[arg(long, value_parser = crate::bounds::f64_in(1e-12, 1.0))]
    tol: Option<f64>,
    /// EM cycles at most (default 2000) (1 to 100,000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 100_000))]
    max_iter: Option<usize>,
    /// Prior on c for 3PL: none or beta:A,B (default beta:5,17).
    #[arg(long)]
    prior_c: Option<String>,
    /// Also calibrate every subject bank.
    #[arg(long)]
    all_subjects: bool,
    /// Who scores the students: inline (default: this command writes abilities) or
    /// shards (fit only; `irtlake stage score-abilities --shard K --shards N` scores).
    #[arg(long, value_enum)]
    scoring: Option<ScoringArg>,
    /// Days of the drift screen's recent period, ending on the run date (default 7; 0:
    /// no time-split test of the anchors) (0 to 3659).
    #[arg(long, value_parser = crate::bounds::u32_in(0, 3659))]
    drift_recent_days: Option<u32>,
    #[command(flatten)]
    lake: LakeArgs,
}

/// `--scoring` of `irtlake calibrate`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScoringArg {
    /// This command scores every student of the window.
    Inline,
    /// Fit only: `irtlake stage score-abilities` scores the students by shard.
    Shards,
}

/// Options of `irtlake stage`.
#[derive(Debug, clap::Args)]
struct StageArgs {
    /// The stage.
    stage: StageName,
    /// The day the run is for (UTC); default today.
    #[arg(long, value_parser = crate::bounds::date)]
    run_date: Option<chrono::NaiveDate>,
    /// First day of a backfill range (features: days; kpis: weeks touching it).
    #[arg(long, value_parser = crate::bounds::date)]
    from: Option<chrono::NaiveDate>,
    /// Last day of a backfill range (default: the run date).
    #[arg(long, value_parser = crate::bounds::date)]
    to: Option<chrono::NaiveDate>,
    /// Id written on every row (default <stage>-<run_date>).
    #[arg(long)]
    run_id: Option<String>,
    /// Days of attempts looked back over (default 60) (1 to 3660).
    #[arg(long, value_parser = crate::bounds::u32_in(1, 3660))]
    lookback_days: Option<u32>,
    /// This invocation's student shard, 0 to --shards − 1 (default 0).
    #[arg(long, requires = "shards", value_parser = crate::bounds::u32_in(0, u64::from(lake::shard::MAX_SHARDS) - 1))]
    shard: Option<u32>,
    /// Number of student shards of the run, 1 to 1024 (default 1: every student). For
    /// `plan`: the shard count to plan (the lake is then not read).
    #[arg(long, value_parser = crate::bounds::u32_in(1, u64::from(lake::shard::MAX_SHARDS)))]
    shards: Option<u32>,
    /// plan only: target students per shard (100 to 10,000,000; default 25,000).
    #[arg(
        long,
        value_parser = clap::value_parser!(u64)
            .range(lake::plan::MIN_STUDENTS_PER_SHARD..=lake::plan::MAX_STUDENTS_PER_SHARD)
    )]
    students_per_shard: Option<u64>,
    #[command(flatten)]
    lake: LakeArgs,
}

/// Stages `irtlake stage` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StageName {
    /// The run's student shards (writes nothing): students with attempts / target size.
    Plan,
    /// Abilities (EAP θ) of the run date's calibrations scored by shard → abilities.
    ScoreAbilities,
    /// Topic θ per student → student_topic_theta.
    ScoreTopics,
    /// Daily features per student and topic → features_topic_daily.
    Features,
    /// Weekly KPIs → weekly_kpi.
    Kpis,
    /// Churn risk (Cox PH, Kaplan–Meier) → weekly_kpi.s, churn_fit.
    Churn,
    /// Growth (Bayesian NUTS, REML mixed model) → weekly_kpi.p/sigma, growth_fit.
    Growth,
    /// Cohort forecasts and anomalies → forecasts, anomalies.
    Forecast,
    /// k-means segments with labels → user_segment.
    Segments,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IngestKind {
    /// Attempts: attempt_id, student_id, question_id, correct, completed_at, …
    Attempts,
    /// Questions: question_id, subject_id, topic_id, tags, irt_a, irt_b, irt_c
    Questions,
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A closed stdout (e.g. `irtlake sql ... | head -1`) ends the process quietly, as
/// SIGPIPE does for other tools, instead of `println!` panicking with "Broken pipe".
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> Result<()> {
    if lambda::started_by_lambda() {
        return lambda::main();
    }
    exit_quietly_on_broken_pipe();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let lake = lake_uri(
        cli.lake.as_deref(),
        lake_args(&cli.command),
        lake_given_after_command(&matches),
        matches.subcommand_name().unwrap_or_default(),
    );
    init_tracing(cli.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = match lake {
        Ok(lake) => runtime.block_on(run(cli.command, lake)),
        Err(e) => Err(e),
    };
    // A closed pipe (`irtlake sql … | head`) ends quietly. arrow's CSV and JSON writers
    // keep only the text of the io::Error they hit, hence the message check.
    let broken_pipe = |e: &anyhow::Error| {
        e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                || c.to_string().contains("Broken pipe (os error 32)")
        })
    };
    match result {
        Err(e) if broken_pipe(&e) => std::process::exit(141),
        Err(e) => {
            eprint!("{}", error_report(&e));
            std::process::exit(1)
        }
        Ok(()) => Ok(()),
    }
}

/// An error as the command prints it: `Error: <what failed>`, then each cause once, one
/// per line. A cause whose text its parent already shows (a library error that repeats
/// its source's message) is left out, so no cause is printed twice.
fn error_report(e: &anyhow::Error) -> String {
    let mut lines: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if lines.last().is_some_and(|prev| prev.contains(text.trim())) {
            continue;
        }
        lines.push(text);
    }
    let mut out = format!("Error: {}\n", lines[0]);
    if lines.len() > 1 {
        out.push_str("\nCaused by:\n");
        for l in &lines[1..] {
            out.push_str(&format!("    {}\n", l.replace('\n', "\n    ")));
        }
    }
    out
}

/// Whether the command line gave `--lake` after the command's name (not from
/// `$LAKE_URI` or the default), in the innermost command's matches.
fn lake_given_after_command(matches: &clap::ArgMatches) -> bool {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    m.ids().any(|id| id.as_str() == "lake")
        && m.value_source("lake") == Some(clap::parser::ValueSource::CommandLine)
}

/// The `--lake` of a command that uses a lake; `None` for `irt`, `fit`, `completions`.
fn lake_args(command: &Command) -> Option<&LakeArgs> {
    match command {
        Command::Ingest { lake, .. }
        | Command::Sql { lake, .. }
        | Command::Status(lake)
        | Command::DemoData { lake, .. }
        | Command::Export { lake, .. }
        | Command::Report { lake, .. }
        | Command::Run { lake, .. } => Some(lake),
        Command::Calibrate(args) => Some(&args.lake),
        Command::Stage(args) => Some(&args.lake),
        Command::Anchors(anchors::AnchorsCommand::Tag(args)) => Some(&args.lake),
        Command::Fit(_) | Command::Irt(_) | Command::Completions { .. } => None,
    }
}

/// The lake URI of a command: `--lake` before the command's name (`irtlake --lake URI
/// sql …`, as scripts write it) or after it (`irtlake sql --lake URI …`), else
/// `$LAKE_URI`, else the default. Both given must agree; a command without a lake
/// refuses the one before its name.
fn lake_uri(
    before: Option<&str>,
    own: Option<&LakeArgs>,
    own_given: bool,
    name: &str,
) -> Result<Option<String>> {
    match (before, own) {
        (None, own) => Ok(own.map(|l| l.lake.clone())),
        (Some(before), None) => {
            anyhow::bail!("--lake {before}: `irtlake {name}` uses no lake")
        }
        (Some(before), Some(own)) if own_given && own.lake != before => anyhow::bail!(
            "--lake given twice with different lakes: {before} before `{name}`, {} after it",
            own.lake
        ),
        (Some(before), Some(_)) => Ok(Some(before.to_string())),
    }
}

/// Runs `command` on the lake at `lake_uri` (`None` for the commands without a lake).
async fn run(command: Command, lake_uri: Option<String>) -> Result<()> {
    let command = match command {
        Command::Irt(cmd) => return irt::run(cmd),
        Command::Fit(cmd) => return fit::run(cmd),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "irtlake",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        other => other,
    };
    let uri = lake_uri.context("a command with a lake has a lake URI")?;
    if let Command::Run { args, .. } = &command {
        run::validate(args)?;
    }
    let lake = if creates_lake(&command) {
        Lake::open(&uri).with_context(|| format!("opening lake {uri}"))?
    } else {
        Lake::open_existing(&uri)
            .await
            .with_context(|| format!("opening lake {uri}"))?
            .with_context(|| {
                format!(
                    "no irtlake lake at {uri}: no table holds data there (check the URI; \
                     `irtlake demo-data`, `irtlake ingest` or `irtlake export` create a lake)"
                )
            })?
    };
    match command {
        Command::Ingest { kind, file, .. } => {
            let summary = match kind {
                IngestKind::Attempts => serde_json::to_value(
                    lake::ingest::ingest_attempts(&lake, &file)
                        .await
                        .with_context(|| format!("ingesting attempts from {}", file.display()))?,
                )?,
                IngestKind::Questions => serde_json::to_value(
                    lake::ingest::ingest_questions(&lake, &file)
                        .await
                        .with_context(|| format!("ingesting questions from {}", file.display()))?,
                )?,
            };
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Sql {
            query,
            file,
            format,
            out,
            ..
        } => sql_command(&lake, query, file, format, out).await?,
        Command::Status(_) => status::print_status(&lake).await?,
        Command::DemoData { args, .. } => demo::demo_data(&lake, &args).await?,
        Command::Calibrate(args) => calibrate_banks(&lake, args).await?,
        Command::Stage(args) => run_stage(&lake, args).await?,
        Command::Anchors(cmd) => anchors::run(&lake, cmd).await?,
        Command::Export { args, .. } => export::run(&lake, args).await?,
        Command::Report { args, .. } => report::run(&lake, args).await?,
        Command::Run { args, .. } => run::run(&lake, args).await?,
        Command::Irt(_) | Command::Fit(_) | Command::Completions { .. } => {
            unreachable!("handled before opening the lake")
        }
    }
    Ok(())
}

/// True for the commands that may create the lake (`demo-data`, `ingest`, `export`, and
/// `run` when its range starts with the export stage); every other command needs an
/// existing lake (see `lake::presence`) and creates nothing.
fn creates_lake(command: &Command) -> bool {
    match command {
        Command::Ingest { .. } | Command::DemoData { .. } | Command::Export { .. } => true,
        Command::Run { args, .. } => run::starts_with_export(args),
        _ => false,
    }
}

/// `irtlake sql`: the query argument, `-f FILE` (`-f -` is stdin), or, without either,
/// an interactive shell when stdin is a terminal and else the SQL script read from stdin.
async fn sql_command(
    lake: &Lake,
    query: Option<String>,
    file: Option<PathBuf>,
    format: output::Format,
    out: Option<PathBuf>,
) -> Result<()> {
    use std::io::{IsTerminal, Read};
    let read_stdin = || -> Result<String> {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading SQL from stdin")?;
        Ok(text)
    };
    let text = match (query, file) {
        (Some(q), _) => q,
        (None, Some(f)) if f.as_os_str() == "-" => read_stdin()?,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .with_context(|| format!("reading SQL from {}", f.display()))?,
        (None, None) if std::io::stdin().is_terminal() => {
            anyhow::ensure!(
                out.is_none(),
                "--out writes the result of one statement: give it as an argument or with -f"
            );
            return shell::run(lake, format).await;
        }
        (None, None) => read_stdin()?,
    };
    let mut stdout = std::io::stdout();
    let sink = match &out {
        Some(path) => sql::Sink::File(path),
        None => sql::Sink::Writer(&mut stdout),
    };
    sql::run_sql(lake, &text, format, sink).await
}

/// `subject:<id>` for every subject in `questions`, sorted.
pub(crate) async fn subject_banks(lake: &Lake) -> Result<Vec<String>> {
    let batches = lake
        .sql(include_str!("../../sql/cli/subjects.sql"))
        .await
        .context("listing the subjects in questions")?;
    let mut banks = Vec::new();
    for b in &batches {
        let col = arrow::array::AsArray::as_string::<i32>(b.column(0));
        banks.extend((0..col.len()).map(|i| format!("subject:{}", col.value(i))));
    }
    Ok(banks)
}

/// Runs the calibrate stage for each requested bank and prints the summaries.
async fn calibrate_banks(lake: &Lake, args: CalibrateArgs) -> Result<()> {
    let run_date = args
        .run_date
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut banks: Vec<String> = if args.bank.is_empty() {
        vec!["all".to_string()]
    } else {
        args.bank.clone()
    };
    if args.all_subjects {
        banks.extend(subject_banks(lake).await?);
    }
    for bank in banks {
        let mut input = calibrate::CalibrateInput::new(run_date);
        input.bank = Some(bank.parse().with_context(|| format!("--bank {bank}"))?);
        input.model = args.model.clone();
        input.lookback_days = args.lookback_days;
        input.max_obs = args.max_obs;
        input.sample_seed = args.sample_seed;
        input.link = args.link.clone();
        input.quadpts = args.quadpts;
        input.tol = args.tol;
        input.max_iter = args.max_iter;
        input.prior_c = args.prior_c.clone();
        input.drift_recent_days = args.drift_recent_days;
        input.scoring = args.scoring.map(|s| match s {
            ScoringArg::Inline => calibrate::Scoring::Inline,
            ScoringArg::Shards => calibrate::Scoring::Shards,
        });
        let out = calibrate::run(lake, &input)
            .await
            .with_context(|| format!("calibrating bank {bank} for {run_date}"))?;
        println!("{}", serde_json::to_string(&out)?);
    }
    Ok(())
}

/// Runs one downstream stage and prints its summary.
async fn run_stage(lake: &Lake, args: StageArgs) -> Result<()> {
    let name = args
        .stage
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let ctx = || format!("stage {name} on {}", lake.uri());
    if args.stage == StageName::Plan {
        anyhow::ensure!(
            args.shard.is_none()
                && args.from.is_none()
                && args.to.is_none()
                && args.run_id.is_none(),
            "stage plan takes --run-date, --lookback-days, --shards and --students-per-shard only"
        );
        let input = lake::plan::PlanInput {
            run_date: args.run_date,
            shards: args.shards,
            students_per_shard: args.students_per_shard,
            lookback_days: args.lookback_days,
        };
        let out = lake::plan::plan_shards(lake, &input)
            .await
            .with_context(ctx)?;
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    anyhow::ensure!(
        args.students_per_shard.is_none(),
        "--students-per-shard is an option of stage plan only"
    );
    let input = lake::runs::StageInput {
        run_date: args.run_date,
        run_id: args.run_id,
        run_ts: None,
        from: args.from,
        to: args.to,
        lookback_days: args.lookback_days,
        shard: args.shard,
        shards: args.shards,
    };
    let summary = match args.stage {
        StageName::Plan => unreachable!("handled above"),
        StageName::ScoreAbilities => serde_json::to_value(
            calibrate::score_abilities::run(lake, &input)
                .await
                .with_context(ctx)?,
        )?,
        StageName::ScoreTopics => {
            serde_json::to_value(score_topics::run(lake, &input).await.with_context(ctx)?)?
        }
        StageName::Features => {
            serde_json::to_value(features::run(lake, &input).await.with_context(ctx)?)?
        }
        StageName::Kpis => serde_json::to_value(kpis::run(lake, &input).await.with_context(ctx)?)?,
        StageName::Churn => {
            serde_json::to_value(churn::run(lake, &input).await.with_context(ctx)?)?
        }
        StageName::Growth => {
            serde_json::to_value(growth::run(lake, &input).await.with_context(ctx)?)?
        }
        StageName::Forecast => {
            serde_json::to_value(forecast::run(lake, &input).await.with_context(ctx)?)?
        }
        StageName::Segments => {
            serde_json::to_value(segments::run(lake, &input).await.with_context(ctx)?)?
        }
    };
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

#[cfg(test)]
mod error_report_tests {
    use super::error_report;

    /// Each cause once: a cause that only repeats its parent's text is left out.
    #[test]
    fn error_report_prints_each_cause_once() {
        let inner = std::io::Error::other("No field named nope.");
        let e = anyhow::Error::new(inner)
            .context("Schema error: No field named nope.")
            .context("planning statement 1");
        assert_eq!(
            error_report(&e),
            "Error: planning statement 1\n\nCaused by:\n    Schema error: No field named nope.\n"
        );
        let single = anyhow::anyhow!("no lake at x");
        assert_eq!(error_report(&single), "Error: no lake at x\n");
    }
}
