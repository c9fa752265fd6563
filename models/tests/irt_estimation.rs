//! Calibration (Bock–Aitkin EM) against published R mirt values and simulated truth.

// Helpers outside #[test] fns parse fixed reference files: unwrap is the right failure.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use models::irt::*;

#[path = "data/lsat7.rs"]
mod lsat7_data;
#[path = "../../tests/reference.rs"]
mod reference;

use lsat7_data::lsat7_matrix as lsat7;

/// The folder of mirt's LSAT7 results (`shared/reference/lsat7`), or `None` after one
/// "skipped" line when the reference data is not there (see `tests/reference.rs`).
fn mirt_lsat7() -> Option<PathBuf> {
    reference::reference_dir("lsat7")
}

fn read_csv(dir: &Path, name: &str) -> Vec<Vec<String>> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|f| f.trim().trim_matches('"').to_string())
                .collect()
        })
        .collect()
}

fn reference_items(dir: &Path, name: &str) -> Vec<(f64, f64, f64)> {
    read_csv(dir, name)
        .iter()
        .map(|r| {
            (
                r[1].parse().unwrap(),
                r[2].parse().unwrap(),
                r[3].parse().unwrap(),
            )
        })
        .collect()
}

fn summary(dir: &Path, model: &str) -> (f64, f64, f64, usize, f64) {
    let rows = read_csv(dir, "mirt_fit_summary.csv");
    let r = rows.iter().find(|r| r[0] == model).unwrap();
    (
        r[1].parse().unwrap(),
        r[2].parse().unwrap(),
        r[3].parse().unwrap(),
        r[4].parse().unwrap(),
        r[5].parse().unwrap(),
    )
}

fn fit(m: &ResponseMatrix, model: Model) -> FitResult {
    calibrate(m, &FitConfig::new(model)).unwrap()
}

fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, mirt/truth {want}, |diff| {} > {tol}",
        (got - want).abs()
    );
}

// ---------------------------------------------------------------- LSAT7 vs mirt 1.41.10
//
// Tolerances: a, b and the log-likelihood within 0.01 (shared/reference/README.md). mirt
// stops when the largest change per cycle is below 1e-4; where EM moves slowly, that
// leaves its estimates up to ~1e-3 (2PL) from the exact maximum, so 0.01 is tight but
// safe. AIC/BIC are −2·loglik + constants: 2 × 0.01.

/// Runs on every clone (the data is the published table in `data/lsat7.rs`): the 2PL
/// log-likelihood of LSAT7 is the one printed by mirt's documentation for this data
/// (`mirt(LSAT7, 1)`: "Log-likelihood = -2658.805"), to its three printed decimals
/// plus the EM tolerance's share (0.01, as for the reference files).
#[test]
fn lsat7_2pl_loglik_matches_the_published_value() {
    let f = fit(&lsat7(), Model::TwoPl);
    assert!(f.converged);
    assert_close("loglik", f.loglik, -2658.805, 0.01);
    assert_eq!((f.n_students_used, f.n_responses_used), (1000, 5000));
}

/// The embedded table is the same data as the reference folder's long file.
#[test]
fn embedded_lsat7_table_equals_the_reference_responses() {
    let Some(dir) = mirt_lsat7() else { return };
    let mut by_student: BTreeMap<u64, BTreeMap<String, u8>> = BTreeMap::new();
    for r in read_csv(&dir, "responses_long.csv") {
        let y = if r[2] == "1" { 1 } else { 0 };
        by_student
            .entry(r[0].parse().unwrap())
            .or_default()
            .insert(r[1].clone(), y);
    }
    let mut counts: BTreeMap<[u8; 5], u32> = BTreeMap::new();
    for items in by_student.values() {
        let p: Vec<u8> = items.values().copied().collect();
        *counts.entry(p.try_into().unwrap()).or_default() += 1;
    }
    let embedded: BTreeMap<[u8; 5], u32> = lsat7_data::LSAT7_PATTERNS.into_iter().collect();
    assert_eq!(counts, embedded);
}

