//! Ability scoring (EAP, MAP, ML) and information functions.

use std::collections::HashMap;
use std::path::Path;

use approx::assert_abs_diff_eq;
use models::irt::{
    EapTable, ItemParams, Quadrature, ResponseMatrix, ScoreMethod, ScoringConfig, eap_score,
    item_information, score_pattern, score_students, test_information,
};

#[path = "data/lsat7.rs"]
mod lsat7_data;
#[path = "../../tests/reference.rs"]
mod reference;

fn read_csv(dir: &Path, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "LSAT7 reference file {} is missing or unreadable ({e})",
            path.display()
        )
    });
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("{} is empty", path.display()))
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .collect();
    (header, rows)
}

fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|e| panic!("not a number in a reference CSV: '{s}' ({e})"))
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("column '{name}' not in header {header:?}"))
}

/// mirt's 2PL items, the responses, and mirt's (θ, SE) per student.
type MirtLsat7 = (Vec<ItemParams>, ResponseMatrix, Vec<(f64, f64)>);

/// LSAT7 from the reference folder: mirt's 2PL items, the responses as a CSR matrix,
/// and mirt's (θ, SE) per student, in student order; `None` (the test is skipped, see
/// `tests/reference.rs`) when the folder is absent.
fn mirt_lsat7() -> Option<MirtLsat7> {
    let dir = reference::reference_dir("lsat7")?;
    let (h, rows) = read_csv(&dir, "mirt_2pl_items.csv");
    let (ci, ca, cb, cc) = (
        column(&h, "item_id"),
        column(&h, "a"),
        column(&h, "b"),
        column(&h, "c"),
    );
    let mut item_index = HashMap::new();
    let items: Vec<ItemParams> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            item_index.insert(r[ci].clone(), k as u32);
            ItemParams::new_3pl(num(&r[ca]), num(&r[cb]), num(&r[cc]))
        })
        .collect();
    assert_eq!(items.len(), 5);

    let (h, rows) = read_csv(&dir, "mirt_2pl_eap_scores.csv");
    let (cs, ct, cse) = (
        column(&h, "student_id"),
        column(&h, "theta"),
        column(&h, "se"),
    );
    let mut student_index = HashMap::new();
    let expected: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            student_index.insert(r[cs].clone(), k as u32);
            (num(&r[ct]), num(&r[cse]))
        })
        .collect();
    assert_eq!(expected.len(), 1000);

    let (h, rows) = read_csv(&dir, "responses_long.csv");
    let (cs, cq, cy) = (
        column(&h, "student_id"),
        column(&h, "question_id"),
        column(&h, "correct"),
    );
    let triplets: Vec<(u32, u32, bool)> = rows
        .iter()
        .map(|r| {
            (
                student_index[&r[cs]],
                item_index[&r[cq]],
                match r[cy].as_str() {
                    "1" => true,
                    "0" => false,
                    other => panic!("unexpected outcome {other}"),
                },
            )
        })
        .collect();
    assert_eq!(triplets.len(), 5000);
    let m = ResponseMatrix::from_triplets(expected.len(), items.len(), &triplets)
        .expect("LSAT7 responses form a valid matrix");
    Some((items, m, expected))
}

fn max_abs_diffs(got: &[Option<models::irt::Score>], expected: &[(f64, f64)]) -> (f64, f64) {
    got.iter()
        .zip(expected)
        .fold((0.0f64, 0.0f64), |(dt, ds), (g, &(t, s))| {
            let g = g.expect("every LSAT7 student answered all 5 items");
            assert_eq!(g.n_responses, 5);
            (dt.max((g.theta - t).abs()), ds.max((g.se - s).abs()))
        })
}

