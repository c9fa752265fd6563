//! `irtlake fit glmm`: the logistic mixed growth model of [`models::growth`] (binomial
//! GLMM with logit link by the Laplace approximation, as lme4's
//! `glmer(…, family = binomial)`) on long data: one row per observation with a 0/1
//! outcome, or successes out of `--trials`.
//!
//! The model is `y ~ [time +] covariates + factors + (1 | group)` with
//! `--random intercept`, or `y ~ time + covariates + factors + (time | group)` with
//! `--random slope` (the default, which needs `--time`). `--factor COL` enters a
//! categorical column by treatment coding as R's default contrasts do: one 0/1 column
//! named COL + level for every level but the first, the first level being the
//! reference. Levels are ordered numerically when every level is a number (as R orders
//! a numeric column turned into a factor), else by byte order of the text (R's order in
//! the C locale).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Result, bail};
use models::growth::{
    GlmmConfig, GlmmData, GlmmFit, GlmmRows, GrowthError, RandomEffects, fit_glmm,
};
use serde_json::json;

use super::table::Table;
use super::{CsvOut, no_duplicates, num, out_dir, print_summary, write_json};

/// Random effects of `fit glmm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RandomArg {
    /// `(1 | group)`: a random intercept per group.
    Intercept,
    /// `(time | group)`: correlated random intercept and slope on `--time`.
    Slope,
}

/// Options of `irtlake fit glmm`.
#[derive(Debug, clap::Args)]
pub struct GlmmArgs {
    /// Long CSV with a header: one row per observation.
    #[arg(long)]
    pub data: PathBuf,
    /// Response column: a 0/1 outcome per row (1/0 or true/false), or with `--trials`
    /// the number of successes (a whole number from 0 to the row's trials).
    #[arg(long)]
    pub y: String,
    /// Trials column (whole numbers >= 1): y successes out of this many.
    #[arg(long)]
    pub trials: Option<String>,
    /// Time column (numeric, not centred: the intercept is the log-odds at time 0). A
    /// fixed effect, and the covariate of the random slope; required by
    /// `--random slope`.
    #[arg(long)]
    pub time: Option<String>,
    /// Group column (any text, e.g. student id).
    #[arg(long)]
    pub group: String,
    /// Random effects: intercept `(1 | group)` or intercept and slope `(time | group)`.
    #[arg(long, value_enum, default_value = "slope")]
    pub random: RandomArg,
    /// Numeric fixed-effect covariates, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub covariates: Vec<String>,
    /// Categorical fixed effects, comma-separated or repeated: treatment coding, the
    /// first level (numeric order if every level is a number, else text order) being
    /// the reference.
    #[arg(long = "factor", value_delimiter = ',')]
    pub factors: Vec<String>,
    /// Output folder: fixed.csv (term, estimate, se), varcomp.json, fit.json,
    /// blups.csv (group, intercept, slope).
    #[arg(long)]
    pub out: PathBuf,
}

/// A named numeric column of the fixed-effect design.
type Column = (String, Vec<f64>);