#[test]
fn lsat7_2pl_matches_mirt() {
    let Some(dir) = mirt_lsat7() else { return };
    let f = fit(&lsat7(), Model::TwoPl);
    let (ll, aic, bic, cycles, _) = summary(&dir, "2PL");
    assert!(f.converged);
    for (i, (it, r)) in f
        .items
        .iter()
        .zip(reference_items(&dir, "mirt_2pl_items.csv"))
        .enumerate()
    {
        assert_close(&format!("item {i} a"), it.params.a, r.0, 0.01);
        assert_close(&format!("item {i} b"), it.params.b, r.1, 0.01);
        assert_eq!(it.params.c, 0.0);
        assert!(it.excluded.is_none() && !it.fixed);
    }
    assert_close("loglik", f.loglik, ll, 0.01);
    assert_close("aic", f.aic, aic, 0.02);
    assert_close("bic", f.bic, bic, 0.02);
    assert_eq!(f.n_parameters, 10);
    assert_eq!((f.n_students_used, f.n_responses_used), (1000, 5000));
    assert_eq!((f.latent_mean, f.latent_sd), (0.0, 1.0));
    // mirt needed 28 cycles; ours must not be much slower (Ramsay acceleration works)
    assert!(f.iterations <= cycles + 10, "{} EM cycles", f.iterations);
}

#[test]
fn lsat7_rasch_matches_mirt_including_latent_variance() {
    let Some(dir) = mirt_lsat7() else { return };
    let f = fit(&lsat7(), Model::Rasch);
    let (ll, aic, bic, cycles, var) = summary(&dir, "Rasch");
    for (i, (it, r)) in f
        .items
        .iter()
        .zip(reference_items(&dir, "mirt_rasch_items.csv"))
        .enumerate()
    {
        assert_eq!(it.params.a, 1.0);
        assert_close(&format!("item {i} b"), it.params.b, r.1, 0.01);
    }
    assert_close("latent variance", f.latent_sd.powi(2), var, 0.01);
    assert_eq!(f.latent_mean, 0.0);
    assert_close("loglik", f.loglik, ll, 0.01);
    assert_close("aic", f.aic, aic, 0.02);
    assert_close("bic", f.bic, bic, 0.02);
    assert_eq!(f.n_parameters, 6, "5 difficulties + the latent variance");
    assert!(f.iterations <= cycles + 10, "{} EM cycles", f.iterations);
}

/// 3PL with mirt's `expbeta(5, 17)` prior on c. c and b agree closely (c within 0.002,
/// b within 0.01). a gets 0.02: the 3PL likelihood is flat along a, and mirt's TOL = 1e-4
/// stop leaves its a up to 0.016 from the converged optimum of the same objective (our fit
/// at tol = 1e-7 gives a₃ = 2.1112 against mirt's 2.0951), so 0.01 would test where mirt
/// happened to stop rather than the estimator.
#[test]
fn lsat7_3pl_with_beta_prior_matches_mirt() {
    let Some(dir) = mirt_lsat7() else { return };
    let m = lsat7();
    let (ll, aic, bic, cycles, _) = summary(&dir, "3PL_betaprior");
    let f = fit(&m, Model::ThreePl);
    let tight = calibrate(
        &m,
        &FitConfig {
            tol: 1e-7,
            ..FitConfig::new(Model::ThreePl)
        },
    )
    .unwrap();
    let refs = reference_items(&dir, "mirt_3pl_beta5_17_items.csv");
    for (i, r) in refs.iter().enumerate() {
        for g in [&f, &tight] {
            let p = g.items[i].params;
            assert_close(&format!("item {i} a"), p.a, r.0, 0.02);
            assert_close(&format!("item {i} b"), p.b, r.1, 0.01);
            assert_close(&format!("item {i} c"), p.c, r.2, 0.002);
        }
    }
    assert_close("loglik", f.loglik, ll, 0.01);
    assert_close("aic", f.aic, aic, 0.02);
    assert_close("bic", f.bic, bic, 0.02);
    assert_eq!(f.n_parameters, 15);
    assert!(f.iterations <= cycles + 10, "{} EM cycles", f.iterations);
    // the prior matters: without it the c estimates move away from mirt's prior fit
    let flat = calibrate(
        &m,
        &FitConfig {
            priors: Priors::default(),
            ..FitConfig::new(Model::ThreePl)
        },
    )
    .unwrap();
    let moved = flat
        .items
        .iter()
        .zip(&refs)
        .map(|(it, r)| (it.params.c - r.2).abs())
        .fold(0.0, f64::max);
    assert!(
        moved > 0.01,
        "flat-prior 3PL should differ from the Beta(5,17) fit, max |dc| = {moved}"
    );
    // and its log-likelihood matches mirt's prior-free 3PL (which needed 133 cycles)
    let (ll3, aic3, _, _, _) = summary(&dir, "3PL");
    assert_close("flat 3PL loglik", flat.loglik, ll3, 0.01);
    assert_close("flat 3PL aic", flat.aic, aic3, 0.02);
}