// expected: R mirt 1.41.10, LSAT7 2PL, fscores(method = "EAP", full.scores.SE = TRUE).
// We score with mirt's own published item parameters (printed to 15 significant digits,
// so they are not materially rounded) and the same N(0, 1) prior on [-6, 6]. The only
// difference is the grid: mirt's fscores uses 121 nodes for one factor by default
// (`quadpts <- switch(nfact, '1'=121, ...)`), our default is 61 (the EM grid).
// * 121 nodes: the same computation as mirt's; observed max difference ~6e-15. Asserted
//   at 1e-10: the CSV's 15 digits and summation order leave ~1e-14.
// * 61 nodes (default): only the grid differs. The posterior SDs are >= 0.5 and the node
//   spacing 0.2, where an equally spaced rule on a smooth, Gaussian-like integrand is
//   accurate to far better than 1e-5 (observed ~8e-8 for θ, ~2.4e-7 for SE). Asserted at
//   1e-5, well inside the README's 0.005 for an independent implementation.
#[test]
fn lsat7_eap_matches_mirt() {
    let Some((items, m, expected)) = mirt_lsat7() else {
        return;
    };
    let items: Vec<Option<ItemParams>> = items.into_iter().map(Some).collect();

    let default = score_students(&m, &items, &ScoringConfig::default()).unwrap();
    let (dt61, ds61) = max_abs_diffs(&default, &expected);
    println!("LSAT7 EAP, 61 nodes: max |dθ| = {dt61:.3e}, max |dSE| = {ds61:.3e}");
    assert!(dt61 < 1e-5, "θ differs from mirt by {dt61}");
    assert!(ds61 < 1e-5, "SE differs from mirt by {ds61}");

    let config = ScoringConfig {
        quadrature: Quadrature::new(121, -6.0, 6.0).unwrap(),
        ..ScoringConfig::default()
    };
    let fine = score_students(&m, &items, &config).unwrap();
    let (dt121, ds121) = max_abs_diffs(&fine, &expected);
    println!("LSAT7 EAP, 121 nodes: max |dθ| = {dt121:.3e}, max |dSE| = {ds121:.3e}");
    assert!(dt121 < 1e-10, "θ differs from mirt by {dt121}");
    assert!(ds121 < 1e-10, "SE differs from mirt by {ds121}");
}

#[test]
fn eap_score_agrees_with_score_students() {
    // LSAT7's published table (runs everywhere) with 2PL items near mirt's estimates
    let m = lsat7_data::lsat7_matrix();
    let items = [
        (0.99, -1.88),
        (1.08, -0.75),
        (1.71, -1.06),
        (0.77, -0.64),
        (0.74, -2.52),
    ]
    .map(|(a, b)| ItemParams::new(a, b));
    let slots: Vec<Option<ItemParams>> = items.iter().copied().map(Some).collect();
    let config = ScoringConfig::default();
    let all = score_students(&m, &slots, &config).unwrap();
    for s in [0usize, 17, 500, 999] {
        let (its, ys) = m.row(s);
        let row_items: Vec<ItemParams> = its.iter().map(|&i| items[i as usize]).collect();
        let one = eap_score(&row_items, ys, &config).unwrap();
        // identical arithmetic in the same order
        assert_eq!(Some(one), all[s]);
    }
}

/// Subsets of responses (as a student's topics) scored from the tables are `eap_score`'s
/// scores bit for bit: the same log-likelihoods summed in the same order. Responses to an
/// unusable (`None`) or unknown item are ignored, as if absent.
#[test]
fn eap_table_scores_are_eap_score_bit_for_bit() {
    let items: Vec<ItemParams> = (0..12)
        .map(|i| ItemParams {
            a: 0.6 + 0.15 * i as f64,
            b: -2.0 + 0.35 * i as f64,
            c: if i % 3 == 0 { 0.2 } else { 0.0 },
        })
        .collect();
    let mut slots: Vec<Option<ItemParams>> = items.iter().copied().map(Some).collect();
    slots[5] = None;
    let config = ScoringConfig {
        prior_mean: 0.3,
        prior_sd: 1.2,
        ..ScoringConfig::default()
    };
    let eap = EapTable::new(&slots, &config).unwrap();
    let mut buf = Vec::new();
    let patterns: [&[(u32, bool)]; 4] = [
        &[(0, true), (3, false), (7, true)],
        &[(11, false), (2, true), (5, true), (9, false), (1, true)],
        &[
            (4, true),
            (99, false),
            (6, false),
            (8, true),
            (10, true),
            (0, false),
        ],
        &[(5, true)],
    ];
    for pattern in patterns {
        let got = eap.score(pattern.iter().copied(), &mut buf);
        let usable: Vec<(u32, bool)> = pattern
            .iter()
            .copied()
            .filter(|&(i, _)| slots.get(i as usize).is_some_and(Option::is_some))
            .collect();
        let its: Vec<ItemParams> = usable.iter().map(|&(i, _)| items[i as usize]).collect();
        let ys: Vec<bool> = usable.iter().map(|&(_, y)| y).collect();
        assert_eq!(got, eap_score(&its, &ys, &config), "{pattern:?}");
    }
    assert!(eap.score([(5, true)].into_iter(), &mut buf).is_none());
}

