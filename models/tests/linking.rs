//! Linking to an anchor scale: recovery of known constants and input validation.

use approx::assert_abs_diff_eq;
use models::irt::{
    FitConfig, IrtError, ItemParams, Model, Quadrature, ScoringConfig, calibrate, score_students,
};
use models::linking::{
    LinkingConstants, LinkingMethod, haebara, link, mean_mean, mean_sigma, stocking_lord,
};
use models::sim::{draw_items, draw_thetas, simulate_complete};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

const TRUE_A: f64 = 1.2;
const TRUE_B: f64 = 0.5;

const METHODS: [LinkingMethod; 4] = [
    LinkingMethod::MeanMean,
    LinkingMethod::MeanSigma,
    LinkingMethod::StockingLord,
    LinkingMethod::Haebara,
];

/// The anchors on the new scale when the base scale is θ* = Aθ + B:
/// a_new = A·a*, b_new = (b* − B)/A (the inverse of `LinkingConstants::item`).
fn to_new_scale(base: &[ItemParams], a: f64, b: f64) -> Vec<ItemParams> {
    base.iter()
        .map(|p| ItemParams::new_3pl(p.a * a, (p.b - b) / a, p.c))
        .collect()
}

fn anchors(guessing: bool, seed: u64) -> (Vec<ItemParams>, Vec<ItemParams>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = draw_items(20, guessing, &mut rng);
    let new = to_new_scale(&base, TRUE_A, TRUE_B);
    (new, base)
}

#[test]
fn constants_transform_consistently() {
    let k = LinkingConstants { a: 1.2, b: 0.5 };
    assert_abs_diff_eq!(k.theta(1.0), 1.7, epsilon = 1e-15);
    assert_abs_diff_eq!(k.se(0.3), 0.36, epsilon = 1e-15);
    let it = ItemParams::new_3pl(1.5, -0.4, 0.2);
    let t = k.item(&it);
    assert_abs_diff_eq!(t.a, 1.25, epsilon = 1e-15);
    assert_abs_diff_eq!(t.b, 0.02, epsilon = 1e-15);
    assert_eq!(t.c, 0.2);
    // the defining property: P(θ; item) = P(Aθ + B; transformed item)
    for theta in [-2.0, 0.0, 0.7, 2.5] {
        assert_abs_diff_eq!(it.p(theta), t.p(k.theta(theta)), epsilon = 1e-14);
    }
    // identity leaves everything alone
    let id = LinkingConstants::IDENTITY;
    assert_eq!(id.item(&it), it);
    assert_eq!(id.theta(0.3), 0.3);
    assert_eq!(id.se(0.3), 0.3);
}

// No noise: the transformed new anchors equal the base anchors exactly at (A, B), so every
// criterion is 0 there. Moment methods are exact up to rounding (~1e-15); LM converges
// to a step of 1e-12. 1e-6 is the brief's bound; observed errors are ~1e-10 or smaller.
#[test]
fn every_method_recovers_constants_without_noise() {
    let quad = Quadrature::default();
    for guessing in [false, true] {
        let (new, base) = anchors(guessing, 11);
        for m in METHODS {
            // (the moment methods ignore c, so they are exact for 3PL anchors too)
            let k = link(m, &new, &base, &quad).unwrap();
            println!(
                "{m} (guessing {guessing}): |dA| = {:.1e}, |dB| = {:.1e}",
                (k.a - TRUE_A).abs(),
                (k.b - TRUE_B).abs()
            );
            assert_abs_diff_eq!(k.a, TRUE_A, epsilon = 1e-6);
            assert_abs_diff_eq!(k.b, TRUE_B, epsilon = 1e-6);
        }
    }
}