#[test]
fn lsat7_acceleration_variants_reach_the_same_estimates() {
    // All three schemes must converge to the same maximum (to the EM tolerance scale).
    let m = lsat7();
    let base = calibrate(
        &m,
        &FitConfig {
            tol: 1e-7,
            ..FitConfig::new(Model::TwoPl)
        },
    )
    .unwrap();
    for acc in [
        Acceleration::None,
        Acceleration::Ramsay,
        Acceleration::Squarem,
    ] {
        let f = calibrate(
            &m,
            &FitConfig {
                acceleration: acc,
                ..FitConfig::new(Model::TwoPl)
            },
        )
        .unwrap();
        assert!(f.converged, "{acc:?}");
        assert!(
            f.loglik <= base.loglik + 1e-6 && f.loglik > base.loglik - 1e-3,
            "{acc:?}"
        );
        for (x, y) in f.items.iter().zip(&base.items) {
            assert_close(&format!("{acc:?} a"), x.params.a, y.params.a, 0.005);
            assert_close(&format!("{acc:?} b"), x.params.b, y.params.b, 0.005);
        }
    }
}

// ------------------------------------------------------------------ standard errors

/// Marginal log-likelihood at 2PL slope–intercept parameters `x = [a1, d1, a2, d2, …]`
/// (Rasch: `[d1, …, d5, variance]`).
fn marginal_ll(m: &ResponseMatrix, model: Model, x: &[f64]) -> f64 {
    let n = m.n_items;
    let (items, var): (Vec<ItemParams>, f64) = match model {
        Model::Rasch => ((0..n).map(|i| ItemParams::new(1.0, -x[i])).collect(), x[n]),
        _ => (
            (0..n)
                .map(|i| ItemParams::new(x[2 * i], -x[2 * i + 1] / x[2 * i]))
                .collect(),
            1.0,
        ),
    };
    let q = Quadrature::with_normal(61, -6.0, 6.0, 0.0, var.sqrt()).unwrap();
    let lp: Vec<f64> = q.weights.iter().map(|w| w.ln()).collect();
    estep(m, 0..m.n_students(), &ItemTables::new(&items, &q), &lp).loglik
}

/// Inverse of a small symmetric positive-definite matrix (Gauss–Jordan).
fn invert(mut a: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| (i == j) as u8 as f64).collect())
        .collect();
    for c in 0..n {
        let p = a[c][c];
        assert!(p.abs() > 1e-12);
        for j in 0..n {
            a[c][j] /= p;
            inv[c][j] /= p;
        }
        for r in 0..n {
            if r != c {
                let f = a[r][c];
                for j in 0..n {
                    a[r][j] -= f * a[c][j];
                    inv[r][j] -= f * inv[c][j];
                }
            }
        }
    }
    inv
}

/// The Louis-formula SEs must equal those from the numerically differentiated marginal
/// log-likelihood (central second differences, h = 1e-3: truncation error ~h² ≈ 1e-6
/// relative, rounding ~1e-13·2659/h² ≈ 3e-4 absolute on entries of order 10²–10³), so a
/// 0.5 % relative tolerance is loose for the arithmetic yet catches any wrong term.
#[test]
fn lsat7_standard_errors_equal_the_numerical_observed_information() {
    let m = lsat7();
    for model in [Model::TwoPl, Model::Rasch] {
        let f = fit(&m, model);
        assert!(f.se_method.contains("full matrix"), "{}", f.se_method);
        let x: Vec<f64> = match model {
            Model::Rasch => f
                .items
                .iter()
                .map(|it| -it.params.b)
                .chain([f.latent_sd.powi(2)])
                .collect(),
            _ => f
                .items
                .iter()
                .flat_map(|it| [it.params.a, -it.params.a * it.params.b])
                .collect(),
        };
        let n = x.len();
        let h = 1e-3;
        let ll = |dx: &[(usize, f64)]| {
            let mut y = x.clone();
            for &(i, d) in dx {
                y[i] += d;
            }
            marginal_ll(&m, model, &y)
        };
        let mut info = vec![vec![0.0; n]; n];
        for i in 0..n {
            for j in i..n {
                let v = (ll(&[(i, h), (j, h)]) - ll(&[(i, h), (j, -h)]) - ll(&[(i, -h), (j, h)])
                    + ll(&[(i, -h), (j, -h)]))
                    / (4.0 * h * h);
                info[i][j] = -v;
                info[j][i] = -v;
            }
        }
        let cov = invert(info);
        for (i, it) in f.items.iter().enumerate() {
            let se = it.se.expect("standard errors");
            let (se_a, se_b) = match model {
                Model::Rasch => (0.0, cov[i][i].sqrt()),
                _ => {
                    let (a, d) = (x[2 * i], x[2 * i + 1]);
                    let j = [d / (a * a), -1.0 / a];
                    let (ia, id) = (2 * i, 2 * i + 1);
                    let vb = j[0] * j[0] * cov[ia][ia]
                        + 2.0 * j[0] * j[1] * cov[ia][id]
                        + j[1] * j[1] * cov[id][id];
                    (cov[ia][ia].sqrt(), vb.sqrt())
                }
            };
            assert!(
                (se.a - se_a).abs() <= 5e-3 * se_a.max(1e-12),
                "{model} item {i} SE(a) {} vs {se_a}",
                se.a
            );
            assert!(
                (se.b - se_b).abs() <= 5e-3 * se_b,
                "{model} item {i} SE(b) {} vs {se_b}",
                se.b
            );
            assert_eq!(se.c, 0.0);
        }
    }
}