#[test]
fn eap_edge_cases() {
    let config = ScoringConfig::default();
    let items = [ItemParams::new(1.0, 0.0), ItemParams::new(1.2, 0.5)];
    // no responses: nothing to score
    assert_eq!(eap_score(&[], &[], &config), None);
    // unusable input is None, not a panic
    assert_eq!(eap_score(&items, &[true], &config), None);
    assert_eq!(
        eap_score(&[ItemParams::new(-1.0, 0.0)], &[true], &config),
        None
    );
    // all right: finite, above the prior mean, SE below the prior SD
    let s = eap_score(&items, &[true, true], &config).unwrap();
    assert!(s.theta.is_finite() && s.theta > 0.0 && s.se < 1.0 && s.se > 0.0);
    // symmetric pattern under a symmetric prior: EAP exactly at 0 (to rounding, 1e-12)
    let sym = [ItemParams::new(1.3, -0.7), ItemParams::new(1.3, 0.7)];
    let s = eap_score(&sym, &[true, false], &config).unwrap();
    assert_abs_diff_eq!(s.theta, 0.0, epsilon = 1e-12);
    // moving the prior moves the estimate towards it
    let shifted = ScoringConfig {
        prior_mean: 1.0,
        ..ScoringConfig::default()
    };
    assert!(eap_score(&sym, &[true, false], &shifted).unwrap().theta > 0.3);
}

fn config(method: ScoreMethod) -> ScoringConfig {
    ScoringConfig::with_method(method)
}

#[test]
fn map_one_item_closed_form() {
    // One 2PL item a = 1, b = 0, answered right, prior N(0, 1): the mode solves
    // d/dθ [ln σ(θ) − θ²/2] = 1 − σ(θ) − θ = 0. Root by bisection (Python, 200 steps):
    // θ = 0.40105813754154696; SE = 1/√(P(1 − P) + 1) = 0.897950293373063.
    let s = score_pattern(
        &[ItemParams::new(1.0, 0.0)],
        &[true],
        &config(ScoreMethod::Map),
    )
    .unwrap()
    .unwrap();
    // Newton converges quadratically: 1e-9 is loose for it but catches any wrong derivative.
    assert_abs_diff_eq!(s.theta, 0.401_058_137_541_547, epsilon = 1e-9);
    assert_abs_diff_eq!(s.se, 0.897_950_293_373_063, epsilon = 1e-9);
    assert_eq!(s.n_responses, 1);

    // wrong answer: mirror image
    let w = score_pattern(
        &[ItemParams::new(1.0, 0.0)],
        &[false],
        &config(ScoreMethod::Map),
    )
    .unwrap()
    .unwrap();
    assert_abs_diff_eq!(w.theta, -0.401_058_137_541_547, epsilon = 1e-9);
}

#[test]
fn map_symmetric_pattern_and_prior_shift() {
    // Two items symmetric around 0, one right (the easier) and one wrong: mode at 0, and
    // SE = 1/√(a²(P₁Q₁ + P₂Q₂) + 1) with P₁ = σ(0.7a), P₂ = σ(−0.7a).
    let items = [ItemParams::new(1.3, -0.7), ItemParams::new(1.3, 0.7)];
    let s = score_pattern(&items, &[true, false], &config(ScoreMethod::Map))
        .unwrap()
        .unwrap();
    assert_abs_diff_eq!(s.theta, 0.0, epsilon = 1e-9);
    let p: f64 = 1.0 / (1.0 + (-1.3f64 * 0.7).exp());
    let info = 2.0 * 1.3 * 1.3 * p * (1.0 - p) + 1.0;
    assert_abs_diff_eq!(s.se, 1.0 / info.sqrt(), epsilon = 1e-9);

    // MAP with a prior centred at μ on items shifted by μ is the same problem shifted.
    let mu = 0.8;
    let shifted: Vec<ItemParams> = items
        .iter()
        .map(|i| ItemParams::new(i.a, i.b + mu))
        .collect();
    let cfg = ScoringConfig {
        prior_mean: mu,
        ..config(ScoreMethod::Map)
    };
    let t = score_pattern(&shifted, &[true, false], &cfg)
        .unwrap()
        .unwrap();
    assert_abs_diff_eq!(t.theta, mu, epsilon = 1e-9);
}

