//! Item fit against R `mirt`'s `itemfit()`: S-X² (Orlando & Thissen, 2000) on the data
//! sets mirt ships, fitted here by irtlake's own engine.
//!
//! Expected values (mirt 1.47, `github.com/philchalmers/mirt`):
//! - LSAT7, 2PL `mirt(expand.table(LSAT7), 1)`: `tests/testthat/test-01-mirtOne.R`
//!   asserts S_X2 = 4.749440, 14.451071, 1.270381, 5.237400, 0.941125, df 2 each;
//! - LSAT6, Rasch `mirt(dat, 1, itemtype = 'Rasch')`: the `LSAT6` help page's example
//!   output prints S_X2 = 0.436, 1.576, 0.872, 0.190, 0.190, df 2, 2, 1, 2, 2 (item 3's
//!   lowest score group merged), p = .804, .455, .351, .909, .909;
//! - SAT12 keyed with item 32 = 3, 2PL: the `SAT12` help page's example output (32 items,
//!   3 decimals; df 3 to 21 after mirt's merging of sparse score groups).
//!
//! Tolerance, as the issue sets it: |ΔS-X²| ≤ 0.0005 + max(0.01, 0.001·value). The
//! parameters are irtlake's estimates, which agree with mirt's to ~1e-3; the printed
//! values carry 3 decimals (0.0005). df must match exactly: it checks the merging.

// Helpers outside #[test] fns parse fixed reference files: unwrap is the right failure.
#![allow(clippy::unwrap_used)]

#[path = "../../tests/reference.rs"]
mod reference;

#[path = "data/lsat7.rs"]
mod lsat7_data;

use models::irt::{
    FitConfig, FitResult, ItemParams, Model, ResponseMatrix, SX2Config, calibrate, mean_squares,
    s_x2,
};

/// A wide 0/1 CSV (header, one row per person) as a response matrix.
fn wide_csv(path: &std::path::Path) -> ResponseMatrix {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let n_items = lines.next().unwrap().split(',').count();
    let mut triplets = Vec::new();
    let mut s = 0u32;
    for line in lines.filter(|l| !l.is_empty()) {
        for (j, v) in line.split(',').enumerate() {
            triplets.push((s, j as u32, v.trim() == "1"));
        }
        s += 1;
    }
    ResponseMatrix::from_triplets(s as usize, n_items, &triplets).unwrap()
}

/// S-X² of a fit, mirt's df rule: the model's parameters per item, plus the latent
/// variance for the Rasch model.
fn sx2_of(m: &ResponseMatrix, fit: &FitResult) -> Vec<(f64, usize, f64)> {
    let items: Vec<Option<ItemParams>> = fit.items.iter().map(|i| Some(i.params)).collect();
    let (free, latent) = match fit.model {
        Model::Rasch => (1, 1),
        Model::TwoPl => (2, 0),
        Model::ThreePl => (3, 0),
    };
    let config = SX2Config {
        latent_mean: fit.latent_mean,
        latent_sd: fit.latent_sd,
        latent_params: latent,
        min_complete: 1,
    };
    s_x2(m, &items, &vec![free; items.len()], &config)
        .unwrap()
        .into_iter()
        .map(|x| {
            let x = x.unwrap();
            (x.stat, x.df, x.p)
        })
        .collect()
}

fn check(data: &str, got: &[(f64, usize, f64)], want: &[(f64, usize)]) {
    assert_eq!(got.len(), want.len(), "{data}: item count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 0.0005 + (0.001 * w.0).max(0.01);
        assert!(
            (g.0 - w.0).abs() <= tol && g.1 == w.1,
            "{data} item {}: S-X2 {:.4} df {} vs mirt {} df {} (tolerance {tol:.4})",
            i + 1,
            g.0,
            g.1,
            w.0,
            w.1
        );
    }
}

#[test]
fn lsat7_2pl_matches_mirts_test_values() {
    let m = lsat7_data::lsat7_matrix();
    let fit = calibrate(&m, &FitConfig::new(Model::TwoPl)).unwrap();
    let got = sx2_of(&m, &fit);
    let want = [
        (4.749440, 2),
        (14.451071, 2),
        (1.270381, 2),
        (5.237400, 2),
        (0.941125, 2),
    ];
    check("LSAT7 2PL", &got, &want);
    // p is the chi-square upper tail: on 2 df, exp(−x/2)
    for g in &got {
        assert!((g.2 - (-g.0 / 2.0).exp()).abs() < 1e-12, "{g:?}");
    }
}