// ------------------------------------------------------------------------- recovery

fn rmse(f: &FitResult, truth: &[ItemParams], g: fn(&ItemParams) -> f64) -> f64 {
    let v: Vec<f64> = f
        .items
        .iter()
        .zip(truth)
        .filter(|(f, _)| !f.fixed && f.excluded.is_none())
        .map(|(f, t)| (g(&f.params) - g(t)).powi(2))
        .collect();
    assert!(!v.is_empty());
    (v.iter().sum::<f64>() / v.len() as f64).sqrt()
}

/// Root mean square of (estimate − truth)/SE over the estimated items: ≈ 1 when the SEs
/// are right. With k items its sampling SD is ≈ 1/√(2k).
fn z_rms(f: &FitResult, truth: &[ItemParams], g: fn(&ItemParams) -> f64) -> f64 {
    let v: Vec<f64> = f
        .items
        .iter()
        .zip(truth)
        .filter_map(|(f, t)| f.se.map(|s| ((g(&f.params) - g(t)) / g(&s)).powi(2)))
        .collect();
    assert!(!v.is_empty());
    (v.iter().sum::<f64>() / v.len() as f64).sqrt()
}

/// 5000 × 60 complete 2PL. Asymptotic SEs are ≈ 0.04–0.06 (a) and ≈ 0.03–0.1 (b), so
/// RMSEs near 0.05 are expected; 0.08 (the brief's bound) leaves room without hiding a
/// bias of that size. The z-RMS of the full-matrix SEs must lie within 1 ± 0.25
/// (its sampling SD is ≈ 0.09 for 60 items).
#[test]
fn recovers_complete_2pl_bank() {
    let bank = models::sim::complete_bank(5000, 60, false, 11);
    let f = fit(&bank.responses, Model::TwoPl);
    assert!(f.converged);
    let (ra, rb) = (
        rmse(&f, &bank.items, |p| p.a),
        rmse(&f, &bank.items, |p| p.b),
    );
    assert!(ra < 0.08 && rb < 0.08, "RMSE a {ra}, b {rb}");
    for (what, z) in [
        ("a", z_rms(&f, &bank.items, |p| p.a)),
        ("b", z_rms(&f, &bank.items, |p| p.b)),
    ] {
        assert!((0.75..1.25).contains(&z), "z-RMS of {what}: {z}");
    }
}

/// 2000 students × 200 items, 50 answered each (≈ 500 responses per item). Expected SEs
/// ≈ 0.12–0.2 for a and b, so RMSE ≈ 0.15: thresholds 0.2 (a) and 0.22 (b) are ~1.3× the
/// expectation. The SEs (400 parameters: full matrix) must give a z-RMS within 1 ± 0.2
/// (sampling SD ≈ 0.05 for 200 items).
#[test]
fn recovers_sparse_2pl_bank() {
    let bank = models::sim::sparse_bank(2000, 200, 50, false, 12);
    let f = fit(&bank.responses, Model::TwoPl);
    assert!(f.converged);
    assert_eq!(f.n_responses_used, 100_000);
    let (ra, rb) = (
        rmse(&f, &bank.items, |p| p.a),
        rmse(&f, &bank.items, |p| p.b),
    );
    assert!(ra < 0.2 && rb < 0.22, "RMSE a {ra}, b {rb}");
    for (what, z) in [
        ("a", z_rms(&f, &bank.items, |p| p.a)),
        ("b", z_rms(&f, &bank.items, |p| p.b)),
    ] {
        assert!((0.8..1.2).contains(&z), "z-RMS of {what}: {z}");
    }
}

