//! k-means segmentation: recovery of simulated groups, choice of k by silhouette,
//! exactness of the Lloyd fixed point, determinism, the partition indices against
//! known values, the segment rules at their boundaries, and degenerate inputs.

use models::cluster::{
    ClusterError, KMeansConfig, PRECEDENCE, Segment, SegmentFeatures, Standardizer,
    adjusted_rand_index, centroid_label, kmeans, rule_label, segment_label, silhouette_score,
};
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

/// Features that match no rule: gap 5, sessions 7, hints 1, improvement 0, efficiency 0.55.
fn neutral() -> SegmentFeatures {
    SegmentFeatures {
        gap: 5.0,
        sessions: 7.0,
        hints: 1.0,
        improvement: 0.0,
        efficiency: 0.55,
    }
}

#[test]
fn every_rule_is_strict_at_its_thresholds() {
    assert_eq!(rule_label(&neutral()), None);
    let up = f64::next_up;
    let down = f64::next_down;
    // (segment, features exactly at a threshold, the same a hair beyond it)
    let n = neutral();
    let cases: Vec<(Segment, SegmentFeatures, SegmentFeatures)> = vec![
        // short_frequent: gap < 3 && sessions > 10
        (
            Segment::ShortFrequent,
            SegmentFeatures {
                gap: 3.0,
                sessions: 11.0,
                ..n
            },
            SegmentFeatures {
                gap: down(3.0),
                sessions: 11.0,
                ..n
            },
        ),
        (
            Segment::ShortFrequent,
            SegmentFeatures {
                gap: 2.0,
                sessions: 10.0,
                ..n
            },
            SegmentFeatures {
                gap: 2.0,
                sessions: up(10.0),
                ..n
            },
        ),
        // long_rare: gap > 7 && sessions < 5
        (
            Segment::LongRare,
            SegmentFeatures {
                gap: 7.0,
                sessions: 4.0,
                ..n
            },
            SegmentFeatures {
                gap: up(7.0),
                sessions: 4.0,
                ..n
            },
        ),
        (
            Segment::LongRare,
            SegmentFeatures {
                gap: 8.0,
                sessions: 5.0,
                ..n
            },
            SegmentFeatures {
                gap: 8.0,
                sessions: down(5.0),
                ..n
            },
        ),
        // hint_heavy: hints > 2.0
        (
            Segment::HintHeavy,
            SegmentFeatures { hints: 2.0, ..n },
            SegmentFeatures {
                hints: up(2.0),
                ..n
            },
        ),
        // improving: improvement > 0.3
        (
            Segment::Improving,
            SegmentFeatures {
                improvement: 0.3,
                ..n
            },
            SegmentFeatures {
                improvement: up(0.3),
                ..n
            },
        ),
        // struggling: efficiency < 0.4 && hints > 1.5
        (
            Segment::Struggling,
            SegmentFeatures {
                efficiency: 0.4,
                hints: 1.8,
                ..n
            },
            SegmentFeatures {
                efficiency: down(0.4),
                hints: 1.8,
                ..n
            },
        ),
        (
            Segment::Struggling,
            SegmentFeatures {
                efficiency: 0.3,
                hints: 1.5,
                ..n
            },
            SegmentFeatures {
                efficiency: 0.3,
                hints: up(1.5),
                ..n
            },
        ),
        // efficient: efficiency > 0.7 && hints < 0.5
        (
            Segment::Efficient,
            SegmentFeatures {
                efficiency: 0.7,
                hints: 0.2,
                ..n
            },
            SegmentFeatures {
                efficiency: up(0.7),
                hints: 0.2,
                ..n
            },
        ),
        (
            Segment::Efficient,
            SegmentFeatures {
                efficiency: 0.9,
                hints: 0.5,
                ..n
            },
            SegmentFeatures {
                efficiency: 0.9,
                hints: down(0.5),
                ..n
            },
        ),
    ];
    for (seg, at, beyond) in cases {
        assert!(!seg.matches(&at), "{seg} at {at:?}");
        assert_eq!(rule_label(&at), None, "{seg} at {at:?}");
        assert!(seg.matches(&beyond), "{seg} beyond {beyond:?}");
        assert_eq!(rule_label(&beyond), Some(seg), "{seg} beyond {beyond:?}");
    }
    // NaN matches nothing
    let nan = SegmentFeatures {
        gap: f64::NAN,
        sessions: f64::NAN,
        hints: f64::NAN,
        improvement: f64::NAN,
        efficiency: f64::NAN,
    };
    assert_eq!(rule_label(&nan), None);
}