// Estimation-like noise: a and b of the new anchors perturbed by N(0, 0.05²), as from a
// calibration of a few thousand students. Mean/sigma and the curve methods average 20
// anchors, so the error in A and B is of order 0.05/√20 ≈ 0.011; 0.05 is ~4.5 such SDs.
// Several seeds so that no single lucky draw carries the test.
#[test]
fn every_method_recovers_constants_with_noise() {
    let quad = Quadrature::default();
    let noise = Normal::new(0.0, 0.05).unwrap();
    for seed in [1u64, 2, 3, 4, 5] {
        let (new, base) = anchors(false, 100 + seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let noisy: Vec<ItemParams> = new
            .iter()
            .map(|p| {
                ItemParams::new(
                    (p.a + noise.sample(&mut rng)).max(0.05),
                    p.b + noise.sample(&mut rng),
                )
            })
            .collect();
        for m in METHODS {
            let k = link(m, &noisy, &base, &quad).unwrap();
            println!("seed {seed} {m}: A = {:.4}, B = {:.4}", k.a, k.b);
            assert_abs_diff_eq!(k.a, TRUE_A, epsilon = 0.05);
            assert_abs_diff_eq!(k.b, TRUE_B, epsilon = 0.05);
        }
    }
}

#[test]
fn curve_methods_minimise_their_criterion() {
    // With noise the optimum is not the truth; check it is a minimum of the criterion by
    // perturbing each constant by ±1e-3 (criterion must not decrease).
    let quad = Quadrature::default();
    let (new, base) = anchors(true, 21);
    let noisy: Vec<ItemParams> = new
        .iter()
        .enumerate()
        .map(|(j, p)| {
            let e = if j % 2 == 0 { 0.07 } else { -0.05 };
            ItemParams::new_3pl(p.a * (1.0 + e), p.b + e, p.c)
        })
        .collect();
    let sl = |k: LinkingConstants| -> f64 {
        quad.nodes
            .iter()
            .zip(&quad.weights)
            .map(|(&t, &w)| {
                let d: f64 = base
                    .iter()
                    .zip(&noisy)
                    .map(|(b, n)| b.p(t) - k.item(n).p(t))
                    .sum();
                w * d * d
            })
            .sum()
    };
    let hb = |k: LinkingConstants| -> f64 {
        quad.nodes
            .iter()
            .zip(&quad.weights)
            .map(|(&t, &w)| {
                w * base
                    .iter()
                    .zip(&noisy)
                    .map(|(b, n)| (b.p(t) - k.item(n).p(t)).powi(2))
                    .sum::<f64>()
            })
            .sum()
    };
    let k_sl = stocking_lord(&noisy, &base, &quad).unwrap();
    let k_hb = haebara(&noisy, &base, &quad).unwrap();
    for (k, f) in [(k_sl, &sl as &dyn Fn(LinkingConstants) -> f64), (k_hb, &hb)] {
        let at = f(k);
        for (da, db) in [(1e-3, 0.0), (-1e-3, 0.0), (0.0, 1e-3), (0.0, -1e-3)] {
            let moved = f(LinkingConstants {
                a: k.a + da,
                b: k.b + db,
            });
            assert!(
                moved >= at,
                "criterion {at} decreased to {moved} at ({da}, {db})"
            );
        }
    }
    // the two criteria differ, and so do their optima
    assert!((k_sl.a - k_hb.a).abs() + (k_sl.b - k_hb.b).abs() > 1e-6);
}

#[test]
fn none_is_identity_and_fixed_is_an_error() {
    let quad = Quadrature::default();
    let (new, base) = anchors(false, 5);
    assert_eq!(
        link(LinkingMethod::None, &new, &base, &quad).unwrap(),
        LinkingConstants::IDENTITY
    );
    // None does not look at the anchors at all
    assert_eq!(
        link(LinkingMethod::None, &[], &[], &quad).unwrap(),
        LinkingConstants::IDENTITY
    );
    let err = link(LinkingMethod::Fixed, &new, &base, &quad).unwrap_err();
    assert!(err.to_string().contains("FitConfig.fixed"), "{err}");
}

#[test]
fn method_names_round_trip() {
    let all = [
        (LinkingMethod::None, "none"),
        (LinkingMethod::MeanMean, "mean-mean"),
        (LinkingMethod::MeanSigma, "mean-sigma"),
        (LinkingMethod::StockingLord, "stocking-lord"),
        (LinkingMethod::Haebara, "haebara"),
        (LinkingMethod::Fixed, "fixed"),
    ];
    for (m, s) in all {
        assert_eq!(m.to_string(), s);
        assert_eq!(s.parse::<LinkingMethod>().unwrap(), m);
    }
    assert_eq!(
        "Stocking_Lord".parse::<LinkingMethod>().unwrap(),
        LinkingMethod::StockingLord
    );
    assert!("equipercentile".parse::<LinkingMethod>().is_err());
}

/// Runs every method on (new, base) and checks each returns an error whose message
/// contains `needle`.
fn all_fail(new: &[ItemParams], base: &[ItemParams], needle: &str) {
    let quad = Quadrature::default();
    for m in METHODS {
        let err = link(m, new, base, &quad).expect_err("invalid anchors must be rejected");
        assert!(
            err.to_string().contains(needle),
            "{m}: '{err}' does not mention '{needle}'"
        );
    }
}

#[test]
fn rejects_different_lengths() {
    let (new, base) = anchors(false, 1);
    all_fail(&new[..19], &base, "19 new vs 20 base");
}

#[test]
fn rejects_fewer_than_two_anchors() {
    let (new, base) = anchors(false, 1);
    all_fail(&new[..1], &base[..1], "at least 2 anchor items, got 1");
    all_fail(&[], &[], "at least 2 anchor items, got 0");
}

#[test]
fn rejects_non_positive_a() {
    let (mut new, base) = anchors(false, 1);
    new[3].a = 0.0;
    all_fail(&new, &base, "new-scale anchor: a must be > 0");
    let (new, mut base) = anchors(false, 1);
    base[7].a = -1.0;
    all_fail(&new, &base, "base-scale anchor: a must be > 0");
    // and the error names the item
    let err = mean_mean(&new, &base).unwrap_err();
    assert!(
        matches!(err, IrtError::InvalidItem { item: 7, .. }),
        "{err:?}"
    );
}

#[test]
fn rejects_non_finite_b() {
    let (mut new, base) = anchors(false, 1);
    new[0].b = f64::NAN;
    all_fail(&new, &base, "b must be finite");
    let (new, mut base) = anchors(false, 1);
    base[0].b = f64::INFINITY;
    all_fail(&new, &base, "b must be finite");
}

#[test]
fn rejects_c_outside_unit_interval() {
    let (mut new, base) = anchors(false, 1);
    new[2].c = 1.0;
    all_fail(&new, &base, "c must be in [0, 1)");
    let (new, mut base) = anchors(false, 1);
    base[2].c = -0.1;
    all_fail(&new, &base, "c must be in [0, 1)");
}

#[test]
fn mean_sigma_rejects_constant_difficulties() {
    let same_b = [ItemParams::new(1.0, 0.3), ItemParams::new(1.4, 0.3)];
    let varied = [ItemParams::new(1.0, -0.3), ItemParams::new(1.4, 0.9)];
    let err = mean_sigma(&same_b, &varied).unwrap_err();
    assert!(
        err.to_string().contains("sd(b) on the new scale is 0"),
        "{err}"
    );
    let err = mean_sigma(&varied, &same_b).unwrap_err();
    assert!(
        err.to_string().contains("sd(b) on the base scale is 0"),
        "{err}"
    );
    // mean/mean does not need spread in b; the curve methods fall back to it for a start
    let quad = Quadrature::default();
    assert!(mean_mean(&same_b, &varied).is_ok());
    assert!(stocking_lord(&same_b, &varied, &quad).is_ok());
    assert!(haebara(&same_b, &varied, &quad).is_ok());
}

#[test]
fn curve_methods_reject_invalid_grid() {
    let (new, base) = anchors(false, 1);
    let mut quad = Quadrature::default();
    quad.weights.pop();
    for r in [
        stocking_lord(&new, &base, &quad),
        haebara(&new, &base, &quad),
    ] {
        let err = r.unwrap_err();
        assert!(err.to_string().contains("quadrature"), "{err}");
    }
    let mut quad = Quadrature::default();
    quad.weights[3] = -1.0;
    assert!(stocking_lord(&new, &base, &quad).is_err());
    assert!(haebara(&new, &base, &quad).is_err());
}

/// Two forms sharing 20 anchors, each with 20 unique items (40 per form, complete
/// design), calibrated separately (2PL, `mirt` defaults). Form 1: 10,000 students
/// ~ N(0, 1), so its calibration (latent N(0, 1)) is the base scale. Form 2: 10,000
/// students ~ N(0.5, 1.2²); its calibration standardises them, θ_new = (θ − 0.5)/1.2, so
/// the constants to recover are A = 1.2, B = 0.5.
///
/// Sample size and tolerance: the error in A and B comes from the sampled abilities
/// (SD of B ≈ √((1 + 1.2²)/n)) and from the anchors' estimation error. With 3,000 students
/// per form a scan of 20 seeds gave errors up to 0.09 (A, mean/sigma) and 0.074 (B), so
/// 0.05 would fail for some seeds; with 10,000 per form the worst of the same 20 seeds
/// × 4 methods was 0.031, so 0.05 holds with a margin and still fails for a wrong
/// direction of the transformation, a swapped A/B, or an error of 1/A.
#[test]
fn end_to_end_two_forms_calibrated_and_linked() {
    let n = 10_000;
    let mut rng = StdRng::seed_from_u64(2024);
    let anchors = draw_items(20, false, &mut rng);
    let unique1 = draw_items(20, false, &mut rng);
    let unique2 = draw_items(20, false, &mut rng);
    let form1: Vec<ItemParams> = anchors.iter().chain(&unique1).copied().collect();
    let form2: Vec<ItemParams> = anchors.iter().chain(&unique2).copied().collect();
    let thetas1 = draw_thetas(n, 0.0, 1.0, &mut rng);
    let thetas2 = draw_thetas(n, TRUE_B, TRUE_A, &mut rng);
    let resp1 = simulate_complete(&form1, &thetas1, 31);
    let resp2 = simulate_complete(&form2, &thetas2, 32);

    let fit1 = calibrate(&resp1, &FitConfig::new(Model::TwoPl)).unwrap();
    let fit2 = calibrate(&resp2, &FitConfig::new(Model::TwoPl)).unwrap();
    assert!(fit1.converged && fit2.converged);
    assert!(fit1.items[..20].iter().all(|f| f.excluded.is_none()));
    assert!(fit2.items[..20].iter().all(|f| f.excluded.is_none()));
    let base: Vec<ItemParams> = fit1.items[..20].iter().map(|f| f.params).collect();
    let new: Vec<ItemParams> = fit2.items[..20].iter().map(|f| f.params).collect();

    // Form 2's students scored on their own calibration (mean EAP ≈ 0 there).
    let slots: Vec<Option<ItemParams>> = fit2.items.iter().map(|f| Some(f.params)).collect();
    let scores = score_students(&resp2, &slots, &ScoringConfig::default()).unwrap();
    let own_mean = scores
        .iter()
        .map(|s| s.expect("every student answered").theta)
        .sum::<f64>()
        / n as f64;

    let quad = Quadrature::default();
    for m in METHODS {
        let k = link(m, &new, &base, &quad).unwrap();
        println!(
            "end-to-end {m}: A = {:.4} (err {:+.4}), B = {:.4} (err {:+.4})",
            k.a,
            k.a - TRUE_A,
            k.b,
            k.b - TRUE_B
        );
        assert_abs_diff_eq!(k.a, TRUE_A, epsilon = 0.05);
        assert_abs_diff_eq!(k.b, TRUE_B, epsilon = 0.05);
        // Carried over with the constants, form 2's mean EAP lands at the population mean
        // 0.5 on the base scale: B's error (< 0.05) plus the sample mean's (SD 0.012).
        assert_abs_diff_eq!(k.theta(own_mean), TRUE_B, epsilon = 0.07);
    }
}

/// Drift screen inside `calibrate_linked`: a bank with guessing (3PL truth) calibrated as
/// 2PL. The 2PL estimates of 3PL anchors have lower b and a than their known 3PL
/// parameters by construction; compared with the known curves' 2PL projections they are
/// not flagged. Anchors whose known b is off by 1.0 are flagged, exactly those, and the
/// constants stay within 0.03 of those with correct known parameters.
#[test]
fn drift_screen_flags_shifted_anchors_not_model_misfit() {
    use models::calibration::calibrate_linked;
    let mut rng = StdRng::seed_from_u64(21);
    let items = draw_items(30, true, &mut rng);
    let thetas = draw_thetas(5000, TRUE_B, TRUE_A, &mut rng);
    let m = simulate_complete(&items, &thetas, 22);
    let anchors = |shift: &[usize]| -> Vec<(usize, ItemParams)> {
        (0..15)
            .map(|j| {
                let mut p = items[j];
                if shift.contains(&j) {
                    p.b += 1.0;
                }
                (j, p)
            })
            .collect()
    };
    let run = |a: &[(usize, ItemParams)]| {
        calibrate_linked(
            &m,
            FitConfig::new(Model::TwoPl),
            a,
            Some(LinkingMethod::StockingLord),
        )
        .unwrap()
    };
    let clean = run(&anchors(&[]));
    assert!(
        clean.drift.iter().all(|(_, d)| !d.flagged),
        "{:?}",
        clean.drift
    );
    assert_eq!(clean.n_anchors_used, 15);
    // the comparison is with the 2PL projection of each known 3PL curve
    assert!(
        clean
            .drift
            .iter()
            .all(|(_, d)| d.compared_with.c == 0.0 && d.compared_with.b < d.reference.b)
    );
    let shifted = run(&anchors(&[2, 9]));
    let flagged: Vec<usize> = shifted
        .drift
        .iter()
        .filter(|(_, d)| d.flagged)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(flagged, [2, 9]);
    assert_eq!(shifted.n_anchors_used, 13);
    assert_abs_diff_eq!(shifted.constants.a, clean.constants.a, epsilon = 0.03);
    assert_abs_diff_eq!(shifted.constants.b, clean.constants.b, epsilon = 0.03);
}
