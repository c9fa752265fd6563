//! `irtlake fit lmm` and `irtlake fit growth`: the linear growth model
//! y = (β₀ + u₀ᵢ) + (β₁ + u₁ᵢ)·time + ε of [`models::growth`] on long data (one row per
//! observation: y, time, group), by REML/ML and by NUTS.

use std::path::PathBuf;

use anyhow::Result;
use models::growth::{
    BayesConfig, BayesPriors, DEFAULT_MAX_RHAT, GrowthData, GrowthError, LmmConfig, LmmMethod,
    MIN_GROUPS, fit_bayes, fit_lmm,
};
use serde_json::json;

use super::table::Table;
use super::{CsvOut, num, out_dir, print_summary, write_json};

/// Estimation criterion of `fit lmm`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MethodArg {
    /// Restricted maximum likelihood (lme4's default).
    Reml,
    /// Maximum likelihood.
    Ml,
}

/// Options of `irtlake fit lmm`.
#[derive(Debug, clap::Args)]
pub struct LmmArgs {
    /// Long CSV with a header: one row per observation.
    #[arg(long)]
    pub data: PathBuf,
    /// Response column (numeric).
    #[arg(long)]
    pub y: String,
    /// Time column (numeric, not centred: the intercept is the level at time 0).
    #[arg(long)]
    pub time: String,
    /// Group column (any text, e.g. student id).
    #[arg(long)]
    pub group: String,
    /// REML or ML.
    #[arg(long, value_enum, default_value = "reml")]
    pub method: MethodArg,
    /// Output folder: fixed.csv (term, estimate, se), varcomp.json, blups.csv
    /// (group, u0, u1).
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `irtlake fit growth`. The default priors are the pipeline's, made for θ
/// (logits): set the `--prior-*` options for data in other units.
#[derive(Debug, clap::Args)]
pub struct GrowthArgs {
    /// Long CSV with a header: one row per observation.
    #[arg(long)]
    pub data: PathBuf,
    /// Response column (numeric).
    #[arg(long)]
    pub y: String,
    /// Time column (numeric).
    #[arg(long)]
    pub time: String,
    /// Group column (any text).
    #[arg(long)]
    pub group: String,
    /// Goal: p_goal is the posterior probability that the group's mean reaches it.
    #[arg(long, value_parser = crate::bounds::f64_in(-1e6, 1e6), allow_negative_numbers = true)]
    pub goal: f64,
    /// Time at which the goal is judged.
    #[arg(long, value_parser = crate::bounds::f64_in(-1e6, 1e6), allow_negative_numbers = true)]
    pub target_time: f64,
    /// Chains (run in parallel), 1 to 64.
    #[arg(long, value_parser = crate::bounds::usize_in(1, 64), default_value_t = 4)]
    pub chains: usize,
    /// Kept draws per chain (1 to 100,000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 100_000), default_value_t = 1000)]
    pub draws: usize,
    /// Warm-up iterations per chain (discarded), 1 to 100,000.
    #[arg(long, value_parser = crate::bounds::usize_in(1, 100_000), default_value_t = 1000)]
    pub warmup: usize,
    /// Seed (results are a deterministic function of it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prior mean of the intercept β₀.
    #[arg(long, value_parser = crate::bounds::f64_in(-1e6, 1e6), default_value_t = 0.0, allow_negative_numbers = true)]
    pub prior_intercept_mean: f64,
    /// Prior SD of β₀ (> 0).
    #[arg(long, value_parser = crate::bounds::f64_between(0.0, 1e6), default_value_t = 1.0)]
    pub prior_intercept_sd: f64,
    /// Prior mean of the slope β₁.
    #[arg(long, value_parser = crate::bounds::f64_in(-1e6, 1e6), default_value_t = 0.0, allow_negative_numbers = true)]
    pub prior_slope_mean: f64,
    /// Prior SD of β₁ (> 0).
    #[arg(long, value_parser = crate::bounds::f64_between(0.0, 1e6), default_value_t = 0.5)]
    pub prior_slope_sd: f64,
    /// Half-Cauchy scale of the three SDs (random intercept, random slope, residual) (> 0).
    #[arg(long, value_parser = crate::bounds::f64_between(0.0, 1e6), default_value_t = 1.0)]
    pub prior_sd_scale: f64,
    /// Output folder: summary.csv (parameter, mean, sd, rhat, ess), groups.csv
    /// (group, p_goal, mean_at_target), fit.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// Reads y, time and group and builds the growth data (groups in order of first
/// appearance); `what` names the model for the row-count message.
fn read(
    data: &std::path::Path,
    y: &str,
    time: &str,
    group: &str,
    min_rows: usize,
    what: &str,
) -> Result<(Table, GrowthData, Vec<String>)> {
    let table = Table::read(data)?;
    let yv = table.numeric(y)?;
    let tv = table.numeric(time)?;
    let gv = table.strings(group)?;
    table.require_rows(min_rows, what)?;
    let (d, keys) = GrowthData::from_ids(&gv, &tv, &yv)
        .map_err(|e| anyhow::anyhow!("{}: {e}", table.path().display()))?;
    Ok((table, d, keys))
}

/// A growth-model error with the file and the columns named.
fn growth_error(table: &Table, group: &str, time: &str, e: GrowthError) -> anyhow::Error {
    let file = table.path().display();
    match e {
        GrowthError::TooFewGroups { groups, min } => anyhow::anyhow!(
            "{file}: column '{group}' has {groups} group{}; the model needs at least {min}",
            if groups == 1 { "" } else { "s" }
        ),
        GrowthError::SlopeNotIdentifiable(m) => {
            anyhow::anyhow!("{file}: column '{time}': slope not identifiable: {m}")
        }
        e => anyhow::anyhow!("{file}: {e}"),
    }
}

/// `irtlake fit lmm`.
pub fn lmm(args: LmmArgs) -> Result<()> {
    let (table, data, keys) = read(
        &args.data,
        &args.y,
        &args.time,
        &args.group,
        2 * MIN_GROUPS + 1,
        &format!("the mixed model (at least {MIN_GROUPS} groups and more rows than 2 per group)"),
    )?;
    let config = LmmConfig {
        method: match args.method {
            MethodArg::Reml => LmmMethod::Reml,
            MethodArg::Ml => LmmMethod::Ml,
        },
        ..LmmConfig::default()
    };
    let fit =
        fit_lmm(&data, &config).map_err(|e| growth_error(&table, &args.group, &args.time, e))?;
    let method = match fit.method {
        LmmMethod::Reml => "reml",
        LmmMethod::Ml => "ml",
    };

    out_dir(&args.out)?;
    let mut w = CsvOut::create(&args.out, "fixed.csv", &["term", "estimate", "se"])?;
    w.row([
        "(Intercept)".to_string(),
        num(fit.intercept.estimate),
        num(fit.intercept.se),
    ])?;
    w.row([
        args.time.clone(),
        num(fit.slope.estimate),
        num(fit.slope.se),
    ])?;
    w.finish()?;
    let mut w = CsvOut::create(&args.out, "blups.csv", &["group", "u0", "u1"])?;
    for (k, b) in keys.iter().zip(&fit.blups) {
        w.row([k.clone(), num(b.u0), num(b.u1)])?;
    }
    w.finish()?;
    let v = &fit.variance;
    let summary = json!({
        "model": "lmm",
        "data": args.data.display().to_string(),
        "method": method,
        "sd_intercept": v.sd_intercept,
        "sd_slope": v.sd_slope,
        "corr": v.corr,
        "sd_residual": v.sd_residual,
        "criterion": fit.criterion,
        "criterion_is": if method == "reml" { "REML criterion (-2 restricted log-likelihood)" } else { "deviance (-2 log-likelihood)" },
        "log_likelihood": fit.log_likelihood,
        "fixed": {
            "(Intercept)": {"estimate": fit.intercept.estimate, "se": fit.intercept.se, "t": fit.intercept.t_value},
            args.time.clone(): {"estimate": fit.slope.estimate, "se": fit.slope.se, "t": fit.slope.t_value},
        },
        "n_obs": fit.n_obs,
        "n_groups": fit.n_groups,
        "evaluations": fit.evaluations,
        "converged": fit.converged,
        "singular": fit.singular,
    });
    write_json(&args.out, "varcomp.json", &summary)?;
    if !fit.converged {
        eprintln!(
            "warning: the optimiser did not converge in {} evaluations",
            fit.evaluations
        );
    }
    if fit.singular {
        eprintln!("warning: boundary (singular) fit: a variance is 0 or |corr| = 1");
    }
    print_summary(&summary)
}

/// `irtlake fit growth`.
pub fn growth(args: GrowthArgs) -> Result<()> {
    let (table, data, keys) = read(
        &args.data,
        &args.y,
        &args.time,
        &args.group,
        MIN_GROUPS + 1,
        &format!(
            "the growth model (at least {MIN_GROUPS} groups, one of them observed at two times)"
        ),
    )?;
    let priors = BayesPriors {
        intercept_mean: args.prior_intercept_mean,
        intercept_sd: args.prior_intercept_sd,
        slope_mean: args.prior_slope_mean,
        slope_sd: args.prior_slope_sd,
        sd_intercept_scale: args.prior_sd_scale,
        sd_slope_scale: args.prior_sd_scale,
        sigma_scale: args.prior_sd_scale,
        ..BayesPriors::default()
    };
    let config = BayesConfig {
        chains: args.chains,
        warmup: args.warmup,
        draws: args.draws,
        seed: args.seed,
        ..BayesConfig::default()
    };
    let fit = fit_bayes(&data, &priors, &config)
        .map_err(|e| growth_error(&table, &args.group, &args.time, e))?;
    let groups = fit.forecast(args.target_time, args.goal);

    out_dir(&args.out)?;
    let mut w = CsvOut::create(
        &args.out,
        "summary.csv",
        &["parameter", "mean", "sd", "rhat", "ess"],
    )?;
    for p in &fit.params {
        w.row([
            p.name.clone(),
            num(p.mean),
            num(p.sd),
            num(p.rhat),
            num(p.ess_bulk),
        ])?;
    }
    w.finish()?;
    let mut w = CsvOut::create(
        &args.out,
        "groups.csv",
        &["group", "p_goal", "mean_at_target"],
    )?;
    for (k, g) in keys.iter().zip(&groups) {
        w.row([k.clone(), num(g.p_goal), num(g.mean)])?;
    }
    w.finish()?;
    let max_rhat = fit.max_rhat();
    let converged = fit.check_rhat(DEFAULT_MAX_RHAT);
    let summary = json!({
        "model": "growth",
        "data": args.data.display().to_string(),
        "n_obs": data.n_obs(),
        "n_groups": data.n_groups(),
        "goal": args.goal,
        "target_time": args.target_time,
        "chains": config.chains,
        "warmup": config.warmup,
        "draws": config.draws,
        "seed": config.seed,
        "priors": priors,
        "params": fit.params,
        "sigma_mean": fit.sigma_mean,
        "max_rhat": max_rhat,
        "rhat_ok": converged.is_ok(),
        "divergences": fit.divergences,
        "chain_stats": fit.chain_stats,
        "terms": {"beta0": "(Intercept)", "beta1": args.time},
    });
    write_json(&args.out, "fit.json", &summary)?;
    if let Err(e) = converged {
        eprintln!("warning: {e}: run more --warmup/--draws before trusting p_goal");
    }
    if fit.divergences > 0 {
        eprintln!(
            "warning: {} divergent transitions after warm-up",
            fit.divergences
        );
    }
    print_summary(&summary)
}