#[test]
fn lsat6_rasch_matches_mirts_printed_values() {
    let Some(dir) = reference::reference_dir("mirt-data") else {
        return;
    };
    let m = wide_csv(&dir.join("lsat6.csv"));
    let fit = calibrate(&m, &FitConfig::new(Model::Rasch)).unwrap();
    let got = sx2_of(&m, &fit);
    let want = [(0.436, 2), (1.576, 2), (0.872, 1), (0.190, 2), (0.190, 2)];
    check("LSAT6 Rasch", &got, &want);
    for (g, p) in got.iter().zip([0.804, 0.455, 0.351, 0.909, 0.909]) {
        assert!((g.2 - p).abs() <= 0.002, "LSAT6 p {:.4} vs mirt {p}", g.2);
    }
}

#[test]
fn sat12_2pl_matches_mirts_printed_values() {
    let Some(dir) = reference::reference_dir("mirt-data") else {
        return;
    };
    let m = wide_csv(&dir.join("sat12_key32eq3.csv"));
    let fit = calibrate(&m, &FitConfig::new(Model::TwoPl)).unwrap();
    let got = sx2_of(&m, &fit);
    let want = [
        (22.083, 18),
        (19.864, 17),
        (9.966, 17),
        (31.479, 19),
        (27.275, 19),
        (31.832, 16),
        (18.125, 18),
        (19.515, 17),
        (12.968, 19),
        (18.951, 18),
        (1.434, 3),
        (13.756, 21),
        (20.770, 18),
        (20.995, 18),
        (21.586, 16),
        (14.872, 19),
        (13.111, 10),
        (18.183, 15),
        (19.950, 19),
        (14.831, 14),
        (21.598, 17),
        (12.706, 12),
        (26.228, 19),
        (14.767, 16),
        (19.590, 19),
        (11.548, 16),
        (9.354, 13),
        (20.872, 18),
        (22.654, 19),
        (24.891, 20),
        (13.107, 12),
        (23.509, 20),
    ];
    check("SAT12 2PL", &got, &want);
}

/// Infit/outfit: no published item-level values exist for these data (mirt's tests and
/// help pages print them only for random simulated data), so the checks are the
/// definitions: on data simulated from a Rasch model with the true θ, every item's mean
/// squares are near 1 (|MS − 1| < 0.15 at 2000 responses) and both z within ±3 (they are
/// standardised: ±3 holds with 99.7% per item, and the seed is fixed);
/// an item simulated flatter than the model (a = 0.3 where the model says 1) has outfit
/// and infit well above 1 and z > 3; a steeper one (a = 3) has both below 1 and z < −3.
#[test]
fn mean_squares_see_flat_and_steep_items() {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n = 2000;
    let model: Vec<ItemParams> = (0..10)
        .map(|j| ItemParams::new(1.0, -1.5 + 0.3 * j as f64))
        .collect();
    let mut truth = model.clone();
    truth[3].a = 0.3;
    truth[7].a = 3.0;
    let theta: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let mut triplets = Vec::new();
    for (s, t) in theta.iter().enumerate() {
        for (j, it) in truth.iter().enumerate() {
            triplets.push((s as u32, j as u32, rng.random::<f64>() < it.p(*t)));
        }
    }
    let m = ResponseMatrix::from_triplets(n, 10, &triplets).unwrap();
    let items: Vec<Option<ItemParams>> = model.iter().copied().map(Some).collect();
    let th: Vec<Option<f64>> = theta.iter().copied().map(Some).collect();
    let ms = mean_squares(&m, &items, &th).unwrap();
    for (j, x) in ms.iter().enumerate() {
        let x = x.unwrap();
        match j {
            3 => assert!(
                x.outfit > 1.2 && x.infit > 1.1 && x.z_outfit > 3.0 && x.z_infit > 3.0,
                "flat item: {x:?}"
            ),
            7 => assert!(
                x.outfit < 0.8 && x.infit < 0.9 && x.z_outfit < -3.0 && x.z_infit < -3.0,
                "steep item: {x:?}"
            ),
            _ => assert!(
                (x.outfit - 1.0).abs() < 0.15
                    && (x.infit - 1.0).abs() < 0.15
                    && x.z_outfit.abs() < 3.0
                    && x.z_infit.abs() < 3.0,
                "item {j}: {x:?}"
            ),
        }
    }
}