/// 3PL with the default Beta(5, 17) prior. c is only identified by low-ability students
/// failing items well above their level, so the design provides them: 10,000 students,
/// 40 items with a ≥ 1.3 and difficulties centred at +0.5 (b ∈ [−1.2, 2.2]), true c ~
/// U(0.05, 0.3). RMSE(c) < 0.05 then holds (observed ≈ 0.03; the prior alone, predicting
/// 0.2 for every item, would give ≈ 0.076, so the bound does test the data's pull).
#[test]
fn recovers_3pl_guessing_with_prior() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let items: Vec<ItemParams> = models::sim::draw_items(40, true, &mut rng)
        .into_iter()
        .map(|mut it| {
            it.a = it.a.max(1.0) * 1.3;
            it.b = 0.5 + 0.6 * it.b;
            it
        })
        .collect();
    let thetas = models::sim::draw_thetas(10_000, 0.0, 1.0, &mut rng);
    let r = models::sim::simulate_complete(&items, &thetas, 113);
    let f = fit(&r, Model::ThreePl);
    assert!(f.converged);
    let prior_only = (items.iter().map(|t| (t.c - 0.2).powi(2)).sum::<f64>() / 40.0).sqrt();
    let rc = rmse(&f, &items, |p| p.c);
    assert!(
        rc < 0.05 && rc < 0.6 * prior_only,
        "RMSE c {rc} (prior mode alone {prior_only})"
    );
    let rb = rmse(&f, &items, |p| p.b);
    assert!(rb < 0.1, "RMSE b {rb}");
    assert!(f.items.iter().all(|it| it.se.is_some_and(|s| s.c > 0.0)));
}

/// Fixed-anchor calibration: θ ~ N(0.5, 1.2²), 5000 students × 60 items, the first 20
/// fixed at their true values. The latent mean/SD must match the population within 0.06
/// (the sampling SD of a 5000-draw mean is 1.2/√5000 = 0.017 and of the SD 0.012, plus
/// estimation error of similar size: 0.06 is > 3 combined SDs), and the 40 free items
/// must land on the true scale (RMSE b < 0.08, mean b̂ − b within ±0.05). Without the
/// anchors the same data put the items on the N(0, 1) scale, a shift of ≈ −0.4 in b.
#[test]
fn fixed_anchor_calibration_recovers_the_latent_scale() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let items = models::sim::draw_items(60, false, &mut rng);
    let thetas = models::sim::draw_thetas(5000, 0.5, 1.2, &mut rng);
    let r = models::sim::simulate_complete(&items, &thetas, 115);
    let mut cfg = FitConfig::new(Model::TwoPl);
    cfg.fixed = (0..60).map(|i| (i < 20).then_some(items[i])).collect();
    let f = calibrate(&r, &cfg).unwrap();
    assert!(f.converged);
    assert_close("latent mean", f.latent_mean, 0.5, 0.06);
    assert_close("latent sd", f.latent_sd, 1.2, 0.06);
    assert_eq!(f.n_parameters, 40 * 2 + 2);
    for (i, it) in f.items.iter().enumerate() {
        assert_eq!(it.fixed, i < 20);
        if i < 20 {
            assert_eq!(it.params, items[i]);
            assert!(it.se.is_none());
        }
    }
    let shift = |f: &FitResult| {
        f.items
            .iter()
            .zip(&items)
            .skip(20)
            .map(|(it, t)| it.params.b - t.b)
            .sum::<f64>()
            / 40.0
    };
    assert!(shift(&f).abs() < 0.05, "mean b shift {}", shift(&f));
    let (ra, rb) = (rmse(&f, &items, |p| p.a), rmse(&f, &items, |p| p.b));
    assert!(ra < 0.08 && rb < 0.08, "RMSE a {ra}, b {rb}");
    let plain = fit(&r, Model::TwoPl);
    assert!(shift(&plain) < -0.2, "unanchored shift {}", shift(&plain));
}

// --------------------------------------------------------------------- E-step shards