#[test]
fn overlapping_rules_follow_the_precedence() {
    let n = neutral();
    let cases = [
        // struggling refines hint_heavy
        (
            SegmentFeatures {
                hints: 2.5,
                efficiency: 0.3,
                ..n
            },
            Segment::Struggling,
        ),
        (
            SegmentFeatures {
                hints: 2.5,
                efficiency: 0.3,
                improvement: 0.5,
                gap: 1.0,
                sessions: 20.0,
            },
            Segment::Struggling,
        ),
        (
            SegmentFeatures {
                hints: 2.5,
                improvement: 0.5,
                ..n
            },
            Segment::HintHeavy,
        ),
        (
            SegmentFeatures {
                hints: 2.5,
                gap: 9.0,
                sessions: 2.0,
                ..n
            },
            Segment::HintHeavy,
        ),
        (
            SegmentFeatures {
                improvement: 0.5,
                efficiency: 0.8,
                hints: 0.1,
                ..n
            },
            Segment::Improving,
        ),
        (
            SegmentFeatures {
                improvement: 0.5,
                gap: 1.0,
                sessions: 20.0,
                ..n
            },
            Segment::Improving,
        ),
        (
            SegmentFeatures {
                efficiency: 0.8,
                hints: 0.1,
                gap: 1.0,
                sessions: 20.0,
                ..n
            },
            Segment::Efficient,
        ),
        (
            SegmentFeatures {
                efficiency: 0.8,
                hints: 0.1,
                gap: 9.0,
                sessions: 2.0,
                ..n
            },
            Segment::Efficient,
        ),
        (
            SegmentFeatures {
                efficiency: 0.2,
                hints: 1.8,
                gap: 9.0,
                sessions: 2.0,
                ..n
            },
            Segment::Struggling,
        ),
    ];
    for (f, expected) in cases {
        assert_eq!(rule_label(&f), Some(expected), "{f:?}");
        // the winner is the first matching rule in PRECEDENCE, and others do match
        assert!(
            PRECEDENCE.iter().filter(|s| s.matches(&f)).count() >= 2,
            "{f:?} is no overlap"
        );
    }
    // every rule appears once; steady is not a rule
    for s in [
        Segment::ShortFrequent,
        Segment::LongRare,
        Segment::HintHeavy,
        Segment::Improving,
        Segment::Struggling,
        Segment::Efficient,
    ] {
        assert_eq!(PRECEDENCE.iter().filter(|&&p| p == s).count(), 1);
    }
    assert!(!PRECEDENCE.contains(&Segment::Steady));
}

#[test]
fn unmatched_students_take_the_centroid_label() {
    let n = neutral();
    let hinty_centre = SegmentFeatures { hints: 2.2, ..n };
    // the student matches nothing: the centre's label
    assert_eq!(segment_label(&n, &hinty_centre), Segment::HintHeavy);
    // the student's own rule wins over the centre's
    let improving = SegmentFeatures {
        improvement: 0.6,
        ..n
    };
    assert_eq!(segment_label(&improving, &hinty_centre), Segment::Improving);
    // neither matches: steady
    assert_eq!(centroid_label(&n), Segment::Steady);
    assert_eq!(segment_label(&n, &n), Segment::Steady);
}

#[test]
fn segment_names_round_trip() {
    for (s, name) in [
        (Segment::ShortFrequent, "short_frequent"),
        (Segment::LongRare, "long_rare"),
        (Segment::HintHeavy, "hint_heavy"),
        (Segment::Improving, "improving"),
        (Segment::Struggling, "struggling"),
        (Segment::Efficient, "efficient"),
        (Segment::Steady, "steady"),
    ] {
        assert_eq!(s.as_str(), name);
        assert_eq!(s.to_string(), name);
        assert_eq!(name.parse::<Segment>().unwrap(), s);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
    }
    assert!("busy".parse::<Segment>().is_err());
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