/// Treatment-coded dummies of column `name`: (levels in order, one (name + level,
/// 0/1 values) per level but the first).
fn factor_dummies(table: &Table, name: &str) -> Result<(Vec<String>, Vec<Column>)> {
    let values = table.strings(name)?;
    let distinct: BTreeSet<&str> = values.iter().map(String::as_str).collect();
    let mut levels: Vec<&str> = distinct.into_iter().collect();
    let numbers: Option<Vec<f64>> = levels
        .iter()
        .map(|l| l.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    if let Some(numbers) = numbers {
        let mut order: Vec<usize> = (0..levels.len()).collect();
        order.sort_by(|&a, &b| numbers[a].total_cmp(&numbers[b]));
        levels = order.into_iter().map(|i| levels[i]).collect();
    }
    if levels.len() < 2 {
        bail!(
            "{}: --factor {name}: the column has a single level '{}'; a factor needs at least two",
            table.path().display(),
            levels.first().copied().unwrap_or_default()
        );
    }
    let dummies = levels[1..]
        .iter()
        .map(|level| {
            let col = values
                .iter()
                .map(|v| if v == level { 1.0 } else { 0.0 })
                .collect();
            (format!("{name}{level}"), col)
        })
        .collect();
    Ok((levels.iter().map(|l| l.to_string()).collect(), dummies))
}

/// A GLMM error with the file and the columns named.
fn glmm_error(table: &Table, args: &GlmmArgs, e: GrowthError) -> anyhow::Error {
    let file = table.path().display();
    match e {
        GrowthError::TooFewGroups { groups, min } => anyhow::anyhow!(
            "{file}: column '{}' has {groups} group{}; the model needs at least {min}",
            args.group,
            if groups == 1 { "" } else { "s" }
        ),
        GrowthError::SlopeNotIdentifiable(m) => anyhow::anyhow!(
            "{file}: column '{}': slope not identifiable: {m} (use --random intercept)",
            args.time.as_deref().unwrap_or_default()
        ),
        GrowthError::TooFewObservations {
            n_obs,
            n_random_effects,
        } => anyhow::anyhow!(
            "{file}: {n_obs} rows for {n_random_effects} random effects (groups in column '{}' times effects per group): fewer observations than random effects, which glmer refuses too; use --random intercept or more rows per group",
            args.group
        ),
        e => anyhow::anyhow!("{file}: {e}"),
    }
}

/// Checks that no column is used twice across the options.
fn distinct_columns(args: &GlmmArgs) -> Result<()> {
    if !args.covariates.is_empty() {
        no_duplicates("--covariates", &args.covariates)?;
    }
    if !args.factors.is_empty() {
        no_duplicates("--factor", &args.factors)?;
    }
    let mut seen: Vec<(&str, &str)> = vec![("--y", &args.y), ("--group", &args.group)];
    if let Some(t) = &args.trials {
        seen.push(("--trials", t));
    }
    if let Some(t) = &args.time {
        seen.push(("--time", t));
    }
    seen.extend(args.covariates.iter().map(|c| ("--covariates", c.as_str())));
    seen.extend(args.factors.iter().map(|c| ("--factor", c.as_str())));
    for (i, (opt, col)) in seen.iter().enumerate() {
        if let Some((other, _)) = seen[..i].iter().find(|(_, c)| c == col) {
            bail!("column '{col}' is given to both {other} and {opt}");
        }
    }
    Ok(())
}

/// `irtlake fit glmm`.
pub fn glmm(args: GlmmArgs) -> Result<()> {
    distinct_columns(&args)?;
    let random = match args.random {
        RandomArg::Intercept => RandomEffects::Intercept,
        RandomArg::Slope => RandomEffects::InterceptSlope,
    };
    if random == RandomEffects::InterceptSlope && args.time.is_none() {
        bail!(
            "--random slope (the default) needs --time COL, the covariate of the random slope; use --random intercept for y ~ covariates + (1 | group)"
        );
    }
    let table = Table::read(&args.data)?;
    let file = table.path().display().to_string();

    let (successes, trials) = match &args.trials {
        Some(tc) => {
            let m = table.counts(tc, 1.0, "trials")?;
            let k = table.counts(&args.y, 0.0, "successes")?;
            if let Some(i) = k.iter().zip(&m).position(|(k, m)| k > m) {
                return Err(table.bad(
                    &args.y,
                    i,
                    format!("{} successes out of {} trials (column '{tc}')", k[i], m[i]),
                ));
            }
            (k, Some(m))
        }
        None => (
            table.binary(
                &args.y,
                " (without --trials each row is one 0/1 outcome; pass --trials COL for counts of successes)",
            )?,
            None,
        ),
    };
    let groups = table.strings(&args.group)?;
    let time = args.time.as_deref().map(|t| table.numeric(t)).transpose()?;
    let mut columns: Vec<Column> = Vec::new();
    if let (Some(name), Some(t)) = (&args.time, &time) {
        columns.push((name.clone(), t.clone()));
    }
    for c in &args.covariates {
        columns.push((c.clone(), table.numeric(c)?));
    }
    let mut factor_levels = serde_json::Map::new();
    for f in &args.factors {
        let (levels, dummies) = factor_dummies(&table, f)?;
        factor_levels.insert(f.clone(), json!(levels));
        columns.extend(dummies);
    }
    table.require_rows(random.min_groups(), "the GLMM")?;
    let total_k: f64 = successes.iter().sum();
    let total_m: f64 = trials
        .as_ref()
        .map_or(successes.len() as f64, |m| m.iter().sum());
    if total_k == 0.0 || total_k == total_m {
        bail!(
            "{file}: column '{}': {} of {total_m} trials are successes; a binomial model needs both outcomes",
            args.y,
            total_k
        );
    }

    let covariates: Vec<(&str, &[f64])> = columns
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let (data, keys) = GlmmData::from_ids(&GlmmRows {
        group: &groups,
        successes: &successes,
        trials: trials.as_deref(),
        covariates: &covariates,
        time: time.as_deref(),
    })
    .map_err(|e| glmm_error(&table, &args, e))?;
    let config = GlmmConfig {
        random,
        ..GlmmConfig::default()
    };
    let fit: GlmmFit = fit_glmm(&data, &config).map_err(|e| glmm_error(&table, &args, e))?;
    write_outputs(&args, &keys, &fit, &data, factor_levels)
}

fn write_outputs(
    args: &GlmmArgs,
    keys: &[String],
    fit: &GlmmFit,
    data: &GlmmData,
    factor_levels: serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    out_dir(&args.out)?;
    let mut w = CsvOut::create(&args.out, "fixed.csv", &["term", "estimate", "se"])?;
    for f in &fit.fixed {
        w.row([f.term.clone(), num(f.estimate), num(f.se)])?;
    }
    w.finish()?;
    let mut w = CsvOut::create(&args.out, "blups.csv", &["group", "intercept", "slope"])?;
    for (k, b) in keys.iter().zip(&fit.blups) {
        w.row([
            k.clone(),
            num(b.intercept),
            b.slope.map(num).unwrap_or_default(),
        ])?;
    }
    w.finish()?;
    // serialises as `intercept` / `slope`
    let random = fit.random;
    let varcomp = json!({
        "random": random,
        "sd_intercept": fit.sd_intercept,
        "sd_slope": fit.sd_slope,
        "corr": fit.corr,
        "theta": fit.theta,
    });
    write_json(&args.out, "varcomp.json", &varcomp)?;
    let fixed: serde_json::Map<String, serde_json::Value> = fit
        .fixed
        .iter()
        .map(|f| {
            (
                f.term.clone(),
                json!({"estimate": f.estimate, "se": f.se, "z": f.z_value}),
            )
        })
        .collect();
    let summary = json!({
        "model": "glmm",
        "family": "binomial",
        "link": "logit",
        "method": "Laplace (nAGQ = 1)",
        "data": args.data.display().to_string(),
        "random": random,
        "loglik": fit.log_likelihood,
        "deviance": fit.deviance,
        "aic": fit.aic,
        "bic": fit.bic,
        "iterations": fit.evaluations,
        "iterations_are": "evaluations of the Laplace deviance (both optimiser stages, polishing, derivatives)",
        "evaluations_stage1": fit.evaluations_stage1,
        "converged": fit.converged,
        "singular": fit.singular,
        "max_gradient": fit.max_gradient,
        "vcov": fit.vcov_method,
        "n_obs": fit.n_obs,
        "n_groups": fit.n_groups,
        "n_params": fit.n_params,
        "ln_choose": data.ln_choose_sum(),
        "fixed": fixed,
        "factor_levels": factor_levels,
        "sd_intercept": fit.sd_intercept,
        "sd_slope": fit.sd_slope,
        "corr": fit.corr,
    });
    write_json(&args.out, "fit.json", &summary)?;
    if !fit.converged {
        eprintln!(
            "warning: the fit did not converge ({} evaluations, max gradient {:?})",
            fit.evaluations, fit.max_gradient
        );
    }
    if fit.singular {
        eprintln!("warning: boundary (singular) fit: a variance is 0 or |corr| = 1");
    }
    print_summary(&summary)
}