#[test]
fn ml_closed_forms() {
    // Symmetric pattern: equal slopes, one right one wrong → P₁ + P₂ = 1 → θ = mean(b).
    let items = [ItemParams::new(1.4, -0.3), ItemParams::new(1.4, 1.1)];
    let s = score_pattern(&items, &[true, false], &config(ScoreMethod::Ml))
        .unwrap()
        .unwrap();
    assert_abs_diff_eq!(s.theta, 0.4, epsilon = 1e-9);
    let info = test_information(&items, 0.4);
    assert_abs_diff_eq!(s.se, 1.0 / info.sqrt(), epsilon = 1e-12);

    // Rasch-like: 4 identical items (a = 1.5, b = 0.3), 3 right → 4σ(a(θ − b)) = 3 →
    // θ = b + ln 3 / a = 1.0324081924454065.
    let items = [ItemParams::new(1.5, 0.3); 4];
    let s = score_pattern(&items, &[true, false, true, true], &config(ScoreMethod::Ml))
        .unwrap()
        .unwrap();
    assert_abs_diff_eq!(s.theta, 1.032_408_192_445_406_5, epsilon = 1e-9);
    // SE: I = 4 a² P Q with P = 3/4 → 1/√(4 · 2.25 · 3/16)
    assert_abs_diff_eq!(
        s.se,
        1.0 / (4.0 * 2.25 * 3.0 / 16.0f64).sqrt(),
        epsilon = 1e-9
    );
}

#[test]
fn ml_extreme_patterns_clamp_at_bounds() {
    let items = [
        ItemParams::new(1.0, -1.0),
        ItemParams::new(1.5, 0.0),
        ItemParams::new(0.8, 1.0),
    ];
    let ml = config(ScoreMethod::Ml);
    let right = score_pattern(&items, &[true; 3], &ml).unwrap().unwrap();
    assert_eq!(right.theta, 6.0);
    assert!(right.se.is_finite() && right.se > 1.0, "se {}", right.se);
    assert_abs_diff_eq!(
        right.se,
        1.0 / test_information(&items, 6.0).sqrt(),
        epsilon = 1e-9
    );
    let wrong = score_pattern(&items, &[false; 3], &ml).unwrap().unwrap();
    assert_eq!(wrong.theta, -6.0);
    assert!(wrong.se.is_finite());

    let narrow = ScoringConfig {
        theta_bounds: (-3.5, 4.0),
        ..ml
    };
    assert_eq!(
        score_pattern(&items, &[true; 3], &narrow)
            .unwrap()
            .unwrap()
            .theta,
        4.0
    );
    assert_eq!(
        score_pattern(&items, &[false; 3], &narrow)
            .unwrap()
            .unwrap()
            .theta,
        -3.5
    );

    // MAP of an extreme pattern is interior (the prior bounds it) and finite.
    let map = score_pattern(&items, &[true; 3], &config(ScoreMethod::Map))
        .unwrap()
        .unwrap();
    assert!(map.theta > 0.5 && map.theta < 6.0 && map.se.is_finite());
}

/// Log-likelihood of a pattern, written out independently of the library.
fn loglik(items: &[ItemParams], ys: &[bool], t: f64) -> f64 {
    items
        .iter()
        .zip(ys)
        .map(|(it, &y)| {
            if y {
                it.p(t).ln()
            } else {
                (1.0 - it.p(t)).ln()
            }
        })
        .sum()
}

