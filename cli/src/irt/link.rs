//! `irtlake irt link`: linking two calibrations from their item parameters, as R
//! `plink` (Weeks, 2010) and STUIRT (Kim & Kolen, 2004) do.
//!
//! FROM's common items (those whose id is also in TO) give the constants A, B of
//! θ_to = A·θ_from + B by mean/mean, mean/sigma, Haebara and Stocking–Lord
//! (`models::linking`); every FROM item is then moved onto TO's scale
//! (a/A, A·b + B, c). Defaults are plink's: D = 1, 40 equally spaced points on
//! [−4, 4] with equal weights, criterion on the TO scale only.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use models::irt::{ItemParams, Quadrature};
use models::linking::{
    CurveSettings, LinkingConstants, LinkingMethod, haebara_with, mean_mean, mean_sigma,
    stocking_lord_with,
};

use super::{create, csv_field};

/// Options of `irtlake irt link`.
#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// Item parameters on the scale to move: CSV item_id,a,b[,c].
    #[arg(long)]
    pub from: PathBuf,
    /// Item parameters on the target scale: CSV item_id,a,b[,c]. Common items are those
    /// in both files (at least 2).
    #[arg(long)]
    pub to: PathBuf,
    /// mean-mean, mean-sigma, haebara, stocking-lord or all.
    #[arg(long, default_value = "all")]
    pub method: String,
    /// Method whose constants move FROM's items in items_linked.csv (default: --method,
    /// or stocking-lord with all).
    #[arg(long)]
    pub rescale: Option<LinkingMethod>,
    /// Scaling constant D of the published parameters' logistic (1 or 1.7; any D > 0).
    #[arg(long, default_value_t = 1.0, value_parser = crate::bounds::f64_in(0.01, 100.0))]
    pub d: f64,
    /// θ grid of the characteristic-curve criteria: uniform:N:LO:HI (equal weights),
    /// normal:N:LO:HI (N(0, 1) density weights) or a CSV file theta,weight_from,weight_to
    /// (each group's weights, as STUIRT takes them).
    #[arg(long, default_value = "uniform:40:-4:4")]
    pub quadrature: String,
    /// Symmetric criterion: adds the distance on the FROM scale (TO's items moved there).
    #[arg(long)]
    pub symmetric: bool,
    /// Output folder (constants.csv, items_linked.csv).
    #[arg(long)]
    pub out: PathBuf,
}

/// The grids of the criterion: on the TO scale, and on the FROM scale (symmetric only;
/// the TO grid unless a file gives the FROM group's own weights).
struct Grids {
    to: Quadrature,
    from: Quadrature,
}

/// Parses `--quadrature`.
fn grids(spec: &str) -> Result<Grids> {
    let parts: Vec<&str> = spec.split(':').collect();
    if let [kind @ ("uniform" | "normal"), n, lo, hi] = parts.as_slice() {
        let n: usize = n
            .parse()
            .with_context(|| format!("--quadrature {spec}: N must be a whole number"))?;
        let lo: f64 = lo
            .parse()
            .with_context(|| format!("--quadrature {spec}: LO must be a number"))?;
        let hi: f64 = hi
            .parse()
            .with_context(|| format!("--quadrature {spec}: HI must be a number"))?;
        if !((2..=10_000).contains(&n) && lo.is_finite() && hi.is_finite() && lo < hi) {
            bail!("--quadrature {spec}: needs 2 to 10000 points and finite LO < HI");
        }
        let nodes: Vec<f64> = (0..n)
            .map(|k| lo + (hi - lo) * k as f64 / (n - 1) as f64)
            .collect();
        let weights = match *kind {
            "uniform" => vec![1.0; n],
            _ => nodes.iter().map(|t| (-0.5 * t * t).exp()).collect(),
        };
        let to = Quadrature { nodes, weights };
        return Ok(Grids {
            from: to.clone(),
            to,
        });
    }
    read_grid_file(Path::new(spec))
}

