//! `irtlake fit cox` and `irtlake fit km`: [`models::survival`] on one row per subject
//! (time ≥ 0, event 0/1/true/false, covariates), with R `survival`'s conventions.

use std::path::PathBuf;

use anyhow::{Result, bail};
use models::survival::{Covariates, CoxConfig, SurvivalError, Ties, cox_ph, kaplan_meier};
use serde_json::json;

use super::table::Table;
use super::{CsvOut, no_duplicates, num, out_dir, print_summary, write_json};

/// Handling of tied event times.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TiesArg {
    /// Efron's approximation (R's coxph default).
    Efron,
    /// Breslow's approximation.
    Breslow,
}

/// Options of `irtlake fit cox`.
#[derive(Debug, clap::Args)]
pub struct CoxArgs {
    /// CSV with a header, one row per subject.
    #[arg(long)]
    pub data: PathBuf,
    /// Column of the observed times (event or censoring), ≥ 0.
    #[arg(long)]
    pub time: String,
    /// Column of the event indicators: 1/true = event, 0/false = censored.
    #[arg(long)]
    pub event: String,
    /// Covariate columns, comma-separated (numeric).
    #[arg(long, value_delimiter = ',', required = true)]
    pub covariates: Vec<String>,
    /// Tied event times.
    #[arg(long, value_enum, default_value = "efron")]
    pub ties: TiesArg,
    /// Output folder: coef.csv (term, coef, se, z, p), baseline.csv (time, cumhaz,
    /// cumhaz_centered), fit.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `irtlake fit km`.
#[derive(Debug, clap::Args)]
pub struct KmArgs {
    /// CSV with a header, one row per subject.
    #[arg(long)]
    pub data: PathBuf,
    /// Column of the observed times (event or censoring), ≥ 0.
    #[arg(long)]
    pub time: String,
    /// Column of the event indicators: 1/true = event, 0/false = censored.
    #[arg(long)]
    pub event: String,
    /// Output folder: km.csv (time, n_risk, events, surv, se).
    #[arg(long)]
    pub out: PathBuf,
}

/// `irtlake fit cox`.
pub fn cox(args: CoxArgs) -> Result<()> {
    let table = Table::read(&args.data)?;
    no_duplicates("--covariates", &args.covariates)?;
    let p = args.covariates.len();
    let time = table.times(&args.time)?;
    let event = table.events(&args.event)?;
    let rows = table.numeric_rows(&args.covariates)?;
    table.require_rows(
        p + 1,
        &format!(
            "the Cox model with {p} covariate{}",
            if p == 1 { "" } else { "s" }
        ),
    )?;
    if !event.iter().any(|&e| e) {
        bail!(
            "{}: column '{}' has no events (every row is censored): the Cox model needs at least one",
            table.path().display(),
            args.event
        );
    }
    let x = Covariates::from_rows(&rows)?;
    let config = CoxConfig {
        ties: match args.ties {
            TiesArg::Efron => Ties::Efron,
            TiesArg::Breslow => Ties::Breslow,
        },
        ..CoxConfig::default()
    };
    let fit = cox_ph(&time, &event, &x, &config).map_err(|e| {
        let file = table.path().display();
        match e {
            SurvivalError::ConstantCovariate { index, value } => anyhow::anyhow!(
                "{file}: covariate column '{}' is constant ({value} on every row): its coefficient is not identified",
                args.covariates[index]
            ),
            SurvivalError::SingularInformation { index } => anyhow::anyhow!(
                "{file}: covariate column '{}' is collinear with {} (or carries no information at the event times): singular information matrix",
                args.covariates[index],
                if index == 0 {
                    "nothing".to_string()
                } else {
                    args.covariates[..index].join(", ")
                }
            ),
            e => anyhow::anyhow!("{file}: Cox model: {e}"),
        }
    })?;

    out_dir(&args.out)?;
    let mut w = CsvOut::create(&args.out, "coef.csv", &["term", "coef", "se", "z", "p"])?;
    for (j, term) in args.covariates.iter().enumerate() {
        w.row([
            term.clone(),
            num(fit.coefficients[j]),
            num(fit.se[j]),
            num(fit.z[j]),
            num(fit.p_values[j]),
        ])?;
    }
    w.finish()?;
    let mut w = CsvOut::create(
        &args.out,
        "baseline.csv",
        &["time", "cumhaz", "cumhaz_centered"],
    )?;
    let b = &fit.baseline;
    for ((t, h), hc) in b.times.iter().zip(&b.cumhaz).zip(&b.cumhaz_centered) {
        w.row([num(*t), num(*h), num(*hc)])?;
    }
    w.finish()?;
    let summary = json!({
        "model": "cox",
        "data": args.data.display().to_string(),
        "ties": fit.ties.as_str(),
        "n": fit.n,
        "events": fit.events,
        "loglik": fit.loglik,
        "loglik_null": fit.loglik_null,
        "lr_statistic": fit.lr_statistic(),
        "lr_df": fit.p(),
        "lr_p": fit.lr_p_value(),
        "concordance": fit.concordance.value,
        "concordant": fit.concordance.concordant,
        "discordant": fit.concordance.discordant,
        "tied_risk": fit.concordance.tied_risk,
        "iterations": fit.iterations,
        "converged": fit.converged,
        "possibly_infinite": fit
            .possibly_infinite
            .iter()
            .map(|&j| args.covariates[j].as_str())
            .collect::<Vec<_>>(),
        "terms": args.covariates,
        "hazard_ratios": fit.hazard_ratios(),
        "means": fit.means,
        "baseline": "cumhaz: H0(t) at covariates 0 (R basehaz(centered = FALSE)); cumhaz_centered: at the covariate means",
    });
    write_json(&args.out, "fit.json", &summary)?;
    if !fit.converged {
        eprintln!(
            "warning: the Cox fit did not converge in {} iterations",
            fit.iterations
        );
    }
    if !fit.possibly_infinite.is_empty() {
        eprintln!(
            "warning: coefficient(s) may be infinite (monotone likelihood): {}",
            summary["possibly_infinite"]
        );
    }
    print_summary(&summary)
}

/// `irtlake fit km`.
pub fn km(args: KmArgs) -> Result<()> {
    let table = Table::read(&args.data)?;
    let time = table.times(&args.time)?;
    let event = table.events(&args.event)?;
    table.require_rows(1, "the Kaplan–Meier estimator")?;
    let km = kaplan_meier(&time, &event)
        .map_err(|e| anyhow::anyhow!("{}: Kaplan–Meier: {e}", table.path().display()))?;
    out_dir(&args.out)?;
    let mut w = CsvOut::create(
        &args.out,
        "km.csv",
        &["time", "n_risk", "events", "surv", "se"],
    )?;
    for r in &km.rows {
        w.row([
            num(r.time),
            r.n_risk.to_string(),
            r.events.to_string(),
            num(r.surv),
            num(r.se),
        ])?;
    }
    w.finish()?;
    print_summary(&json!({
        "model": "km",
        "data": args.data.display().to_string(),
        "n": km.n,
        "events": km.events,
        "censored": km.censored,
        "median": km.median(),
        "rows": km.rows.len(),
    }))
}
