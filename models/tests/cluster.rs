//! k-means segmentation: recovery of simulated groups, choice of k by silhouette,
//! exactness of the Lloyd fixed point, determinism, the partition indices against
//! known values, degenerate inputs, and the segment labels of fitted centroids (the
//! segment rules themselves: `tests/segment.rs`).

use models::cluster::{
    ClusterError, KMeansConfig, Standardizer, adjusted_rand_index, kmeans, silhouette_score,
};
use models::segment::Segment;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// `groups` Gaussian blobs (SD 1 per feature) in 5-D, `per` points each, centres 7
/// apart on the axes (group g at 7·e_g, group 5 at the origin), features then put on
/// very different scales (×1, ×50 + 1000, ×0.01, ×3 − 2, ×1) so that standardization
/// matters. Returns (rows, true group).
fn blobs(groups: usize, per: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0, 1.0).expect("valid SD");
    let scale = [1.0, 50.0, 0.01, 3.0, 1.0];
    let shift = [0.0, 1000.0, 0.0, -2.0, 0.0];
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    for g in 0..groups {
        for _ in 0..per {
            let row: Vec<f64> = (0..5)
                .map(|f| {
                    let centre = if f == g { 7.0 } else { 0.0 };
                    (centre + noise.sample(&mut rng)) * scale[f] + shift[f]
                })
                .collect();
            rows.push(row);
            truth.push(g);
        }
    }
    (rows, truth)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn five_blobs_are_recovered_and_silhouette_picks_five() {
    let (rows, truth) = blobs(5, 400, 1);
    let start = std::time::Instant::now();
    let fit = kmeans(&rows, &KMeansConfig::default()).unwrap();
    println!(
        "2000 x 5, k in 4..=8: {:?}; silhouettes {:?}",
        start.elapsed(),
        fit.silhouette_by_k
    );
    assert_eq!(fit.k, 5);
    let ks: Vec<usize> = fit.silhouette_by_k.iter().map(|(k, _)| *k).collect();
    assert_eq!(ks, vec![4, 5, 6, 7, 8]);
    let best = fit
        .silhouette_by_k
        .iter()
        .map(|(_, s)| *s)
        .fold(f64::MIN, f64::max);
    assert_eq!(fit.silhouette, Some(best));
    let ari = adjusted_rand_index(&fit.labels, &truth).unwrap();
    assert!(ari > 0.9, "ARI {ari}");
    assert!(fit.converged);
    assert_eq!(fit.sizes.iter().sum::<usize>(), 2000);
}

#[test]
fn centres_are_the_means_of_their_points_and_points_their_nearest_centre() {
    let (rows, _) = blobs(5, 200, 2);
    let fit = kmeans(
        &rows,
        &KMeansConfig {
            k: Some(5),
            ..KMeansConfig::default()
        },
    )
    .unwrap();
    let dim = 5;
    for c in 0..fit.k {
        let members: Vec<&Vec<f64>> = rows
            .iter()
            .zip(&fit.labels)
            .filter(|(_, l)| **l == c)
            .map(|(r, _)| r)
            .collect();
        assert_eq!(members.len(), fit.sizes[c]);
        for f in 0..dim {
            let mean = members.iter().map(|r| r[f]).sum::<f64>() / members.len() as f64;
            assert!(
                close(fit.centres[c][f], mean, 1e-12),
                "centre {c} feature {f}"
            );
        }
    }
    // the z-scores used are (x - mean) / SD with the sample SD, and each point's label
    // is its nearest centre in z units; the inertia is their squared distances' sum
    let st = Standardizer::fit(&rows).unwrap();
    assert_eq!(st, fit.standardizer);
    let mut inertia = 0.0;
    for (r, &l) in rows.iter().zip(&fit.labels) {
        let z = st.transform(r);
        let d: Vec<f64> = fit
            .centres_z
            .iter()
            .map(|c| c.iter().zip(&z).map(|(a, b)| (a - b) * (a - b)).sum())
            .collect();
        let nearest = (0..fit.k).min_by(|&a, &b| d[a].total_cmp(&d[b])).unwrap();
        assert_eq!(nearest, l);
        assert_eq!(
            fit.nearest(&z),
            l,
            "KMeansFit::nearest is the assignment rule"
        );
        inertia += d[l];
    }
    assert!(close(fit.inertia, inertia, 1e-10));
    // silhouette reported = exact silhouette of the z-scores (n <= 3000)
    let z: Vec<Vec<f64>> = rows.iter().map(|r| st.transform(r)).collect();
    let exact = silhouette_score(&z, &fit.labels).unwrap();
    assert!(close(fit.silhouette.unwrap(), exact, 1e-12));
}

