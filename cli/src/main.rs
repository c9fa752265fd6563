//! `irtlake`: the command line of the irtlake IRT analytics pipeline.

mod anchors;
mod demo;
mod irt;
mod output;
mod sql;
mod status;

use std::path::PathBuf;

use anyhow::{Context, Result};
use arrow::array::Array;
use clap::{Parser, Subcommand, ValueEnum};
use lake::Lake;

/// IRT analytics over a data lake: calibrate items, score students, KPIs, reports.
#[derive(Debug, Parser)]
#[command(name = "irtlake", version, about, propagate_version = true)]
struct Cli {
    /// The lake: file://PATH (relative or absolute) or s3://BUCKET/PREFIX.
    #[arg(long, global = true, env = "LAKE_URI", default_value = lake::DEFAULT_LAKE_URI)]
    lake: String,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a platform export (CSV or Parquet) into the lake.
    Ingest {
        /// What the file holds.
        kind: IngestKind,
        /// The file (.csv or .parquet).
        file: PathBuf,
    },
    /// Run SQL over every lake table (DataFusion).
    Sql {
        /// The statement(s); or use -f.
        query: Option<String>,
        /// Read the SQL from a file (several statements separated by ';').
        #[arg(short = 'f', long = "file", conflicts_with = "query")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
    },
    /// Print what the lake holds: rows per table, attempt dates, anchors.
    Status,
    /// Generate a realistic, deterministic demo platform into the lake.
    DemoData(demo::DemoArgs),
    /// Calibrate one bank (stage calibrate): item_params, abilities, fit_meta.
    Calibrate(CalibrateArgs),
    /// Anchor questions: tag candidates from the latest calibration.
    #[command(subcommand)]
    Anchors(anchors::AnchorsCommand),
    /// The IRT engine on files (no lake): fit and score.
    #[command(subcommand)]
    Irt(irt::IrtCommand),
}

/// Options of `irtlake calibrate` (see the calibrate stage for defaults).
#[derive(Debug, clap::Args)]
struct CalibrateArgs {
    /// Last day of the window (UTC); default today.
    #[arg(long)]
    run_date: Option<chrono::NaiveDate>,
    /// rasch, 2pl (default) or 3pl.
    #[arg(long)]
    model: Option<String>,
    /// all (default), subject:<id> or topic:<id>; repeat for several banks.
    #[arg(long)]
    bank: Vec<String>,
    /// Days in the window (default 60).
    #[arg(long)]
    lookback_days: Option<u32>,
    /// Most recent observations kept (default 500000).
    #[arg(long)]
    max_obs: Option<usize>,
    /// none, mean-mean, mean-sigma, stocking-lord, haebara, fixed (default: stocking-lord with >= 5 anchors).
    #[arg(long)]
    link: Option<String>,
    /// Quadrature points (default 61).
    #[arg(long)]
    quadpts: Option<usize>,
    /// EM tolerance (default 1e-4).
    #[arg(long)]
    tol: Option<f64>,
    /// EM cycles at most (default 2000).
    #[arg(long)]
    max_iter: Option<usize>,
    /// Prior on c for 3PL: none or beta:A,B (default beta:5,17).
    #[arg(long)]
    prior_c: Option<String>,
    /// Also calibrate every subject bank.
    #[arg(long)]
    all_subjects: bool,
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Irt(cmd) = cli.command {
        return irt::run(cmd);
    }
    let lake = Lake::open(&cli.lake).with_context(|| format!("opening lake {}", cli.lake))?;
    match cli.command {
        Command::Ingest { kind, file } => {
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
        } => {
            let text = match (query, file) {
                (Some(q), None) => q,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading SQL from {}", f.display()))?,
                _ => anyhow::bail!("give a query or -f FILE"),
            };
            sql::run_sql(&lake, &text, format, &mut std::io::stdout()).await?;
        }
        Command::Status => status::print_status(&lake).await?,
        Command::DemoData(args) => demo::demo_data(&lake, &args).await?,
        Command::Calibrate(args) => calibrate_banks(&lake, args).await?,
        Command::Anchors(cmd) => anchors::run(&lake, cmd).await?,
        Command::Irt(_) => unreachable!("handled before opening the lake"),
    }
    Ok(())
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
        let batches = lake
            .sql(
                "SELECT DISTINCT subject_id FROM questions WHERE subject_id IS NOT NULL ORDER BY 1",
            )
            .await?;
        for b in &batches {
            let col = arrow::array::AsArray::as_string::<i32>(b.column(0));
            banks.extend((0..col.len()).map(|i| format!("subject:{}", col.value(i))));
        }
    }
    for bank in banks {
        let mut input = calibrate::CalibrateInput::new(run_date);
        input.bank = Some(bank.parse().with_context(|| format!("--bank {bank}"))?);
        input.model = args.model.clone();
        input.lookback_days = args.lookback_days;
        input.max_obs = args.max_obs;
        input.link = args.link.clone();
        input.quadpts = args.quadpts;
        input.tol = args.tol;
        input.max_iter = args.max_iter;
        input.prior_c = args.prior_c.clone();
        let out = calibrate::run(lake, &input)
            .await
            .with_context(|| format!("calibrating bank {bank} for {run_date}"))?;
        println!("{}", serde_json::to_string(&out)?);
    }
    Ok(())
}