/// Reads `theta,weight_from,weight_to` (header required, columns in any order).
fn read_grid_file(path: &Path) -> Result<Grids> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading --quadrature {} (not uniform:N:LO:HI or normal:N:LO:HI, so a file)",
            path.display()
        )
    })?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .with_context(|| format!("{}: empty", path.display()))?
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let col = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column '{name}' (expected theta,weight_from,weight_to)",
                path.display()
            )
        })
    };
    let (ct, cf, cto) = (col("theta")?, col("weight_from")?, col("weight_to")?);
    let (mut to, mut from) = (
        Quadrature {
            nodes: vec![],
            weights: vec![],
        },
        Quadrature {
            nodes: vec![],
            weights: vec![],
        },
    );
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let num = |c: usize, what: &str| -> Result<f64> {
            let v: f64 = fields
                .get(c)
                .with_context(|| format!("{} row {}: no {what}", path.display(), i + 2))?
                .parse()
                .with_context(|| {
                    format!("{} row {}: {what} is not a number", path.display(), i + 2)
                })?;
            if !v.is_finite() || (what != "theta" && v < 0.0) {
                bail!(
                    "{} row {}: {what} = {v} (finite, weights >= 0)",
                    path.display(),
                    i + 2
                );
            }
            Ok(v)
        };
        let theta = num(ct, "theta")?;
        to.nodes.push(theta);
        to.weights.push(num(cto, "weight_to")?);
        from.nodes.push(theta);
        from.weights.push(num(cf, "weight_from")?);
    }
    if to.nodes.len() < 2 {
        bail!("{}: needs at least 2 θ points", path.display());
    }
    Ok(Grids { to, from })
}

/// One row of constants.csv.
struct Row {
    method: LinkingMethod,
    constants: LinkingConstants,
    /// Criterion value and iterations (characteristic-curve methods only).
    curve: Option<(f64, usize)>,
}

