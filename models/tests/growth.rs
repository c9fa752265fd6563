//! Growth models against truth: lme4's published sleepstudy fit, closed forms of the
//! balanced design, simulated recovery, the conjugate special case of the sampler, and
//! degenerate inputs.

use models::growth::{
    BayesConfig, BayesPriors, GrowthData, GrowthError, GrowthSimSpec, LmmConfig, LmmFit, LmmMethod,
    VarianceComponents, fit_bayes, fit_lmm, lmm_criterion, simulate,
};

/// lme4's `sleepstudy` (Belenky et al. 2003): Reaction (ms), Days, Subject — the one
/// copy in the project, also read by the `irtlake fit lmm` test (tests/e2e/fit_cli.rs).
const SLEEPSTUDY_CSV: &str = include_str!("data/sleepstudy.csv");

fn sleepstudy() -> (GrowthData, Vec<u32>) {
    let (mut subj, mut days, mut rt) = (Vec::new(), Vec::new(), Vec::new());
    for rec in SLEEPSTUDY_CSV.lines().skip(1) {
        let f: Vec<&str> = rec.split(',').collect();
        rt.push(f[0].parse::<f64>().expect("reaction"));
        days.push(f[1].parse::<f64>().expect("days"));
        subj.push(f[2].parse::<u32>().expect("subject"));
    }
    assert_eq!(rt.len(), 180);
    GrowthData::from_ids(&subj, &days, &rt).expect("sleepstudy is valid")
}

fn truth() -> VarianceComponents {
    VarianceComponents {
        sd_intercept: 0.8,
        sd_slope: 0.15,
        corr: 0.3,
        sd_residual: 0.4,
    }
}

fn sim(
    n_groups: usize,
    n_times: usize,
    p_missing: f64,
    seed: u64,
) -> (models::growth::SimulatedGrowth, GrowthData) {
    let s = simulate(
        &GrowthSimSpec {
            n_groups,
            n_times,
            p_missing,
            beta: [0.2, 0.1],
            variance: truth(),
        },
        seed,
    )
    .expect("valid spec");
    let d = GrowthData::new(&s.group, &s.time, &s.y).expect("valid data");
    (s, d)
}

fn reml() -> LmmConfig {
    LmmConfig::default()
}

fn ml() -> LmmConfig {
    LmmConfig {
        method: LmmMethod::Ml,
        ..LmmConfig::default()
    }
}

/// Spearman rank correlation (no ties expected).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let rank = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as f64;
        }
        r
    };
    let (ra, rb) = (rank(a), rank(b));
    let n = a.len() as f64;
    let m = (n - 1.0) / 2.0;
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - m) * (y - m)).sum();
    let var: f64 = ra.iter().map(|x| (x - m).powi(2)).sum();
    cov / var
}

// ---------------------------------------------------------------- REML / ML ----

/// lme4 1.1: `lmer(Reaction ~ Days + (Days | Subject), sleepstudy)` prints fixed effects
/// 251.405 (6.825) and 10.467 (1.546), SDs 24.741 and 5.922, corr 0.066, residual
/// 25.592, "REML criterion at convergence: 1743.6" (`REMLcrit()` = 1743.628). Printed
/// values are rounded to 3 decimals, so we allow 0.002 (half a unit of rounding plus
/// optimiser tolerance). The ML fit (`REML = FALSE`) prints SEs 6.632 and 1.502, SDs
/// 23.780 and 5.717, corr 0.081, residual 25.592, deviance 1751.939 (logLik −875.97).
#[test]
fn sleepstudy_matches_lme4() {
    let (data, keys) = sleepstudy();
    assert_eq!(keys.len(), 18);
    let fit = fit_lmm(&data, &reml()).expect("fit");
    let close = |got: f64, want: f64, tol: f64, what: &str| {
        assert!((got - want).abs() <= tol, "{what}: got {got}, lme4 {want}");
    };
    close(fit.intercept.estimate, 251.405, 0.002, "intercept");
    close(fit.intercept.se, 6.825, 0.002, "SE intercept");
    close(fit.slope.estimate, 10.467, 0.002, "slope");
    close(fit.slope.se, 1.546, 0.002, "SE slope");
    close(fit.variance.sd_intercept, 24.741, 0.002, "sd intercept");
    close(fit.variance.sd_slope, 5.922, 0.002, "sd slope");
    close(fit.variance.corr, 0.066, 0.002, "corr");
    close(fit.variance.sd_residual, 25.592, 0.002, "residual sd");
    close(fit.criterion, 1743.628, 0.002, "REMLcrit");
    assert!(fit.converged && !fit.singular);
    assert_eq!((fit.n_obs, fit.n_groups, fit.blups.len()), (180, 18, 18));

    let fit = fit_lmm(&data, &ml()).expect("ml fit");
    close(fit.intercept.estimate, 251.405, 0.002, "ML intercept");
    close(fit.intercept.se, 6.632, 0.002, "ML SE intercept");
    close(fit.slope.estimate, 10.467, 0.002, "ML slope");
    close(fit.slope.se, 1.502, 0.002, "ML SE slope");
    close(fit.variance.sd_intercept, 23.780, 0.002, "ML sd intercept");
    close(fit.variance.sd_slope, 5.717, 0.002, "ML sd slope");
    close(fit.variance.corr, 0.081, 0.002, "ML corr");
    close(fit.variance.sd_residual, 25.592, 0.002, "ML residual sd");
    close(fit.criterion, 1751.939, 0.002, "deviance");
    close(fit.log_likelihood, -875.97, 0.005, "logLik");
}