#[test]
fn three_pl_map_and_ml_are_stationary_points() {
    let items = [
        ItemParams::new_3pl(1.2, -0.5, 0.2),
        ItemParams::new_3pl(1.8, 0.3, 0.15),
        ItemParams::new_3pl(0.9, 1.0, 0.25),
        ItemParams::new_3pl(1.5, -1.2, 0.1),
    ];
    let ys = [true, false, true, true];
    let h = 1e-4;

    let ml = score_pattern(&items, &ys, &config(ScoreMethod::Ml))
        .unwrap()
        .unwrap();
    // central difference of ln L: O(h²) ≈ 1e-8 error, so 1e-6 is a meaningful zero.
    let d = (loglik(&items, &ys, ml.theta + h) - loglik(&items, &ys, ml.theta - h)) / (2.0 * h);
    assert!(d.abs() < 1e-6, "ML gradient {d} at {}", ml.theta);
    // and it is the global maximum on a fine grid over the bounds
    let best = (0..=12000)
        .map(|k| -6.0 + k as f64 * 1e-3)
        .fold(f64::NEG_INFINITY, |m, t| m.max(loglik(&items, &ys, t)));
    assert!(loglik(&items, &ys, ml.theta) >= best - 1e-12);
    assert_abs_diff_eq!(
        ml.se,
        1.0 / test_information(&items, ml.theta).sqrt(),
        epsilon = 1e-12
    );

    let map = score_pattern(&items, &ys, &config(ScoreMethod::Map))
        .unwrap()
        .unwrap();
    let lp = |t: f64| loglik(&items, &ys, t) - 0.5 * t * t;
    let d = (lp(map.theta + h) - lp(map.theta - h)) / (2.0 * h);
    assert!(d.abs() < 1e-6, "MAP gradient {d} at {}", map.theta);
    // SE from the observed information: −(second difference), error O(h²) ~ 1e-8 relative.
    let d2 = (lp(map.theta + h) - 2.0 * lp(map.theta) + lp(map.theta - h)) / (h * h);
    assert_abs_diff_eq!(map.se, 1.0 / (-d2).sqrt(), epsilon = 1e-5);
}

#[test]
fn excluded_items_are_ignored() {
    let items = [
        ItemParams::new(1.0, -0.5),
        ItemParams::new(1.5, 0.2),
        ItemParams::new(0.7, 1.0),
    ];
    // student 0 answered all three; student 1 only the excluded item; student 2 nothing
    let m = ResponseMatrix::from_triplets(
        3,
        3,
        &[(0, 0, true), (0, 1, false), (0, 2, true), (1, 1, true)],
    )
    .unwrap();
    let slots = [Some(items[0]), None, Some(items[2])];
    for method in [ScoreMethod::Eap, ScoreMethod::Map, ScoreMethod::Ml] {
        let cfg = config(method);
        let got = score_students(&m, &slots, &cfg).unwrap();
        assert_eq!(got.len(), 3);
        let want = score_pattern(&[items[0], items[2]], &[true, true], &cfg).unwrap();
        assert_eq!(got[0], want, "{method}");
        assert_eq!(got[0].unwrap().n_responses, 2);
        assert_eq!(got[1], None, "{method}: only an excluded item");
        assert_eq!(got[2], None, "{method}: no responses");
        // the excluded item's response would have changed the estimate
        let with_all = score_students(&m, &items.map(Some), &cfg).unwrap();
        assert_ne!(with_all[0].unwrap().theta, got[0].unwrap().theta);
    }
}

/// `score_students` tabulates each item's log-likelihood over the nodes once when items
/// are answered by many students; the scores are bit-for-bit those of scoring each
/// pattern on its own (3PL items, one excluded item, a sparse design).
#[test]
fn tabulated_eap_matches_per_pattern_eap() {
    let bank = models::sim::responses::sparse_bank(400, 30, 12, true, 31);
    let mut slots: Vec<Option<ItemParams>> = bank.items.iter().copied().map(Some).collect();
    slots[7] = None;
    let cfg = ScoringConfig::default();
    let all = score_students(&bank.responses, &slots, &cfg).unwrap();
    for (s, got) in all.iter().enumerate() {
        let (its, ys) = bank.responses.row(s);
        let (items, outcomes): (Vec<ItemParams>, Vec<bool>) = its
            .iter()
            .zip(ys)
            .filter_map(|(&i, &y)| slots[i as usize].map(|p| (p, y)))
            .unzip();
        assert_eq!(*got, eap_score(&items, &outcomes, &cfg), "student {s}");
    }
}

