//! `irtlake irt fit|score|link`: the IRT engine on a file, as psychometricians use `mirt`
//! and `plink`.

mod link;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use lake::phases::Phases;
use models::calibration::{calibrate_linked_with, parse_prior_c};
use models::irt::{
    FitConfig, ItemParams, Model, Quadrature, ResponseMatrix, ScoreMethod, ScoringConfig,
    score_students,
};
use models::linking::LinkingMethod;

/// `irtlake irt …`
#[derive(Debug, clap::Subcommand)]
pub enum IrtCommand {
    /// Calibrate items and score students from a long response file.
    Fit(FitArgs),
    /// Score students with fixed item parameters.
    Score(ScoreArgs),
    /// Link two calibrations from their item parameters (common items), like R plink.
    Link(link::LinkArgs),
}

/// Options of `irtlake irt fit`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// Long CSV or Parquet with student_id,question_id,correct.
    #[arg(long)]
    pub responses: PathBuf,
    /// rasch, 2pl or 3pl.
    #[arg(long, default_value = "2pl")]
    pub model: Model,
    /// Anchors with known parameters: CSV item_id,a,b,c.
    #[arg(long)]
    pub anchors: Option<PathBuf>,
    /// none, mean-mean, mean-sigma, stocking-lord, haebara or fixed. Default: stocking-lord
    /// with at least 5 anchors, else none.
    #[arg(long)]
    pub link: Option<LinkingMethod>,
    /// Prior on c for 3PL: none or beta:A,B (default beta:5,17).
    #[arg(long)]
    pub prior_c: Option<String>,
    /// Quadrature points on [-6, 6] (5 to 301).
    #[arg(long, value_parser = crate::bounds::usize_in(5, 301), default_value_t = 61)]
    pub quadpts: usize,
    /// Convergence tolerance (largest parameter change) (1e-12 to 1).
    #[arg(long, value_parser = crate::bounds::f64_in(1e-12, 1.0), default_value_t = 1e-4)]
    pub tol: f64,
    /// Most EM cycles (1 to 100,000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 100_000), default_value_t = 2000)]
    pub max_iter: usize,
    /// Items with fewer responses are excluded (at least 1).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 10_000_000), default_value_t = 20)]
    pub min_responses: usize,
    /// Anchor drift screen: |robust z| above this (with |b diff| >= 0.3, |ln a ratio| >=
    /// ln 1.5 and beyond 5 SEs) flags an anchor and leaves it out of the link.
    #[arg(long, value_parser = crate::bounds::f64_in(0.5, 100.0), default_value_t = 2.7)]
    pub drift_z: f64,
    /// Fewest anchors the link may keep after the drift screen; fewer refuses the fit.
    #[arg(long, value_parser = crate::bounds::usize_in(2, 100_000), default_value_t = 5)]
    pub min_anchors: usize,
    /// Link with every estimated anchor, without the drift screen.
    #[arg(long)]
    pub no_drift_screen: bool,
    /// Output folder (items.csv, scores.csv, fit.json; anchors.csv when linked).
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `irtlake irt score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Item parameters: CSV item_id,a,b,c (e.g. items.csv of `irt fit`).
    #[arg(long)]
    pub items: PathBuf,
    /// Long CSV or Parquet with student_id,question_id,correct.
    #[arg(long)]
    pub responses: PathBuf,
    /// eap, map or ml.
    #[arg(long, default_value = "eap")]
    pub method: ScoreMethod,
    /// Output CSV: student_id,theta,se,n_responses.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs an `irt` subcommand.
pub fn run(cmd: IrtCommand) -> Result<()> {
    match cmd {
        IrtCommand::Fit(a) => fit(a),
        IrtCommand::Score(a) => score(a),
        IrtCommand::Link(a) => link::link(a),
    }
}

fn fit(args: FitArgs) -> Result<()> {
    let mut phases = Phases::start();
    let responses = lake::files::read_responses(&args.responses)?;
    if responses.triplets.is_empty() {
        bail!("{}: no responses", args.responses.display());
    }
    if responses.repeats > 0 {
        tracing::warn!(
            repeats = responses.repeats,
            "repeated (student, question) rows: the first of each was kept"
        );
    }
    let (anchors, unknown_anchors) = match &args.anchors {
        Some(path) => read_anchors(path, &responses)?,
        None => (Vec::new(), Vec::new()),
    };
    let mut config = FitConfig::new(args.model);
    config.quadrature = Quadrature::new(args.quadpts, -6.0, 6.0)?;
    config.tol = args.tol;
    config.max_iter = args.max_iter;
    config.min_responses = args.min_responses;
    if let Some(p) = &args.prior_c {
        config.priors.c = parse_prior_c(p)?;
    }
    phases.mark("read");
    let m = ResponseMatrix::from_triplets(
        responses.students.len(),
        responses.questions.len(),
        &responses.triplets,
    )?;
    phases.mark("prepare");
    let rules = models::linking::DriftRules {
        z_threshold: args.drift_z,
        min_anchors: args.min_anchors,
        ..Default::default()
    };
    let screen = (!args.no_drift_screen).then_some(&rules);
    let cal = calibrate_linked_with(&m, config, &anchors, args.link, screen)?;
    phases.mark_parts(&cal.phases_ms(), "prepare");
    let item_fit = cal.item_fit(&m).context("item fit (S-X2, infit/outfit)")?;
    phases.mark("item_fit");

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_items_csv(
        &args.out.join("items.csv"),
        &responses.questions,
        &cal,
        &item_fit,
    )?;
    if !cal.drift.is_empty() {
        write_anchor_drift(
            &args.out.join("anchors.csv"),
            &responses.questions,
            &cal.drift,
        )?;
    }
    write_scores_csv(
        &args.out.join("scores.csv"),
        &responses.students,
        &cal.scores,
    )?;
    phases.mark("write");
    let fit = &cal.fit;
    let summary = serde_json::json!({
        "model": args.model.as_str(),
        "loglik": fit.loglik, "aic": fit.aic, "bic": fit.bic,
        "iterations": fit.iterations, "converged": fit.converged,
        "termination": fit.termination.as_str(),
        "n_students": fit.n_students_used, "n_students_excluded": fit.n_students_excluded,
        "n_items": cal.items.iter().filter(|i| i.excluded.is_none()).count(),
        "n_items_excluded": cal.items.iter().filter(|i| i.excluded.is_some()).count(),
        "n_responses": fit.n_responses_used,
        "latent": {"mean": fit.latent_mean, "sd": fit.latent_sd},
        "se_method": fit.se_method,
        "linking": {"method": cal.method.as_str(), "A": cal.constants.a, "B": cal.constants.b, "n_anchors_used": cal.n_anchors_used,
            "drift_screen": {"rounds": cal.drift_rounds, "flagged": cal.drift.iter().filter(|(_, d)| d.flagged).map(|(i, _)| responses.questions[*i].as_str()).collect::<Vec<_>>()}},
        "unknown_anchors": unknown_anchors,
        "item_fit": {
            "s_x2_note": item_fit.s_x2_note,
            "n_s_x2_p_below_0_01": item_fit.items.iter().filter(|f| f.s_x2.is_some_and(|x| x.p < 0.01)).count(),
        },
    });
    let json = FitJson {
        summary,
        elapsed_ms: phases.total_ms().round(),
        phases_ms: &phases,
    };
    std::fs::write(
        args.out.join("fit.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// An anchor: its item index and known parameters.
type Anchor = (usize, ItemParams);

/// The anchors of `path` (`item_id,a,b,c`) that have responses, as (item index, known
/// parameters), and the ids of those without responses (warned about, then ignored).
fn read_anchors(
    path: &std::path::Path,
    responses: &lake::files::Responses,
) -> Result<(Vec<Anchor>, Vec<String>)> {
    let mut anchors = Vec::new();
    let mut unknown = Vec::new();
    for (id, p) in lake::files::read_item_params(path, true)? {
        let (a, b, c) = p.context("anchor without parameters")?;
        match responses.question(&id) {
            Some(i) => anchors.push((i as usize, ItemParams { a, b, c })),
            None => unknown.push(id),
        }
    }
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} anchor(s) in {} have no responses and were ignored: {}",
            unknown.len(),
            path.display(),
            unknown
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok((anchors, unknown))
}

/// `items.csv`: each item's parameters on the final scale, SEs, responses, exclusion and
/// item fit (an excluded item has only its id, responses and reason).
fn write_items_csv(
    path: &std::path::Path,
    questions: &[String],
    cal: &models::calibration::LinkedCalibration,
    item_fit: &models::calibration::ItemFitReport,
) -> Result<()> {
    let mut w = create(path)?;
    writeln!(
        w,
        "item_id,a,b,c,se_a,se_b,se_c,n_responses,excluded_reason,\
         s_x2,df_s_x2,p_s_x2,infit,outfit,z_infit,z_outfit"
    )?;
    for ((id, it), f) in questions.iter().zip(&cal.items).zip(&item_fit.items) {
        if let Some(reason) = it.excluded {
            writeln!(
                w,
                "{},,,,,,,{},{},,,,,,,",
                csv_field(id),
                it.n_responses,
                csv_field(&reason.to_string())
            )?;
        } else {
            let se = |f: fn(&ItemParams) -> f64| {
                it.se.map(|s| format!("{:.6}", f(&s))).unwrap_or_default()
            };
            writeln!(
                w,
                "{},{:.6},{:.6},{:.6},{},{},{},{},,{}",
                csv_field(id),
                it.params.a,
                it.params.b,
                it.params.c,
                se(|s| s.a),
                se(|s| s.b),
                se(|s| s.c),
                it.n_responses,
                fit_fields(f)
            )?;
        }
    }
    Ok(w.flush()?)
}

/// `scores.csv`: θ, SE and responses of every scored student.
fn write_scores_csv(
    path: &std::path::Path,
    students: &[String],
    scores: &[Option<models::irt::Score>],
) -> Result<()> {
    let mut w = create(path)?;
    writeln!(w, "student_id,theta,se,n_responses")?;
    for (id, s) in students.iter().zip(scores) {
        if let Some(s) = s {
            writeln!(
                w,
                "{},{:.6},{:.6},{}",
                csv_field(id),
                s.theta,
                s.se,
                s.n_responses
            )?;
        }
    }
    Ok(w.flush()?)
}

/// `fit.json`: the fit's summary (keys sorted), then the wall time and its phases in
/// the order they ran (a `json!` object would sort them too).
#[derive(serde::Serialize)]
struct FitJson<'a> {
    #[serde(flatten)]
    summary: serde_json::Value,
    /// Wall time of the command, ms.
    elapsed_ms: f64,
    /// Wall time of each phase, ms.
    phases_ms: &'a Phases,
}

fn score(args: ScoreArgs) -> Result<()> {
    let params = lake::files::read_item_params(&args.items, false)?;
    let responses = lake::files::read_responses(&args.responses)?;
    // items are the parameter file's rows; a response question maps to its row or is unknown
    let item_of: HashMap<&str, u32> = params
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i as u32))
        .collect();
    let question_item: Vec<Option<u32>> = responses
        .questions
        .iter()
        .map(|q| item_of.get(q.as_str()).copied())
        .collect();
    let unknown: Vec<&str> = responses
        .questions
        .iter()
        .zip(&question_item)
        .filter(|(_, i)| i.is_none())
        .map(|(q, _)| q.as_str())
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} question(s) in {} have no parameters in {} and were ignored: {}",
            unknown.len(),
            args.responses.display(),
            args.items.display(),
            unknown
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let triplets: Vec<(u32, u32, bool)> = responses
        .triplets
        .iter()
        .filter_map(|&(s, q, y)| Some((s, question_item[q as usize]?, y)))
        .collect();
    let m = ResponseMatrix::from_triplets(responses.students.len(), params.len(), &triplets)?;
    let fixed: Vec<Option<ItemParams>> = params
        .iter()
        .map(|(_, p)| p.map(|(a, b, c)| ItemParams { a, b, c }))
        .collect();
    let scores = score_students(&m, &fixed, &ScoringConfig::with_method(args.method))?;
    let mut w = create(&args.out)?;
    writeln!(w, "student_id,theta,se,n_responses")?;
    let mut n = 0;
    for (id, s) in responses.students.iter().zip(&scores) {
        if let Some(s) = s {
            writeln!(
                w,
                "{},{:.6},{:.6},{}",
                csv_field(id),
                s.theta,
                s.se,
                s.n_responses
            )?;
            n += 1;
        }
    }
    println!(
        "scored {n} students ({}) into {}",
        args.method,
        args.out.display()
    );
    Ok(())
}

/// Writes `anchors.csv`: each estimated anchor's drift screen (see
/// `models::linking::screen_and_link`), on the anchor scale.
fn write_anchor_drift(
    path: &Path,
    ids: &[String],
    drift: &[(usize, models::linking::AnchorDrift)],
) -> Result<()> {
    let mut w = create(path)?;
    writeln!(
        w,
        "item_id,a_ref,b_ref,c_ref,a_compared,b_compared,a_est,b_est,c_est,\
         diff_b,log_a_ratio,z_b,z_a,flagged,round"
    )?;
    for (i, d) in drift {
        writeln!(
            w,
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.4},{:.4},{},{}",
            csv_field(&ids[*i]),
            d.reference.a,
            d.reference.b,
            d.reference.c,
            d.compared_with.a,
            d.compared_with.b,
            d.estimate.a,
            d.estimate.b,
            d.estimate.c,
            d.diff_b,
            d.log_a_ratio,
            d.z_b,
            d.z_a,
            d.flagged,
            d.round
        )?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// `s_x2,df_s_x2,p_s_x2,infit,outfit,z_infit,z_outfit` of one item (empty when absent).
fn fit_fields(f: &models::calibration::ItemFitStats) -> String {
    let (sx, df, p) = f
        .s_x2
        .map(|x| {
            (
                format!("{:.6}", x.stat),
                x.df.to_string(),
                format!("{:.6}", x.p),
            )
        })
        .unwrap_or_default();
    let ms = f
        .mean_squares
        .map(|m| {
            format!(
                "{:.6},{:.6},{:.6},{:.6}",
                m.infit, m.outfit, m.z_infit, m.z_outfit
            )
        })
        .unwrap_or_else(|| ",,,".to_string());
    format!("{sx},{df},{p},{ms}")
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

/// Quotes a CSV field when needed.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}