/// Per-group OLS on a balanced design: the closed-form REML and ML estimates.
///
/// With identical Xᵢ (n times, m groups), yᵢ ↦ (b̂ᵢ, residuals) splits the likelihood into
/// b̂ᵢ ~ iid N(β, Ω), Ω = Σ + σ²(XᵀX)⁻¹, and SSᵢ/σ² ~ χ²(n − 2). When the unconstrained
/// optimum is interior (Σ̂ positive definite), both criteria give σ̂² = ΣSSᵢ/(m(n − 2))
/// (the within-group residual mean square) and β̂ = mean of b̂ᵢ; REML gives
/// Ω̂ = sample covariance of b̂ with divisor m − 1, ML the same with divisor m.
struct BalancedClosedForm {
    beta: [f64; 2],
    sigma2: f64,
    sigma_reml: [f64; 3],
    sigma_ml: [f64; 3],
}

fn balanced_closed_form(group: &[usize], time: &[f64], y: &[f64]) -> BalancedClosedForm {
    let m = group.iter().max().expect("rows") + 1;
    let mut rows: Vec<Vec<(f64, f64)>> = vec![Vec::new(); m];
    for ((&g, &t), &v) in group.iter().zip(time).zip(y) {
        rows[g].push((t, v));
    }
    let n = rows[0].len();
    let (mut bs, mut ss) = (Vec::new(), 0.0);
    let ts: Vec<f64> = rows[0].iter().map(|r| r.0).collect();
    let tbar = ts.iter().sum::<f64>() / n as f64;
    let stt: f64 = ts.iter().map(|t| (t - tbar).powi(2)).sum();
    for r in &rows {
        assert_eq!(
            r.iter().map(|x| x.0).collect::<Vec<_>>(),
            ts,
            "design must be balanced"
        );
        let ybar = r.iter().map(|x| x.1).sum::<f64>() / n as f64;
        let b1 = r.iter().map(|x| (x.0 - tbar) * (x.1 - ybar)).sum::<f64>() / stt;
        let b0 = ybar - b1 * tbar;
        ss += r.iter().map(|x| (x.1 - b0 - b1 * x.0).powi(2)).sum::<f64>();
        bs.push([b0, b1]);
    }
    let mf = m as f64;
    let sigma2 = ss / (mf * (n as f64 - 2.0));
    let mean = [
        bs.iter().map(|b| b[0]).sum::<f64>() / mf,
        bs.iter().map(|b| b[1]).sum::<f64>() / mf,
    ];
    let mut sb = [0.0; 3];
    for b in &bs {
        let d = [b[0] - mean[0], b[1] - mean[1]];
        sb[0] += d[0] * d[0];
        sb[1] += d[0] * d[1];
        sb[2] += d[1] * d[1];
    }
    // (XᵀX)⁻¹ for X = [1, t].
    let (a00, a01, a11) = (
        n as f64,
        ts.iter().sum::<f64>(),
        ts.iter().map(|t| t * t).sum::<f64>(),
    );
    let det = a00 * a11 - a01 * a01;
    let xinv = [a11 / det, -a01 / det, a00 / det];
    let sigma_of = |div: f64| {
        [
            sb[0] / div - sigma2 * xinv[0],
            sb[1] / div - sigma2 * xinv[1],
            sb[2] / div - sigma2 * xinv[2],
        ]
    };
    BalancedClosedForm {
        beta: mean,
        sigma2,
        sigma_reml: sigma_of(mf - 1.0),
        sigma_ml: sigma_of(mf),
    }
}