#[test]
fn estep_shards_merge_to_the_full_estep() {
    let bank = models::sim::sparse_bank(3000, 120, 30, true, 21);
    let q = Quadrature::default();
    let tables = ItemTables::new(&bank.items, &q);
    let lp: Vec<f64> = q.weights.iter().map(|w| w.ln()).collect();
    let n = bank.responses.n_students();
    let full = estep(&bank.responses, 0..n, &tables, &lp);
    assert_eq!(full.n_students, n);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
    for k in [0, 1, 777, 1500, n - 1, n] {
        let mut merged = estep(&bank.responses, 0..k, &tables, &lp);
        merged.merge(&estep(&bank.responses, k..n, &tables, &lp));
        assert_eq!(merged.n_students, n);
        assert!(
            close(merged.loglik, full.loglik),
            "k {k}: {} vs {}",
            merged.loglik,
            full.loglik
        );
        for (x, y) in [
            (&merged.r1, &full.r1),
            (&merged.n, &full.n),
            (&merged.node_mass, &full.node_mass),
        ] {
            assert_eq!(x.len(), y.len());
            assert!(x.iter().zip(y.iter()).all(|(a, b)| close(*a, *b)), "k {k}");
        }
    }
    // three shards in a different merge order, too
    let mut m3 = estep(&bank.responses, 2000..n, &tables, &lp);
    m3.merge(&estep(&bank.responses, 0..1000, &tables, &lp));
    m3.merge(&estep(&bank.responses, 1000..2000, &tables, &lp));
    assert!(m3.r1.iter().zip(&full.r1).all(|(a, b)| close(*a, *b)));
    // the counts are consistent: Σ n = responses, Σ node_mass = students
    assert!(close(
        full.n.iter().sum::<f64>(),
        bank.responses.n_responses() as f64
    ));
    assert!(close(full.node_mass.iter().sum::<f64>(), n as f64));
}

// ------------------------------------------------------------------------ exclusions

#[test]
fn unusable_items_and_students_are_excluded_with_a_reason() {
    let bank = models::sim::complete_bank(600, 8, false, 31);
    // items 8 (all correct), 9 (all wrong), 10 (5 responses); students 600 (only excluded
    // items) and 601 (no response at all)
    let mut trip: Vec<(u32, u32, bool)> = Vec::new();
    for s in 0..600u32 {
        let (its, ys) = bank.responses.row(s as usize);
        trip.extend(its.iter().zip(ys).map(|(&i, &y)| (s, i, y)));
        trip.push((s, 8, true));
        trip.push((s, 9, false));
        if s < 5 {
            trip.push((s, 10, s % 2 == 0));
        }
    }
    trip.push((600, 8, true));
    trip.push((600, 9, false));
    trip.push((600, 10, true));
    let m = ResponseMatrix::from_triplets(602, 11, &trip).unwrap();
    let f = fit(&m, Model::TwoPl);
    assert_eq!(f.items[8].excluded, Some(Exclusion::AllCorrect));
    assert_eq!(f.items[9].excluded, Some(Exclusion::AllWrong));
    assert_eq!(
        f.items[10].excluded,
        Some(Exclusion::TooFewResponses { n: 6, min: 20 })
    );
    assert_eq!(f.items[8].excluded.unwrap().to_string(), "all_correct");
    assert_eq!(f.items[9].excluded.unwrap().to_string(), "all_wrong");
    assert_eq!(
        f.items[10].excluded.unwrap().to_string(),
        "too_few_responses (6 < 20)"
    );
    for it in &f.items[8..] {
        assert_eq!(
            it.params,
            ItemParams::new(1.0, 0.0),
            "documented placeholder"
        );
        assert!(it.se.is_none() && !it.fixed);
    }
    assert_eq!((f.items[8].n_responses, f.items[8].p_correct), (601, 1.0));
    assert_eq!((f.items[9].n_responses, f.items[9].p_correct), (601, 0.0));
    assert_eq!(f.n_students_used, 600);
    assert_eq!(f.n_students_excluded, 2);
    assert_eq!(f.n_responses_used, 600 * 8);
    assert_eq!(f.n_parameters, 16);
    // the usable items are estimated exactly as without the unusable data
    let clean = fit(&bank.responses, Model::TwoPl);
    assert!((f.loglik - clean.loglik).abs() < 1e-9);
    for (x, y) in f.items.iter().zip(&clean.items) {
        assert!(x.excluded.is_none());
        assert!((x.params.a - y.params.a).abs() < 1e-9 && (x.params.b - y.params.b).abs() < 1e-9);
    }
    // lowering min_responses brings item 10 back (its 6 responses are mixed)
    let f2 = calibrate(
        &m,
        &FitConfig {
            min_responses: 5,
            ..FitConfig::new(Model::TwoPl)
        },
    )
    .unwrap();
    assert!(f2.items[10].excluded.is_none());
    assert_eq!(f2.n_students_excluded, 1);
}