/// Runs `irtlake irt link`.
pub fn link(args: LinkArgs) -> Result<()> {
    let methods = methods_of(&args.method)?;
    let rescale = args.rescale.unwrap_or(if methods.len() == 1 {
        methods[0]
    } else {
        LinkingMethod::StockingLord
    });
    if !methods.contains(&rescale) {
        bail!(
            "--rescale {rescale} is not among the methods computed (--method {})",
            args.method
        );
    }
    let grids = grids(&args.quadrature)?;
    let from = read_params(&args.from)?;
    let to = read_params(&args.to)?;
    let to_of: std::collections::HashMap<&str, &ItemParams> =
        to.iter().map(|(id, p)| (id.as_str(), p)).collect();
    let (mut new, mut base, mut common) = (Vec::new(), Vec::new(), Vec::new());
    for (id, p) in &from {
        if let Some(q) = to_of.get(id.as_str()) {
            new.push(*p);
            base.push(**q);
            common.push(id.as_str());
        }
    }
    if common.len() < 2 {
        bail!(
            "{} and {} share {} item id(s); linking needs at least 2 common items",
            args.from.display(),
            args.to.display(),
            common.len()
        );
    }
    let settings = CurveSettings {
        to_grid: &grids.to,
        from_grid: args.symmetric.then_some(&grids.from),
        d: args.d,
    };
    let rows = methods
        .iter()
        .map(|&method| {
            constants_row(method, &new, &base, &settings).with_context(|| {
                format!(
                    "{method} linking of {} onto {}",
                    args.from.display(),
                    args.to.display()
                )
            })
        })
        .collect::<Result<Vec<Row>>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_constants_csv(&args.out.join("constants.csv"), &rows)?;
    let k = rows
        .iter()
        .find(|r| r.method == rescale)
        .map(|r| r.constants)
        .context("rescale method computed")?;
    let path = args.out.join("items_linked.csv");
    let mut w = create(&path)?;
    writeln!(w, "item_id,a,b,c,common")?;
    for (id, p) in &from {
        let q = k.item(p);
        let common = u8::from(to_of.contains_key(id.as_str()));
        writeln!(
            w,
            "{},{:.6},{:.6},{:.6},{common}",
            csv_field(id),
            q.a,
            q.b,
            q.c
        )?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;

    println!(
        "{} common item(s); D = {}; {}grid {} ({} points)",
        common.len(),
        args.d,
        if args.symmetric { "symmetric, " } else { "" },
        args.quadrature,
        grids.to.nodes.len()
    );
    println!("{:<14} {:>10} {:>10}", "method", "A", "B");
    for r in &rows {
        println!(
            "{:<14} {:>10.6} {:>10.6}",
            r.method.as_str(),
            r.constants.a,
            r.constants.b
        );
    }
    println!(
        "items of {} moved onto {}'s scale with {rescale}: {}",
        args.from.display(),
        args.to.display(),
        path.display()
    );
    Ok(())
}

/// The methods `--method` asks for (`all`: the four post-hoc methods).
fn methods_of(method: &str) -> Result<Vec<LinkingMethod>> {
    Ok(match method.to_ascii_lowercase().as_str() {
        "all" => vec![
            LinkingMethod::MeanMean,
            LinkingMethod::MeanSigma,
            LinkingMethod::Haebara,
            LinkingMethod::StockingLord,
        ],
        one => match one.parse::<LinkingMethod>()? {
            m @ (LinkingMethod::None | LinkingMethod::Fixed) => {
                bail!(
                    "--method {m}: irt link computes constants (mean-mean, mean-sigma, haebara, stocking-lord or all)"
                )
            }
            m => vec![m],
        },
    })
}

/// The constants of one method from the common items (`new` on the from scale, `base`
/// on the to scale); the characteristic-curve methods also give their criterion and
/// iterations.
fn constants_row(
    method: LinkingMethod,
    new: &[ItemParams],
    base: &[ItemParams],
    settings: &CurveSettings<'_>,
) -> Result<Row> {
    Ok(match method {
        LinkingMethod::MeanMean => Row {
            method,
            constants: mean_mean(new, base)?,
            curve: None,
        },
        LinkingMethod::MeanSigma => Row {
            method,
            constants: mean_sigma(new, base)?,
            curve: None,
        },
        LinkingMethod::Haebara | LinkingMethod::StockingLord => {
            let f = if method == LinkingMethod::Haebara {
                haebara_with
            } else {
                stocking_lord_with
            };
            let k = f(new, base, settings)?;
            Row {
                method,
                constants: k.constants,
                curve: Some((k.criterion, k.iterations)),
            }
        }
        LinkingMethod::None | LinkingMethod::Fixed => {
            bail!("{method} is not a post-hoc linking method")
        }
    })
}

/// `constants.csv`: method, A, B, and for the curve methods criterion and iterations.
fn write_constants_csv(path: &Path, rows: &[Row]) -> Result<()> {
    let mut w = create(path)?;
    writeln!(w, "method,A,B,criterion,iterations")?;
    for r in rows {
        let (crit, it) = r
            .curve
            .map(|(c, i)| (format!("{c:.10e}"), i.to_string()))
            .unwrap_or_default();
        writeln!(
            w,
            "{},{:.6},{:.6},{crit},{it}",
            r.method, r.constants.a, r.constants.b
        )?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads `item_id,a,b[,c]` with valid parameters on every row.
fn read_params(path: &Path) -> Result<Vec<(String, ItemParams)>> {
    lake::files::read_item_params(path, true)?
        .into_iter()
        .map(|(id, p)| {
            let (a, b, c) =
                p.with_context(|| format!("{}: item {id} has no parameters", path.display()))?;
            Ok((id, ItemParams { a, b, c }))
        })
        .collect()
}