fn cov_of(fit: &LmmFit) -> [f64; 3] {
    let v = fit.variance;
    [
        v.sd_intercept.powi(2),
        v.corr * v.sd_intercept * v.sd_slope,
        v.sd_slope.powi(2),
    ]
}

/// Closed form on a balanced simulated design and on sleepstudy (also balanced):
/// relative agreement 1e-5 (the optimiser's θ tolerance is 1e-8).
#[test]
fn balanced_design_matches_closed_form_reml_and_ml() {
    let s = simulate(
        &GrowthSimSpec {
            n_groups: 200,
            n_times: 6,
            p_missing: 0.0,
            beta: [0.2, 0.1],
            variance: truth(),
        },
        11,
    )
    .expect("spec");
    let sim_data = GrowthData::new(&s.group, &s.time, &s.y).expect("data");
    let cf_sim = balanced_closed_form(&s.group, &s.time, &s.y);

    let (sleep, _) = sleepstudy();
    let (mut g, mut t, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for (k, rec) in SLEEPSTUDY_CSV.lines().skip(1).enumerate() {
        let f: Vec<&str> = rec.split(',').collect();
        g.push(k / 10);
        t.push(f[1].parse::<f64>().expect("days"));
        y.push(f[0].parse::<f64>().expect("rt"));
    }
    let cf_sleep = balanced_closed_form(&g, &t, &y);

    for (data, cf) in [(&sim_data, &cf_sim), (&sleep, &cf_sleep)] {
        for (sig, _) in [(cf.sigma_reml, "reml"), (cf.sigma_ml, "ml")] {
            assert!(
                sig[0] > 0.0 && sig[0] * sig[2] > sig[1] * sig[1],
                "closed form must be interior: {sig:?}"
            );
        }
        let rel = |got: f64, want: f64, what: &str| {
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1e-3),
                "{what}: got {got}, closed form {want}"
            );
        };
        for (cfg, sig, name) in [(reml(), cf.sigma_reml, "REML"), (ml(), cf.sigma_ml, "ML")] {
            let fit = fit_lmm(data, &cfg).expect("fit");
            assert!(fit.converged);
            rel(fit.intercept.estimate, cf.beta[0], &format!("{name} beta0"));
            rel(fit.slope.estimate, cf.beta[1], &format!("{name} beta1"));
            rel(
                fit.variance.sd_residual.powi(2),
                cf.sigma2,
                &format!("{name} sigma2"),
            );
            let c = cov_of(&fit);
            rel(c[0], sig[0], &format!("{name} var intercept"));
            rel(c[1], sig[1], &format!("{name} cov"));
            rel(c[2], sig[2], &format!("{name} var slope"));
        }
    }
}

/// 800 groups × 6 weeks, 20% of rows missing (unbalanced, some groups with 1–2 rows):
/// fixed effects within 2 SE of truth, SDs within 20% of truth, ρ within 0.1 of 0.3
/// (its sampling SD here is ≈ 0.05), and BLUPs track the true effects.
#[test]
fn reml_recovers_simulated_truth() {
    let (s, data) = sim(800, 6, 0.2, 2024);
    let fit = fit_lmm(&data, &reml()).expect("fit");
    assert!(fit.converged && !fit.singular);
    assert!(
        (fit.intercept.estimate - 0.2).abs() < 2.0 * fit.intercept.se,
        "{:?}",
        fit.intercept
    );
    assert!(
        (fit.slope.estimate - 0.1).abs() < 2.0 * fit.slope.se,
        "{:?}",
        fit.slope
    );
    let v = fit.variance;
    for (got, want, what) in [
        (v.sd_intercept, 0.8, "sd_intercept"),
        (v.sd_slope, 0.15, "sd_slope"),
        (v.sd_residual, 0.4, "sd_residual"),
    ] {
        assert!((got / want - 1.0).abs() < 0.2, "{what}: {got} vs {want}");
    }
    assert!((v.corr - 0.3).abs() < 0.1, "corr {}", v.corr);
    let u0: Vec<f64> = fit.blups.iter().map(|b| b.u0).collect();
    let t0: Vec<f64> = s.effects.iter().map(|e| e[0]).collect();
    assert!(
        spearman(&u0, &t0) > 0.85,
        "BLUP u0 rank corr {}",
        spearman(&u0, &t0)
    );
}