#[test]
fn nothing_to_estimate_is_an_error() {
    let m =
        ResponseMatrix::from_triplets(3, 2, &[(0, 0, true), (1, 0, true), (2, 1, false)]).unwrap();
    assert!(matches!(
        calibrate(&m, &FitConfig::new(Model::TwoPl)),
        Err(IrtError::Empty(_))
    ));
}

// ------------------------------------------------------------------ configuration

fn small() -> ResponseMatrix {
    models::sim::complete_bank(200, 5, false, 41).responses
}

fn rejects(cfg: FitConfig, what: &str) {
    match calibrate(&small(), &cfg) {
        Err(IrtError::InvalidConfig(msg)) => {
            assert!(msg.contains(what), "message {msg:?} lacks {what:?}")
        }
        Err(IrtError::InvalidItem { item, reason }) => {
            assert!(
                reason.contains(what),
                "item {item}: {reason:?} lacks {what:?}"
            )
        }
        other => panic!("expected a configuration error about {what}, got {other:?}"),
    }
}

#[test]
fn config_defaults() {
    let c3 = FitConfig::new(Model::ThreePl);
    assert_eq!(
        c3.priors.c,
        Some(BetaPrior {
            alpha: 5.0,
            beta: 17.0
        })
    );
    assert!(c3.priors.a.is_none() && c3.priors.b.is_none());
    for m in [Model::Rasch, Model::TwoPl] {
        let c = FitConfig::new(m);
        assert_eq!(c.priors, Priors::default());
        assert_eq!(
            (c.tol, c.max_iter, c.min_responses, c.compute_se),
            (1e-4, 2000, 20, true)
        );
        assert_eq!(c.acceleration, Acceleration::Ramsay);
        assert!(c.fixed.is_empty());
        assert_eq!(c.quadrature, Quadrature::default());
        assert!(c.validate(5).is_ok());
    }
}

#[test]
fn rejects_non_positive_tol() {
    for tol in [0.0, -1e-4, f64::NAN] {
        rejects(
            FitConfig {
                tol,
                ..FitConfig::new(Model::TwoPl)
            },
            "tol",
        );
    }
}

#[test]
fn rejects_zero_max_iter() {
    rejects(
        FitConfig {
            max_iter: 0,
            ..FitConfig::new(Model::TwoPl)
        },
        "max_iter",
    );
}

#[test]
fn rejects_fixed_length_mismatch() {
    rejects(
        FitConfig {
            fixed: vec![None; 4],
            ..FitConfig::new(Model::TwoPl)
        },
        "fixed has 4 entries",
    );
}

#[test]
fn rejects_invalid_fixed_params() {
    for (p, what) in [
        (ItemParams::new(0.0, 0.0), "a must be > 0"),
        (ItemParams::new(1.0, f64::INFINITY), "b must be finite"),
        (ItemParams::new_3pl(1.0, 0.0, 1.0), "c must be in [0, 1)"),
    ] {
        let mut fixed = vec![None; 5];
        fixed[2] = Some(p);
        rejects(
            FitConfig {
                fixed,
                ..FitConfig::new(Model::TwoPl)
            },
            what,
        );
    }
}

#[test]
fn rejects_bad_priors() {
    let two = FitConfig::new(Model::TwoPl);
    rejects(
        FitConfig {
            priors: Priors {
                b: Some(NormalPrior { mean: 0.0, sd: 0.0 }),
                ..Priors::default()
            },
            ..two.clone()
        },
        "sd > 0",
    );
    rejects(
        FitConfig {
            priors: Priors {
                a: Some(LogNormalPrior {
                    meanlog: 0.0,
                    sdlog: -1.0,
                }),
                ..Priors::default()
            },
            ..two.clone()
        },
        "sdlog > 0",
    );
    rejects(
        FitConfig {
            priors: Priors {
                c: Some(BetaPrior {
                    alpha: 5.0,
                    beta: 17.0,
                }),
                ..Priors::default()
            },
            ..two.clone()
        },
        "3PL",
    );
    rejects(
        FitConfig {
            priors: Priors {
                a: Some(LogNormalPrior {
                    meanlog: 0.0,
                    sdlog: 0.5,
                }),
                ..Priors::default()
            },
            ..FitConfig::new(Model::Rasch)
        },
        "Rasch",
    );
    let mut three = FitConfig::new(Model::ThreePl);
    three.priors.c = Some(BetaPrior {
        alpha: 0.5,
        beta: 17.0,
    });
    rejects(three, "alpha >= 1");
}

