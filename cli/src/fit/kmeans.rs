//! `irtlake fit kmeans`: [`models::cluster::kmeans`] (k-means++ seeding, restarts,
//! seeded) on chosen numeric columns, on z-scores (`--standardize`) or in the original
//! units.
//!
//! The model always clusters z-scores (each feature divided by its SD). Without
//! `--standardize` the features are first rotated by an orthogonal matrix Q chosen so
//! that every rotated feature has the same variance (one always exists: Schur–Horn;
//! built below by Givens rotations). Rotations preserve Euclidean distances, and
//! dividing every feature by the same SD only rescales them, so k-means on those
//! z-scores is k-means in the original units: the same k-means++ draws (probabilities
//! ∝ squared distances), the same assignments, the same silhouette (scale-free). The
//! centres and the inertia are then computed from the labels on the original rows.

use std::path::PathBuf;

use anyhow::Result;
use models::cluster::{KMeansConfig, kmeans as fit_kmeans};
use serde_json::json;

use super::table::Table;
use super::{CsvOut, no_duplicates, num, out_dir, print_summary, write_json};

/// Options of `irtlake fit kmeans`.
#[derive(Debug, clap::Args)]
pub struct KMeansArgs {
    /// CSV with a header, one row per item to cluster.
    #[arg(long)]
    pub data: PathBuf,
    /// Feature columns, comma-separated (numeric).
    #[arg(long, value_delimiter = ',', required = true)]
    pub features: Vec<String>,
    /// Number of clusters; default: chosen by the silhouette over --k-min..=--k-max (1 to 1000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 1_000))]
    pub k: Option<usize>,
    /// Smallest k tried when --k is not given (1 to 1000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 1_000), default_value_t = 4)]
    pub k_min: usize,
    /// Largest k tried when --k is not given (1 to 1000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 1_000), default_value_t = 8)]
    pub k_max: usize,
    /// Seed of the k-means++ seeding (and of the silhouette sample above 3000 rows).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// k-means++ restarts; the run with the smallest inertia wins (1 to 1000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 1_000), default_value_t = 10)]
    pub restarts: usize,
    /// Cluster z-scores (each feature minus its mean, divided by its sample SD) instead
    /// of the original units.
    #[arg(long)]
    pub standardize: bool,
    /// Column copied into labels.csv to identify the rows (e.g. student_id).
    #[arg(long)]
    pub id: Option<String>,
    /// Output folder: centers.csv (cluster, features in original units, size),
    /// labels.csv (row, [id], cluster), fit.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// `irtlake fit kmeans`.
pub fn kmeans(args: KMeansArgs) -> Result<()> {
    let table = Table::read(&args.data)?;
    no_duplicates("--features", &args.features)?;
    let rows = table.numeric_rows(&args.features)?;
    let ids = args.id.as_deref().map(|c| table.strings(c)).transpose()?;
    match args.k {
        Some(k) => table.require_rows(k.max(1), &format!("k-means with k = {k}"))?,
        None => table.require_rows(
            2 * args.k_min,
            &format!(
                "choosing k in {}..={} (two rows per cluster)",
                args.k_min, args.k_max
            ),
        )?,
    }
    let config = KMeansConfig {
        k: args.k,
        k_min: args.k_min,
        k_max: args.k_max,
        restarts: args.restarts,
        seed: args.seed,
        ..KMeansConfig::default()
    };
    let err = |e| anyhow::anyhow!("{}: k-means: {e}", table.path().display());
    let dim = args.features.len();
    let (fit, centres, inertia) = if args.standardize {
        let fit = fit_kmeans(&rows, &config).map_err(err)?;
        let (c, i) = (fit.centres.clone(), fit.inertia);
        (fit, c, i)
    } else {
        let q = equalizing_rotation(&rows);
        let rotated: Vec<Vec<f64>> = rows.iter().map(|r| rotate(r, &q)).collect();
        let fit = fit_kmeans(&rotated, &config).map_err(err)?;
        let mut centres = vec![vec![0.0; dim]; fit.k];
        for (r, &l) in rows.iter().zip(&fit.labels) {
            for (c, v) in centres[l].iter_mut().zip(r) {
                *c += v;
            }
        }
        for (c, &size) in centres.iter_mut().zip(&fit.sizes) {
            c.iter_mut().for_each(|v| *v /= size.max(1) as f64);
        }
        let inertia = rows
            .iter()
            .zip(&fit.labels)
            .map(|(r, &l)| {
                r.iter()
                    .zip(&centres[l])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            })
            .sum();
        (fit, centres, inertia)
    };

    out_dir(&args.out)?;
    let mut header = vec!["cluster"];
    header.extend(args.features.iter().map(String::as_str));
    header.push("size");
    let mut w = CsvOut::create(&args.out, "centers.csv", &header)?;
    for (j, (c, size)) in centres.iter().zip(&fit.sizes).enumerate() {
        let mut rec = vec![j.to_string()];
        rec.extend(c.iter().map(|&v| num(v)));
        rec.push(size.to_string());
        w.row(rec)?;
    }
    w.finish()?;
    let mut header = vec!["row"];
    if let Some(id) = &args.id {
        header.push(id);
    }
    header.push("cluster");
    let mut w = CsvOut::create(&args.out, "labels.csv", &header)?;
    for (i, &l) in fit.labels.iter().enumerate() {
        let mut rec = vec![(i + 1).to_string()];
        if let Some(ids) = &ids {
            rec.push(ids[i].clone());
        }
        rec.push(l.to_string());
        w.row(rec)?;
    }
    w.finish()?;
    let summary = json!({
        "model": "kmeans",
        "data": args.data.display().to_string(),
        "features": args.features,
        "standardized": args.standardize,
        "scale": if args.standardize { "z-scores" } else { "original units" },
        "n": rows.len(),
        "k": fit.k,
        "k_chosen_by_silhouette": args.k.is_none(),
        "inertia": inertia,
        "silhouette": fit.silhouette,
        "silhouette_by_k": fit.silhouette_by_k,
        "sizes": fit.sizes,
        "iterations": fit.iterations,
        "converged": fit.converged,
        "restarts": args.restarts,
        "seed": args.seed,
        "feature_means": if args.standardize { json!(fit.standardizer.means) } else { json!(null) },
        "feature_sds": if args.standardize { json!(fit.standardizer.sds) } else { json!(null) },
    });
    write_json(&args.out, "fit.json", &summary)?;
    print_summary(&summary)
}

/// `row · Q` (Q row-major d × d).
fn rotate(row: &[f64], q: &[Vec<f64>]) -> Vec<f64> {
    (0..row.len())
        .map(|j| row.iter().zip(q).map(|(x, qk)| x * qk[j]).sum())
        .collect()
}

/// An orthogonal Q (row-major) such that the columns of X·Q all have the variance
/// m = trace(S)/d, S the covariance of the rows of X. Each step takes the largest
/// (above m) and the smallest (below m) diagonal entry of S and rotates their plane so
/// that the first becomes m; at least one more entry equals m after every step, so at
/// most d − 1 steps are needed. Returns the identity when every variance is already
/// equal (e.g. one feature, or all features constant).
fn equalizing_rotation(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let d = rows.first().map_or(0, Vec::len);
    let n = rows.len() as f64;
    let mut q: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    if d < 2 || rows.len() < 2 {
        return q;
    }
    let means: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let mut s = vec![vec![0.0; d]; d];
    for r in rows {
        for a in 0..d {
            for b in 0..d {
                s[a][b] += (r[a] - means[a]) * (r[b] - means[b]);
            }
        }
    }
    let m = (0..d).map(|i| s[i][i]).sum::<f64>() / d as f64;
    if m <= 0.0 {
        return q;
    }
    for _ in 0..2 * d {
        let by_var = |a: &usize, b: &usize| s[*a][*a].total_cmp(&s[*b][*b]);
        let i = (0..d).max_by(by_var).unwrap_or(0);
        let j = (0..d).min_by(by_var).unwrap_or(0);
        if s[i][i] - s[j][j] <= 1e-13 * m {
            break;
        }
        // Variance of the rotated column i as a function of the angle:
        // f(θ) = (a + c)/2 + (a − c)/2·cos 2θ + b·sin 2θ, f(0) = a > m > c = f(π/2).
        let (a, b, c) = (s[i][i], s[i][j], s[j][j]);
        let f = |t: f64| 0.5 * (a + c) + 0.5 * (a - c) * (2.0 * t).cos() + b * (2.0 * t).sin();
        let (mut lo, mut hi) = (0.0, std::f64::consts::FRAC_PI_2);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if f(mid) > m {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (sin, cos) = (0.5 * (lo + hi)).sin_cos();
        // S ← GᵀSG and Q ← QG with G the rotation of columns i, j:
        // new i = cos·i + sin·j, new j = −sin·i + cos·j.
        let turn = |x: f64, y: f64| (cos * x + sin * y, -sin * x + cos * y);
        for row in s.iter_mut().chain(q.iter_mut()) {
            (row[i], row[j]) = turn(row[i], row[j]);
        }
        let (lo_row, hi_row) = s.split_at_mut(i.max(j));
        let (ri, rj) = if i < j {
            (&mut lo_row[i], &mut hi_row[0])
        } else {
            (&mut hi_row[0], &mut lo_row[j])
        };
        for (x, y) in ri.iter_mut().zip(rj.iter_mut()) {
            (*x, *y) = turn(*x, *y);
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_equalizes_variances_and_keeps_distances() {
        let rows: Vec<Vec<f64>> = (0..50)
            .map(|i| {
                let t = f64::from(i);
                vec![
                    1000.0 * (t * 0.37).sin(),
                    t * 0.01,
                    5.0 * (t * 1.3).cos() + t,
                    7.0,
                ]
            })
            .collect();
        let q = equalizing_rotation(&rows);
        let y: Vec<Vec<f64>> = rows.iter().map(|r| rotate(r, &q)).collect();
        let var = |j: usize| {
            let mean = y.iter().map(|r| r[j]).sum::<f64>() / 50.0;
            y.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>()
        };
        let v0 = var(0);
        for j in 1..4 {
            assert!((var(j) / v0 - 1.0).abs() < 1e-9, "{} vs {v0}", var(j));
        }
        let dist = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        for (a, b) in [(0, 1), (3, 40), (17, 49)] {
            let (d0, d1) = (dist(&rows[a], &rows[b]), dist(&y[a], &y[b]));
            assert!((d0 - d1).abs() <= 1e-9 * d0, "{d0} vs {d1}");
        }
    }
}