#[test]
fn standardizer_uses_the_sample_sd() {
    let rows = vec![
        vec![1.0, 5.0],
        vec![2.0, 5.0],
        vec![3.0, 5.0],
        vec![6.0, 5.0],
    ];
    let st = Standardizer::fit(&rows).unwrap();
    assert_eq!(st.means, vec![3.0, 5.0]);
    // Σ(x − 3)² = 4 + 1 + 0 + 9 = 14; / (n − 1) = 14/3
    assert!((st.sds[0] - (14.0f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(st.sds[1], 0.0);
    let z = st.transform(&[6.0, 5.0]);
    assert!((z[0] - 3.0 / (14.0f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(z[1], 0.0);
    assert_eq!(st.inverse(&z), vec![6.0, 5.0]);
}

#[test]
fn results_depend_on_the_seed_only() {
    let (rows, _) = blobs(5, 300, 3);
    let config = KMeansConfig {
        seed: 42,
        ..KMeansConfig::default()
    };
    let a = kmeans(&rows, &config).unwrap();
    let b = kmeans(&rows, &config).unwrap();
    assert_eq!(a, b);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let single = pool.install(|| kmeans(&rows, &config)).unwrap();
    assert_eq!(a, single);
}

#[test]
fn ten_thousand_rows_use_a_sampled_silhouette() {
    // 10,000 × 6 (a sixth, constant-free feature of pure noise): time it, and check that
    // the silhouette sampled on 3000 rows is within 0.02 of the exact one.
    let (rows5, truth) = blobs(5, 2000, 4);
    let mut rng = StdRng::seed_from_u64(8);
    let rows: Vec<Vec<f64>> = rows5
        .into_iter()
        .map(|mut r| {
            r.push(rng.random::<f64>());
            r
        })
        .collect();
    let start = std::time::Instant::now();
    let fit = kmeans(&rows, &KMeansConfig::default()).unwrap();
    let elapsed = start.elapsed();
    println!(
        "10000 x 6, k in 4..=8, 10 restarts: {elapsed:?}; silhouettes {:?}",
        fit.silhouette_by_k
    );
    assert_eq!(fit.k, 5);
    assert!(adjusted_rand_index(&fit.labels, &truth).unwrap() > 0.9);
    let z: Vec<Vec<f64>> = rows.iter().map(|r| fit.standardizer.transform(r)).collect();
    let exact = silhouette_score(&z, &fit.labels).unwrap();
    let sampled = fit.silhouette.unwrap();
    println!("silhouette sampled {sampled:.6}, exact {exact:.6}");
    assert_ne!(sampled, exact, "the silhouette of 10,000 rows is sampled");
    assert!((sampled - exact).abs() < 0.02);
    // generous bound for a shared 2-core machine
    assert!(elapsed.as_secs_f64() < 20.0);
}

#[test]
fn adjusted_rand_index_matches_known_values() {
    // scikit-learn's documented examples
    let ari = |a: &[usize], b: &[usize]| adjusted_rand_index(a, b).unwrap();
    assert_eq!(ari(&[0, 0, 1, 1], &[0, 0, 1, 1]), 1.0);
    assert_eq!(ari(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
    assert!((ari(&[0, 0, 1, 2], &[0, 0, 1, 1]) - 0.5714285714285715).abs() < 1e-15);
    assert!((ari(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 0.5714285714285715).abs() < 1e-15);
    assert_eq!(ari(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0);
    assert!((ari(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-15);
    assert_eq!(ari(&[7, 7, 7], &[1, 1, 1]), 1.0);
    assert_eq!(ari(&[0, 1, 2], &[5, 4, 3]), 1.0);
    // independent random partitions: E[ARI] = 0; SD ≈ 1e-3 at n = 20,000
    let mut rng = StdRng::seed_from_u64(6);
    let a: Vec<usize> = (0..20_000).map(|_| rng.random_range(0..5)).collect();
    let b: Vec<usize> = (0..20_000).map(|_| rng.random_range(0..4)).collect();
    assert!(ari(&a, &b).abs() < 0.01);
    assert_eq!(
        adjusted_rand_index(&[0, 1], &[0]),
        Err(ClusterError::LengthMismatch(2, 1))
    );
    assert!(adjusted_rand_index(&[], &[]).is_err());
}

#[test]
fn silhouette_matches_a_hand_computed_value() {
    // {0, 1} and {5, 6} on a line: s(0) = (5.5 − 1)/5.5, s(1) = (4.5 − 1)/4.5, and the
    // same for the other pair by symmetry.
    let rows = vec![vec![0.0], vec![1.0], vec![5.0], vec![6.0]];
    let s = silhouette_score(&rows, &[3, 3, 9, 9]).unwrap();
    let expected = (4.5 / 5.5 + 3.5 / 4.5) / 2.0;
    assert!((s - expected).abs() < 1e-15, "{s} vs {expected}");
    // a singleton scores 0: {0, 1}, {6}: s(0) = (6 − 1)/6, s(1) = (5 − 1)/5, s(6) = 0
    let rows = vec![vec![0.0], vec![1.0], vec![6.0]];
    let s = silhouette_score(&rows, &[0, 0, 1]).unwrap();
    assert!((s - (5.0 / 6.0 + 4.0 / 5.0) / 3.0).abs() < 1e-15);
    assert!(silhouette_score(&rows, &[0, 0, 0]).is_err());
}

#[test]
fn constant_feature_is_harmless() {
    let (rows, truth) = blobs(5, 100, 5);
    let with_const: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.insert(2, 3.25);
            r
        })
        .collect();
    let config = KMeansConfig {
        k: Some(5),
        ..KMeansConfig::default()
    };
    let a = kmeans(&rows, &config).unwrap();
    let b = kmeans(&with_const, &config).unwrap();
    assert_eq!(b.standardizer.sds[2], 0.0);
    for c in &b.centres {
        assert_eq!(c[2], 3.25);
        assert!(c.iter().all(|v| v.is_finite()));
    }
    assert!(b.centres_z.iter().flatten().all(|v| v.is_finite()));
    assert!(b.silhouette.unwrap().is_finite());
    // the constant column changes nothing
    assert_eq!(adjusted_rand_index(&a.labels, &b.labels).unwrap(), 1.0);
    assert!(adjusted_rand_index(&b.labels, &truth).unwrap() > 0.9);
    // every feature constant: one distinct point; k = 1 works, k = 2 cannot
    let flat = vec![vec![1.0, 2.0]; 10];
    let one = kmeans(
        &flat,
        &KMeansConfig {
            k: Some(1),
            ..KMeansConfig::default()
        },
    )
    .unwrap();
    assert_eq!(one.centres, vec![vec![1.0, 2.0]]);
    assert_eq!(one.silhouette, None);
    assert!(matches!(
        kmeans(
            &flat,
            &KMeansConfig {
                k: Some(2),
                ..KMeansConfig::default()
            }
        ),
        Err(ClusterError::TooFewPoints {
            what: "distinct",
            ..
        })
    ));
}

#[test]
fn degenerate_inputs_are_rejected() {
    let three = vec![vec![0.0, 1.0], vec![2.0, 1.0], vec![5.0, 0.0]];
    assert_eq!(
        kmeans(
            &three,
            &KMeansConfig {
                k: Some(5),
                ..KMeansConfig::default()
            }
        ),
        Err(ClusterError::TooFewPoints {
            k: 5,
            available: 3,
            what: ""
        })
    );
    // automatic k needs at least two rows per cluster for k_min = 4
    let seven: Vec<Vec<f64>> = (0..7).map(|i| vec![i as f64]).collect();
    assert!(matches!(
        kmeans(&seven, &KMeansConfig::default()),
        Err(ClusterError::TooFewPoints { .. })
    ));
    let mut bad = three.clone();
    bad[1][0] = f64::NAN;
    match kmeans(
        &bad,
        &KMeansConfig {
            k: Some(2),
            ..KMeansConfig::default()
        },
    ) {
        Err(ClusterError::NonFinite {
            row: 1,
            feature: 0,
            value,
        }) => assert!(value.is_nan()),
        other => panic!("{other:?}"),
    }
    bad[1][0] = f64::INFINITY;
    assert!(matches!(
        kmeans(
            &bad,
            &KMeansConfig {
                k: Some(2),
                ..KMeansConfig::default()
            }
        ),
        Err(ClusterError::NonFinite {
            row: 1,
            feature: 0,
            ..
        })
    ));
    let ragged = vec![vec![0.0, 1.0], vec![2.0]];
    assert_eq!(
        kmeans(
            &ragged,
            &KMeansConfig {
                k: Some(1),
                ..KMeansConfig::default()
            }
        ),
        Err(ClusterError::Ragged {
            row: 1,
            expected: 2,
            got: 1
        })
    );
    let none: Vec<Vec<f64>> = Vec::new();
    assert!(matches!(
        kmeans(&none, &KMeansConfig::default()),
        Err(ClusterError::Empty(_))
    ));
    assert!(matches!(
        kmeans(
            &three,
            &KMeansConfig {
                k: Some(0),
                ..KMeansConfig::default()
            }
        ),
        Err(ClusterError::InvalidConfig(_))
    ));
    assert!(matches!(
        kmeans(
            &three,
            &KMeansConfig {
                k_min: 6,
                k_max: 5,
                ..KMeansConfig::default()
            }
        ),
        Err(ClusterError::InvalidConfig(_))
    ));
}

#[test]
fn fitted_centroids_get_labels_in_original_units() {
    // Two behaviour groups in the five segment features: frequent efficient learners
    // and rare hint-heavy strugglers.
    let mut rng = StdRng::seed_from_u64(11);
    let jitter = Normal::new(0.0, 0.05).unwrap();
    let mut rows = Vec::new();
    for i in 0..200 {
        let centre = if i % 2 == 0 {
            [1.5, 20.0, 0.2, 0.0, 0.85]
        } else {
            [10.0, 2.0, 2.6, 0.0, 0.25]
        };
        rows.push(
            centre
                .iter()
                .map(|c| c + jitter.sample(&mut rng))
                .collect::<Vec<f64>>(),
        );
    }
    let fit = kmeans(
        &rows,
        &KMeansConfig {
            k: Some(2),
            ..KMeansConfig::default()
        },
    )
    .unwrap();
    let mut labels = fit.centroid_labels().unwrap();
    labels.sort_by_key(|s| s.as_str());
    assert_eq!(labels, vec![Segment::Efficient, Segment::Struggling]);
    let short = kmeans(
        &[vec![1.0, 2.0], vec![3.0, 4.0]],
        &KMeansConfig {
            k: Some(1),
            ..KMeansConfig::default()
        },
    )
    .unwrap();
    assert!(short.centroid_labels().is_err());
}