#[test]
fn rejects_zero_min_responses_and_bad_quadrature() {
    rejects(
        FitConfig {
            min_responses: 0,
            ..FitConfig::new(Model::TwoPl)
        },
        "min_responses",
    );
    let mut q = Quadrature::default();
    q.weights.pop();
    rejects(
        FitConfig {
            quadrature: q,
            ..FitConfig::new(Model::TwoPl)
        },
        "one weight per node",
    );
}

// ------------------------------------------------------------- priors in the M-step

/// Priors must act: a tight N(0, 0.3²) prior on b pulls LSAT7's very easy items
/// (b ≈ −1.9, −2.5) towards 0, and a tight log-normal prior on a pulls a₃ = 1.71 to 1.
#[test]
fn priors_on_a_and_b_shrink_the_estimates() {
    let m = lsat7();
    let ml = fit(&m, Model::TwoPl);
    let mut cfg = FitConfig::new(Model::TwoPl);
    cfg.priors.b = Some(NormalPrior { mean: 0.0, sd: 0.3 });
    let fb = calibrate(&m, &cfg).unwrap();
    for (x, y) in fb.items.iter().zip(&ml.items) {
        let pull = if y.params.b.abs() > 1.5 { 0.2 } else { 0.05 };
        assert!(
            x.params.b.abs() < y.params.b.abs() - pull,
            "{} vs {}",
            x.params.b,
            y.params.b
        );
    }
    cfg.priors.b = None;
    cfg.priors.a = Some(LogNormalPrior {
        meanlog: 0.0,
        sdlog: 0.05,
    });
    let fa = calibrate(&m, &cfg).unwrap();
    assert!((fa.items[2].params.a - 1.0).abs() < 0.1 && ml.items[2].params.a > 1.6);
    // the reported loglik excludes the prior, so it is below the ML one
    assert!(fa.loglik < ml.loglik && fb.loglik < ml.loglik);
}

// ------------------------------------------------------------------------ benchmark

/// Stage benchmark: 2PL, 10,000 students × 400 items, 50 answered each (500,000
/// responses), full calibration including SEs. Run with
/// `cargo test -p models --release --test irt_estimation -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_calibrate_500k_responses() {
    use std::time::Instant;
    let bank = models::sim::sparse_bank(10_000, 400, 50, false, 42);
    let n_resp = bank.responses.n_responses() as f64;
    let cfg = FitConfig::new(Model::TwoPl);
    let _ = calibrate(&bank.responses, &cfg).unwrap(); // warm-up (thread pool, page faults)
    let reps = 5;
    let mut best = f64::INFINITY;
    let mut fit = None;
    for _ in 0..reps {
        let t = Instant::now();
        let f = calibrate(&bank.responses, &cfg).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        fit = Some(f);
    }
    let f = fit.unwrap();
    let q = Quadrature::default();
    let tables = ItemTables::new(&bank.items, &q);
    let lp: Vec<f64> = q.weights.iter().map(|w| w.ln()).collect();
    let t = Instant::now();
    let n = 20;
    for _ in 0..n {
        std::hint::black_box(estep(&bank.responses, 0..10_000, &tables, &lp));
    }
    let e = t.elapsed().as_secs_f64() / n as f64;
    // E-steps per calibration: one per cycle plus the final one
    let total_ns = best * 1e9 / (n_resp * 61.0 * (f.iterations + 1) as f64);
    println!(
        "calibrate: best of {reps} {:.1} ms, {} EM cycles, converged {}, SE: {}",
        best * 1e3,
        f.iterations,
        f.converged,
        f.se_method
    );
    println!(
        "  whole calibration: {total_ns:.3} ns per response x node x cycle (wall, {} threads)",
        rayon::current_num_threads()
    );
    println!(
        "  one E-step: {:.2} ms = {:.3} ns per response x node (wall)",
        e * 1e3,
        e * 1e9 / (n_resp * 61.0)
    );
    println!(
        "  RMSE a {:.3}, b {:.3}",
        rmse(&f, &bank.items, |p| p.a),
        rmse(&f, &bank.items, |p| p.b)
    );
}