#[test]
fn score_students_rejects_invalid_input() {
    let m = ResponseMatrix::from_triplets(1, 2, &[(0, 0, true), (0, 1, false)]).unwrap();
    let good = [
        Some(ItemParams::new(1.0, 0.0)),
        Some(ItemParams::new(1.0, 0.5)),
    ];
    let cfg = ScoringConfig::default();
    assert!(score_students(&m, &good, &cfg).is_ok());
    // wrong number of item slots
    assert!(score_students(&m, &good[..1], &cfg).is_err());
    // invalid item parameters: a <= 0, non-finite b, c >= 1
    for bad in [
        ItemParams::new(0.0, 0.0),
        ItemParams::new(1.0, f64::NAN),
        ItemParams::new_3pl(1.0, 0.0, 1.0),
    ] {
        let items = [Some(ItemParams::new(1.0, 0.0)), Some(bad)];
        let err = score_students(&m, &items, &cfg).unwrap_err();
        assert!(err.to_string().contains("item 1"), "{err}");
    }
    // invalid configs
    for bad in [
        ScoringConfig {
            prior_sd: 0.0,
            ..ScoringConfig::default()
        },
        ScoringConfig {
            prior_mean: f64::NAN,
            ..ScoringConfig::default()
        },
        ScoringConfig {
            theta_bounds: (2.0, -2.0),
            ..ScoringConfig::default()
        },
    ] {
        assert!(score_students(&m, &good, &bad).is_err());
        assert!(score_pattern(&[ItemParams::new(1.0, 0.0)], &[true], &bad).is_err());
    }
    // inconsistent hand-built matrix: item index out of range
    let broken = ResponseMatrix {
        n_items: 2,
        row_ptr: vec![0, 1],
        items: vec![5],
        correct: vec![true],
    };
    assert!(score_students(&broken, &good, &cfg).is_err());
    // score_pattern: length mismatch
    assert!(score_pattern(&[ItemParams::new(1.0, 0.0)], &[true, false], &cfg).is_err());
}

#[test]
fn score_method_names() {
    for m in [ScoreMethod::Eap, ScoreMethod::Map, ScoreMethod::Ml] {
        assert_eq!(m.to_string().parse::<ScoreMethod>().unwrap(), m);
    }
    assert_eq!("EAP".parse::<ScoreMethod>().unwrap(), ScoreMethod::Eap);
    assert_eq!(ScoreMethod::Ml.to_string(), "ml");
    assert!("wle".parse::<ScoreMethod>().is_err());
}

#[test]
fn information_closed_forms() {
    // 2PL: maximum a²/4 at θ = b
    let it = ItemParams::new(1.7, 0.4);
    assert_abs_diff_eq!(item_information(&it, 0.4), 1.7 * 1.7 / 4.0, epsilon = 1e-15);
    assert!(item_information(&it, 0.3) < item_information(&it, 0.4));
    assert!(item_information(&it, 0.5) < item_information(&it, 0.4));
    // symmetric around b
    assert_abs_diff_eq!(
        item_information(&it, 0.4 - 1.1),
        item_information(&it, 0.4 + 1.1),
        epsilon = 1e-15
    );

    // 3PL by hand (Python): a = 1.5, b = 0.5, c = 0.2, θ = 1: σ = 0.679178699175393,
    // P = 0.7433429593403145, I = a²(Q/P)σ² = 0.35835591877047546.
    let it3 = ItemParams::new_3pl(1.5, 0.5, 0.2);
    assert_abs_diff_eq!(
        item_information(&it3, 1.0),
        0.358_355_918_770_475_46,
        epsilon = 1e-14
    );
    // 3PL maximum at θ = b + ln((1 + √(1 + 8c))/2)/a (Birnbaum) = 0.6780945939828084
    let tmax = 0.678_094_593_982_808_4;
    assert!(item_information(&it3, tmax) > item_information(&it3, tmax - 1e-3));
    assert!(item_information(&it3, tmax) > item_information(&it3, tmax + 1e-3));
    // guessing lowers information: 3PL < 2PL with the same a, b
    assert!(item_information(&it3, 1.0) < item_information(&ItemParams::new(1.5, 0.5), 1.0));

    // far tails: finite and ~0, never NaN
    for t in [-1e3, 1e3] {
        let i = item_information(&it, t);
        assert!(i.is_finite() && (0.0..1e-100).contains(&i), "{t}: {i}");
        let i3 = item_information(&it3, t);
        assert!(i3.is_finite() && (0.0..1e-100).contains(&i3), "{t}: {i3}");
    }

    // test information = sum of item information
    let items = [it, it3, ItemParams::new(0.6, -1.0)];
    for t in [-2.0, 0.0, 0.7, 3.0] {
        let sum: f64 = items.iter().map(|i| item_information(i, t)).sum();
        assert_abs_diff_eq!(test_information(&items, t), sum, epsilon = 1e-15);
    }
    assert_eq!(test_information(&[], 0.0), 0.0);
}
