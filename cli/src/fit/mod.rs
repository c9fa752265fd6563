//! `irtlake fit …`: each model of the pipeline on a CSV file, for analysts and for
//! checks against reference implementations (R's `survival` and `lme4`, Prophet,
//! scikit-learn). No lake is opened.
//!
//! Every command reads one CSV with a header ([`table::Table`]), picks its columns by
//! name, writes its results into `--out DIR` (created if needed) and prints a JSON
//! summary on stdout. Bad input fails with a message naming the file, the column and
//! the row: an unknown column (the available ones are listed), a value that is not a
//! number (or not an event indicator, or not a `YYYY-MM-DD` date), and fewer rows than
//! the model needs (the message says how many).
//!
//! * `cox` → `coef.csv`, `baseline.csv`, `fit.json` ([`survival`])
//! * `km` → `km.csv` ([`survival`])
//! * `lmm` → `fixed.csv`, `varcomp.json`, `blups.csv` ([`growth`])
//! * `glmm` → `fixed.csv`, `varcomp.json`, `fit.json`, `blups.csv` ([`glmm`])
//! * `growth` → `summary.csv`, `groups.csv`, `fit.json` ([`growth`])
//! * `kmeans` → `centers.csv`, `labels.csv`, `fit.json` ([`kmeans`])
//! * `forecast` → `forecast.csv`, `anomalies.csv`, `fit.json` ([`forecast`])

mod forecast;
mod glmm;
mod growth;
mod kmeans;
mod survival;
mod table;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// `irtlake fit …`
#[derive(Debug, clap::Subcommand)]
pub enum FitCommand {
    /// Cox proportional hazards: coef.csv, baseline.csv, fit.json.
    Cox(survival::CoxArgs),
    /// Kaplan–Meier curve with Greenwood SEs: km.csv.
    Km(survival::KmArgs),
    /// Linear growth mixed model y ~ time + (time | group) by REML or ML: fixed.csv,
    /// varcomp.json, blups.csv.
    Lmm(growth::LmmArgs),
    /// Logistic mixed growth model (binomial GLMM, Laplace, as lme4's glmer):
    /// y ~ time + covariates + (time | group) or (1 | group); fixed.csv, varcomp.json,
    /// fit.json, blups.csv.
    Glmm(glmm::GlmmArgs),
    /// Bayesian hierarchical linear growth (NUTS): summary.csv, groups.csv, fit.json.
    Growth(growth::GrowthArgs),
    /// k-means (k-means++, restarts, seeded): centers.csv, labels.csv, fit.json.
    Kmeans(kmeans::KMeansArgs),
    /// Prophet-style daily forecast with anomalies: forecast.csv, anomalies.csv, fit.json.
    Forecast(forecast::ForecastArgs),
}

/// Runs a `fit` subcommand.
pub fn run(cmd: FitCommand) -> Result<()> {
    match cmd {
        FitCommand::Cox(a) => survival::cox(a),
        FitCommand::Km(a) => survival::km(a),
        FitCommand::Lmm(a) => growth::lmm(a),
        FitCommand::Glmm(a) => glmm::glmm(a),
        FitCommand::Growth(a) => growth::growth(a),
        FitCommand::Kmeans(a) => kmeans::kmeans(a),
        FitCommand::Forecast(a) => forecast::forecast(a),
    }
}

/// Creates the output folder.
fn out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// A CSV output file with its header written.
struct CsvOut {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
}

impl CsvOut {
    fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Self> {
        let path = dir.join(name);
        let mut writer = csv::Writer::from_path(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writer
            .write_record(header)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self { path, writer })
    }

    /// Writes one record (fields are quoted when needed).
    fn row<I, S>(&mut self, fields: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.writer
            .write_record(fields)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn finish(mut self) -> Result<()> {
        self.writer
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// A number for a CSV field: shortest round-trip decimal, exponent notation for very
/// small or large magnitudes, empty for NaN or infinity.
fn num(v: f64) -> String {
    if !v.is_finite() {
        String::new()
    } else if v != 0.0 && !(1e-4..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Writes `value` as pretty JSON to `dir/name`.
fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Prints the command's JSON summary on stdout (a closed pipe, as in `… | head`, is
/// not an error: the outputs are already written).
fn print_summary(value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Fails when a column is named twice in a list option.
fn no_duplicates(option: &str, names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            anyhow::bail!("{option}: column '{n}' is given twice");
        }
    }
    if names.is_empty() {
        anyhow::bail!("{option}: no column given");
    }
    Ok(())
}