/// What must hold between REML and ML (unbalanced data, so nothing is trivially equal):
/// * each fit minimises its own criterion: ML deviance(ML fit) ≤ ML deviance at the
///   REML estimates and REMLcrit(REML fit) ≤ REMLcrit at the ML estimates;
/// * the reported criterion is the criterion of the reported estimates (1e-6);
/// * Harville's identity REMLcrit(v) = deviance(v) + log det(XᵀV⁻¹X) − 2 log 2π, with
///   (XᵀV⁻¹X)⁻¹ = the REML fit's `vcov_fixed` at v = the REML estimates (1e-6);
/// * ML variances are smaller (REML corrects ML's downward bias, for the random-effect
///   variances by ≈ (m−1)/m here), and the fixed effects nearly equal (< 0.25 SE).
#[test]
fn reml_and_ml_relations() {
    let (_, data) = sim(300, 6, 0.3, 7);
    let fr = fit_lmm(&data, &reml()).expect("reml");
    let fm = fit_lmm(&data, &ml()).expect("ml");
    let dev = |v: &VarianceComponents| lmm_criterion(&data, LmmMethod::Ml, v).expect("dev");
    let rcrit = |v: &VarianceComponents| lmm_criterion(&data, LmmMethod::Reml, v).expect("crit");
    assert!((dev(&fm.variance) - fm.criterion).abs() < 1e-6);
    assert!((rcrit(&fr.variance) - fr.criterion).abs() < 1e-6);
    assert!(
        fm.criterion <= dev(&fr.variance) + 1e-9,
        "{} vs {}",
        fm.criterion,
        dev(&fr.variance)
    );
    assert!(fr.criterion <= rcrit(&fm.variance) + 1e-9);
    let vc = fr.vcov_fixed;
    let det_vcov = vc[0][0] * vc[1][1] - vc[0][1] * vc[1][0];
    let harville = dev(&fr.variance) - det_vcov.ln() - 2.0 * std::f64::consts::TAU.ln();
    assert!(
        (fr.criterion - harville).abs() < 1e-6,
        "{} vs {harville}",
        fr.criterion
    );
    assert!(fm.variance.sd_intercept < fr.variance.sd_intercept);
    assert!(fm.variance.sd_slope < fr.variance.sd_slope);
    assert!((fm.variance.sd_residual / fr.variance.sd_residual - 1.0).abs() < 0.01);
    assert!((fm.intercept.estimate - fr.intercept.estimate).abs() < 0.25 * fr.intercept.se);
    assert!((fm.slope.estimate - fr.slope.estimate).abs() < 0.25 * fr.slope.se);
    assert!(fm.intercept.se < fr.intercept.se && fm.slope.se < fr.slope.se);
}

/// A balanced design whose between-group spread of OLS slopes is below the sampling
/// noise σ̂²(XᵀX)⁻¹₁₁ has no interior REML optimum: the fit is on the boundary (zero
/// slope variance or |ρ| = 1) and flagged singular, not an error.
#[test]
fn boundary_fit_is_flagged_singular() {
    let s = simulate(
        &GrowthSimSpec {
            n_groups: 40,
            n_times: 4,
            p_missing: 0.0,
            beta: [0.0, 0.1],
            variance: VarianceComponents {
                sd_intercept: 0.5,
                sd_slope: 0.0,
                corr: 0.0,
                sd_residual: 0.5,
            },
        },
        3,
    )
    .expect("spec");
    let cf = balanced_closed_form(&s.group, &s.time, &s.y);
    let sig = cf.sigma_reml;
    assert!(
        sig[2] < 0.0 || sig[0] * sig[2] < sig[1] * sig[1],
        "precondition: no interior optimum ({sig:?})"
    );
    let data = GrowthData::new(&s.group, &s.time, &s.y).expect("data");
    let fit = fit_lmm(&data, &reml()).expect("fit");
    assert!(fit.singular, "theta {:?}", fit.theta);
    let c = cov_of(&fit);
    assert!(
        (c[0] * c[2] - c[1] * c[1]).abs() < 1e-6 * (c[0] * c[2]).max(1e-12),
        "Σ̂ should be singular: {c:?}"
    );
}

// ---------------------------------------------------------------- Bayesian ----

/// Dense solve of a small SPD system (Gauss–Jordan), for the conjugate reference.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = a.len();
    for c in 0..n {
        let p = a[c][c];
        a[c].iter_mut().for_each(|v| *v /= p);
        b[c].iter_mut().for_each(|v| *v /= p);
        let (pivot_a, pivot_b) = (a[c].clone(), b[c].clone());
        for r in (0..n).filter(|&r| r != c) {
            let f = a[r][c];
            a[r].iter_mut().zip(&pivot_a).for_each(|(v, q)| *v -= f * q);
            b[r].iter_mut().zip(&pivot_b).for_each(|(v, q)| *v -= f * q);
        }
    }
    b
}

/// Known variance components and β ~ N(0, 10²) per coefficient: the posterior of β is
/// exactly N(m, C), C = (Σᵢ XᵢᵀVᵢ⁻¹Xᵢ + I/100)⁻¹, m = C Σᵢ XᵢᵀVᵢ⁻¹yᵢ (computed here with
/// dense Vᵢ, independently of the library's Woodbury code). NUTS means must be within
/// 4 Monte Carlo SEs, SDs within 4/√(2·ESS) relative, R̂ < 1.01.
#[test]
fn nuts_matches_conjugate_posterior_with_known_variances() {
    let (s, data) = sim(60, 5, 0.3, 5);
    let v = truth();
    let (mut prec, mut rhs) = ([[0.01, 0.0], [0.0, 0.01]], [0.0, 0.0]);
    for g in 0..60 {
        let rows: Vec<usize> = (0..s.group.len()).filter(|&r| s.group[r] == g).collect();
        let n = rows.len();
        let cov = [
            v.sd_intercept.powi(2),
            v.corr * v.sd_intercept * v.sd_slope,
            v.sd_slope.powi(2),
        ];
        let vm: Vec<Vec<f64>> = rows
            .iter()
            .enumerate()
            .map(|(i, &ri)| {
                rows.iter()
                    .enumerate()
                    .map(|(j, &rj)| {
                        let (ti, tj) = (s.time[ri], s.time[rj]);
                        cov[0]
                            + cov[1] * (ti + tj)
                            + cov[2] * ti * tj
                            + if i == j { v.sd_residual.powi(2) } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        // V⁻¹[X, y]
        let rhs_cols: Vec<Vec<f64>> = rows.iter().map(|&r| vec![1.0, s.time[r], s.y[r]]).collect();
        let sol = solve(vm, rhs_cols);
        for i in 0..n {
            let x = [1.0, s.time[rows[i]]];
            for a in 0..2 {
                for b in 0..2 {
                    prec[a][b] += x[a] * sol[i][b];
                }
                rhs[a] += x[a] * sol[i][2];
            }
        }
    }
    let det = prec[0][0] * prec[1][1] - prec[0][1] * prec[1][0];
    let c = [prec[1][1] / det, -prec[0][1] / det, prec[0][0] / det];
    let mean = [c[0] * rhs[0] + c[1] * rhs[1], c[1] * rhs[0] + c[2] * rhs[1]];
    let sd = [c[0].sqrt(), c[2].sqrt()];

    let priors = BayesPriors {
        intercept_sd: 10.0,
        slope_sd: 10.0,
        fixed_variances: Some(v),
        ..BayesPriors::default()
    };
    let cfg = BayesConfig {
        warmup: 500,
        draws: 1500,
        seed: 17,
        ..BayesConfig::default()
    };
    let fit = fit_bayes(&data, &priors, &cfg).expect("fit");
    assert_eq!(fit.params.len(), 2);
    for (k, p) in fit.params.iter().enumerate() {
        assert!(p.rhat < 1.01, "{}: rhat {}", p.name, p.rhat);
        assert!(
            (p.mean - mean[k]).abs() < 4.0 * p.mcse_mean,
            "{}: mean {} vs exact {} (mcse {})",
            p.name,
            p.mean,
            mean[k],
            p.mcse_mean
        );
        let tol = 4.0 / (2.0 * p.ess_bulk).sqrt();
        assert!(
            (p.sd / sd[k] - 1.0).abs() < tol,
            "{}: sd {} vs exact {} (tol {tol})",
            p.name,
            p.sd,
            sd[k]
        );
        assert!(p.ess_bulk > 1000.0, "{}: ess {}", p.name, p.ess_bulk);
    }
    assert_eq!(fit.divergences, 0);
    assert!((fit.sigma_mean - 0.4).abs() < 1e-12);
}

/// Full model on simulated data (400 groups × 6 weeks, 30% missing; 4 chains × (1000 +
/// 1000), the defaults): every
/// hyperparameter's truth inside its central 95% posterior interval, R̂ ≤ 1.05, σ's
/// posterior mean near the truth, and P(goal) ordered like the true slopes (Spearman
/// > 0.5) with the goal set 20 weeks out, where the slope dominates.
#[test]
fn bayes_recovers_simulated_hyperparameters() {
    let (s, data) = sim(400, 6, 0.3, 99);
    // Precondition: the data include groups observed once (they inform only τ₀, σ).
    assert!((0..data.n_groups()).any(|g| data.group_size(g) == 1));
    let cfg = BayesConfig {
        seed: 1,
        ..BayesConfig::default()
    };
    let fit = fit_bayes(&data, &BayesPriors::default(), &cfg).expect("fit");
    fit.check_rhat(models::growth::DEFAULT_MAX_RHAT)
        .expect("converged");
    let t = truth();
    for (name, want) in [
        ("beta0", 0.2),
        ("beta1", 0.1),
        ("sd_intercept", t.sd_intercept),
        ("sd_slope", t.sd_slope),
        ("corr", t.corr),
        ("sigma", t.sd_residual),
    ] {
        let p = fit.param(name).expect("sampled");
        assert!(
            p.q2_5 <= want && want <= p.q97_5,
            "{name}: truth {want} outside [{}, {}]",
            p.q2_5,
            p.q97_5
        );
        assert!(p.ess_bulk > 1000.0, "{name}: bulk ESS {}", p.ess_bulk);
    }
    assert!(
        (fit.sigma_mean - 0.4).abs() < 0.03,
        "sigma mean {}",
        fit.sigma_mean
    );
    assert!(fit.max_rhat() <= 1.05);

    let target = 20.0;
    let fc = fit.forecast(target, 0.2 + 0.1 * target);
    assert_eq!(fc.len(), 400);
    assert!(
        fc.iter()
            .all(|f| (0.0..=1.0).contains(&f.p_goal) && f.sd > 0.0)
    );
    assert!(
        fit.forecast(f64::NAN, 1.0)
            .iter()
            .all(|f| f.p_goal.is_nan())
    );
    // The BLUPs alone are the forecast's, bit for bit, without its forecasts.
    for (b, f) in fit.blups().iter().zip(&fc) {
        assert_eq!(
            (b.u0, b.u1, b.sd_u0, b.sd_u1),
            (f.u0, f.u1, f.sd_u0, f.sd_u1)
        );
        assert!(b.mean.is_nan() && b.sd.is_nan() && b.p_goal.is_nan());
    }
    let p: Vec<f64> = fc.iter().map(|f| f.p_goal).collect();
    let slope: Vec<f64> = s.effects.iter().map(|e| e[1]).collect();
    let rho = spearman(&p, &slope);
    assert!(rho > 0.5, "Spearman(P(goal), true slope) = {rho}");
    // The Rao–Blackwellised posterior means agree with the REML BLUPs' ordering.
    let lmm = fit_lmm(&data, &reml()).expect("reml");
    let u1b: Vec<f64> = fc.iter().map(|f| f.u1).collect();
    let u1r: Vec<f64> = lmm.blups.iter().map(|b| b.u1).collect();
    assert!(spearman(&u1b, &u1r) > 0.95);
    // Sampled effects of one group average to its Rao–Blackwellised posterior mean.
    let d = fit.group_effect_draws(0, 5).expect("group 0");
    assert_eq!(d.len(), 4 * 1000);
    let m0 = d.iter().map(|x| x[0]).sum::<f64>() / d.len() as f64;
    assert!(
        (m0 - fc[0].u0).abs() < 4.0 * fc[0].sd_u0 / (d.len() as f64).sqrt(),
        "{m0} vs {}",
        fc[0].u0
    );
}

/// Same seed ⇒ bit-identical draws, whatever the thread count; another seed differs.
#[test]
fn bayes_is_deterministic_given_the_seed() {
    let (_, data) = sim(100, 5, 0.2, 3);
    let cfg = BayesConfig {
        chains: 3,
        warmup: 100,
        draws: 50,
        seed: 42,
        ..BayesConfig::default()
    };
    let a = fit_bayes(&data, &BayesPriors::default(), &cfg).expect("a");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let b = pool
        .install(|| fit_bayes(&data, &BayesPriors::default(), &cfg))
        .expect("b");
    assert_eq!(a.draws, b.draws);
    assert_eq!(a.params, b.params);
    let c = fit_bayes(
        &data,
        &BayesPriors::default(),
        &BayesConfig { seed: 43, ..cfg },
    )
    .expect("c");
    assert_ne!(a.draws, c.draws);
}

// ---------------------------------------------------------------- Degenerate ----

#[test]
fn degenerate_inputs_give_clear_errors() {
    let bayes = |d: &GrowthData| fit_bayes(d, &BayesPriors::default(), &BayesConfig::default());
    // One week of data: every time equal.
    let g: Vec<usize> = (0..30).map(|r| r % 10).collect();
    let t = vec![3.0; 30];
    let y: Vec<f64> = (0..30).map(|r| r as f64 * 0.1).collect();
    let one_week = GrowthData::new(&g, &t, &y).expect("valid rows");
    assert!(matches!(
        fit_lmm(&one_week, &reml()),
        Err(GrowthError::SlopeNotIdentifiable(_))
    ));
    assert!(matches!(
        bayes(&one_week),
        Err(GrowthError::SlopeNotIdentifiable(_))
    ));
    // Each group seen at one time only (times differ between groups).
    let t2: Vec<f64> = (0..30).map(|r| (r % 10) as f64).collect();
    let one_each = GrowthData::new(&g, &t2, &y).expect("valid rows");
    let e = fit_lmm(&one_each, &reml()).expect_err("not identifiable");
    assert!(e.to_string().contains("random-slope variance"), "{e}");
    // Too few groups.
    let few =
        GrowthData::new(&[0, 0, 1, 1], &[0.0, 1.0, 0.0, 1.0], &[0.0, 1.0, 0.5, 0.7]).expect("rows");
    assert_eq!(
        fit_lmm(&few, &reml()).expect_err("2 groups"),
        GrowthError::TooFewGroups { groups: 2, min: 3 }
    );
    assert!(matches!(bayes(&few), Err(GrowthError::TooFewGroups { .. })));
    // Non-finite y names the row.
    let e = GrowthData::new(&[0, 1, 2], &[0.0, 1.0, 2.0], &[0.1, f64::NAN, 0.3]).expect_err("NaN");
    assert!(
        matches!(&e, GrowthError::InvalidInput(m) if m.contains("row 1")),
        "{e}"
    );
    assert!(GrowthData::new(&[0, 1], &[0.0, f64::INFINITY], &[0.1, 0.2]).is_err());
    assert!(GrowthData::new(&[0, 1], &[0.0], &[0.1, 0.2]).is_err());
    assert!(GrowthData::new(&[], &[], &[]).is_err());
    assert!(
        matches!(GrowthData::new(&[0, 2], &[0.0, 1.0], &[0.1, 0.2]), Err(GrowthError::InvalidInput(m)) if m.contains("group index 1"))
    );
    // As many random effects as rows: lme4's check.nobs.vs.nRE.
    let g3: Vec<usize> = (0..20).map(|r| r / 2).collect();
    let t3: Vec<f64> = (0..20).map(|r| (r % 2) as f64).collect();
    let y3: Vec<f64> = (0..20).map(|r| (r * r % 7) as f64).collect();
    let pairs = GrowthData::new(&g3, &t3, &y3).expect("rows");
    assert_eq!(
        fit_lmm(&pairs, &reml()).expect_err("nobs"),
        GrowthError::TooFewObservations {
            n_obs: 20,
            n_random_effects: 20
        }
    );
    // Bad settings.
    let (_, ok) = sim(20, 4, 0.0, 1);
    assert!(matches!(
        fit_bayes(
            &ok,
            &BayesPriors::default(),
            &BayesConfig {
                chains: 0,
                ..BayesConfig::default()
            }
        ),
        Err(GrowthError::InvalidConfig(_))
    ));
    assert!(matches!(
        fit_bayes(
            &ok,
            &BayesPriors {
                slope_sd: 0.0,
                ..BayesPriors::default()
            },
            &BayesConfig::default()
        ),
        Err(GrowthError::InvalidConfig(_))
    ));
    // An R̂ threshold no chain can meet reports the parameter.
    let fit = fit_bayes(
        &ok,
        &BayesPriors::default(),
        &BayesConfig {
            warmup: 50,
            draws: 50,
            ..BayesConfig::default()
        },
    )
    .expect("fit");
    assert!(matches!(
        fit.check_rhat(0.5),
        Err(GrowthError::NotConverged { .. })
    ));
}

/// Wall time at production size (run with `--ignored --nocapture`): 8,000 groups × 5
/// weeks (20% of rows missing), 4 chains × (1000 + 1000), then the per-group forecast;
/// and the worst case where every group has its own design (jittered times).
#[test]
#[ignore = "benchmark"]
fn bench_bayes_8000_groups() {
    let (s, data) = sim(8000, 5, 0.2, 8);
    let t0 = std::time::Instant::now();
    let fit = fit_bayes(&data, &BayesPriors::default(), &BayesConfig::default()).expect("fit");
    let t_fit = t0.elapsed();
    let t1 = std::time::Instant::now();
    let fc = fit.forecast(12.0, 1.5);
    let t_fc = t1.elapsed();
    println!(
        "8000 groups x 5 weeks: {} rows, {} patterns; fit {:.2?} (max rhat {:.4}, divergences {}, steps/draw {:?}); forecast {:.2?} ({} groups)",
        data.n_obs(),
        data.n_patterns(),
        t_fit,
        fit.max_rhat(),
        fit.divergences,
        fit.chain_stats
            .iter()
            .map(|c| c.mean_leapfrog_steps)
            .collect::<Vec<_>>(),
        t_fc,
        fc.len()
    );
    for p in &fit.params {
        println!(
            "  {:<13} mean {:>8.4} sd {:.4} rhat {:.4} ess_bulk {:.0}",
            p.name, p.mean, p.sd, p.rhat, p.ess_bulk
        );
    }
    let t2 = std::time::Instant::now();
    let lmm = fit_lmm(&data, &reml()).expect("reml");
    println!(
        "REML: {:.2?}, {} evaluations",
        t2.elapsed(),
        lmm.evaluations
    );

    // Worst case: continuous times, one design per group.
    let n = s.time.len() as f64;
    let jt: Vec<f64> = s
        .time
        .iter()
        .enumerate()
        .map(|(r, t)| t + 0.1 * r as f64 / n)
        .collect();
    let wd = GrowthData::new(&s.group, &jt, &s.y).expect("data");
    let t3 = std::time::Instant::now();
    let wf = fit_bayes(&wd, &BayesPriors::default(), &BayesConfig::default()).expect("fit");
    println!(
        "jittered times: {} patterns; fit {:.2?} (max rhat {:.4}); forecast {:.2?}",
        wd.n_patterns(),
        t3.elapsed(),
        wf.max_rhat(),
        {
            let t = std::time::Instant::now();
            let _ = wf.forecast(12.0, 1.5);
            t.elapsed()
        }
    );
    let t4 = std::time::Instant::now();
    let wl = fit_lmm(&wd, &reml()).expect("reml");
    println!(
        "REML jittered: {:.2?}, {} evaluations",
        t4.elapsed(),
        wl.evaluations
    );
}
