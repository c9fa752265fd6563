//! The calibrate stage on small demo lakes, and `irtlake irt fit|score` on files.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use calibrate::{CalibrateInput, run};
use chrono::NaiveDate;

use crate::support::{temp_lake, write_file};

/// A fresh copy of the small demo platform (3,000 students, 80 questions, 28 days, seed
/// 7, `anchors` anchors), not calibrated: `lake/` and `truth/` in the returned folder.
async fn platform_3000(anchors: u32) -> (tempfile::TempDir, lake::Lake) {
    crate::support::calibrated_demo_lake([3000, 80, 28, anchors], &["--seed", "7"], None).await
}

fn truth_items(truth: &std::path::Path) -> HashMap<String, (f64, f64, f64)> {
    let mut r = csv::Reader::from_path(truth.join("items.csv")).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].to_string(),
                (
                    rec[4].parse().unwrap(),
                    rec[5].parse().unwrap(),
                    rec[6].parse().unwrap(),
                ),
            )
        })
        .collect()
}

const RUN_DATE: &str = "2026-02-01"; // day 27 of a demo starting 2026-01-05

fn input(bank: &str) -> CalibrateInput {
    let mut i = CalibrateInput::new(RUN_DATE.parse::<NaiveDate>().unwrap());
    i.bank = Some(bank.parse().unwrap());
    i
}

#[tokio::test]
async fn calibrates_links_to_the_anchor_scale_and_recovers_truth() {
    let (dir, lake) = platform_3000(16).await;
    let truth = dir.path().join("truth");
    let out = run(&lake, &input("all")).await.unwrap();
    assert_eq!(out.status, "calibrated");
    assert_eq!(out.linking.method, "stocking-lord", "{out:?}");
    assert!(out.linking.n_anchors_used >= 5, "{out:?}");
    assert!(out.converged, "{out:?}");
    assert_eq!(out.n_items + out.n_items_excluded, 80);

    // one fit_meta row with the constants; item_params and abilities for (run_date, all)
    let b = lake
        .sql(
            "SELECT linking_method, linking_a, linking_b, n_anchors_used, model_spec FROM fit_meta",
        )
        .await
        .unwrap();
    assert_eq!(b[0].num_rows(), 1);
    assert_eq!(b[0].column(0).as_string::<i32>().value(0), "stocking-lord");
    let spec: serde_json::Value =
        serde_json::from_str(b[0].column(4).as_string::<i32>().value(0)).unwrap();
    assert_eq!(spec["model"], "2pl");
    let b = lake
        .sql("SELECT item_id, a, b FROM item_params WHERE run_date = '2026-02-01' AND bank = 'all' AND excluded_reason IS NULL")
        .await
        .unwrap();
    let truth = truth_items(&truth);
    let (mut se_b, mut n) = (0.0, 0.0);
    for batch in &b {
        let ids = batch.column(0).as_string::<i32>();
        let bs = batch.column(2).as_primitive::<Float64Type>();
        for r in 0..batch.num_rows() {
            let (_, tb, tc) = truth[ids.value(r)];
            if tc == 0.0 {
                // 2PL items: the linked difficulty is on the true scale
                se_b += (bs.value(r) - tb).powi(2);
                n += 1.0;
            }
        }
    }
    let rmse_b = (se_b / n).sqrt();
    // ~700 first responses per item over 28 days: SE(b) ≈ 0.1; linking error adds a little.
    assert!(rmse_b < 0.2, "RMSE(b) on the anchor scale = {rmse_b}");
    let b = lake
        .sql("SELECT count(*), avg(theta) FROM abilities")
        .await
        .unwrap();
    assert_eq!(
        b[0].column(0).as_primitive::<Int64Type>().value(0) as usize,
        out.n_students
    );

    // a re-run replaces, never duplicates
    let before: Vec<_> = lake
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    run(&lake, &input("all")).await.unwrap();
    let after: Vec<_> = lake
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(before, after);

    // a subject bank, another linking method
    let mut i = input("subject:subj-1");
    i.link = Some("mean-sigma".into());
    let out = run(&lake, &i).await.unwrap();
    assert_eq!(out.bank, "subject:subj-1");
    assert_eq!(out.linking.method, "mean-sigma");
    let b = lake
        .sql("SELECT count(*) FROM item_params WHERE bank = 'subject:subj-1'")
        .await
        .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 20);
    let b = lake.sql("SELECT count(*) FROM fit_meta").await.unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 2);
}

#[tokio::test]
async fn empty_window_no_anchors_and_bad_input() {
    let (_dir, lake) = platform_3000(0).await;
    let before = lake.list("").await.unwrap();
    // a window before the data: success, nothing written
    let mut i = CalibrateInput::new("2025-06-01".parse().unwrap());
    i.lookback_days = Some(30);
    let out = run(&lake, &i).await.unwrap();
    assert_eq!(out.status, "no_observations");
    assert!(out.message.contains("nothing written"), "{}", out.message);
    assert_eq!(lake.list("").await.unwrap(), before);
    // explicit linking without anchors: refused, nothing written
    let mut i = input("all");
    i.link = Some("fixed".into());
    let err = run(&lake, &i).await.unwrap_err();
    assert!(err.to_string().contains("anchors"), "{err}");
    assert_eq!(err.error_name(), "Fatal.Model");
    assert_eq!(lake.list("").await.unwrap(), before);
    // bad values name the field
    for (field, json) in [
        ("model", r#"{"run_date":"2026-02-01","model":"4pl"}"#),
        ("bank", r#"{"run_date":"2026-02-01","bank":"school:x"}"#),
        ("link", r#"{"run_date":"2026-02-01","link":"magic"}"#),
        (
            "lookback_days",
            r#"{"run_date":"2026-02-01","lookback_days":0}"#,
        ),
        (
            "prior_c",
            r#"{"run_date":"2026-02-01","prior_c":"beta:0,1"}"#,
        ),
        ("tol", r#"{"run_date":"2026-02-01","tol":-1}"#),
    ] {
        let msg = match serde_json::from_str::<CalibrateInput>(json) {
            Err(e) => e.to_string(),
            Ok(i) => run(&lake, &i).await.unwrap_err().to_string(),
        };
        assert!(msg.contains(field), "{field}: {msg}");
    }
    assert!(
        serde_json::from_str::<CalibrateInput>(r#"{"run_date":"2026-02-01","colour":1}"#).is_err()
    );
    assert_eq!(lake.list("").await.unwrap(), before);
    // no anchors: calibrates unlinked and says so
    let out = run(&lake, &input("all")).await.unwrap();
    assert_eq!(out.linking.method, "none");
    assert!(out.message.contains("unlinked"), "{}", out.message);
    let b = lake
        .sql("SELECT linking_method, linking_a FROM fit_meta")
        .await
        .unwrap();
    assert_eq!(b[0].column(0).as_string::<i32>().value(0), "none");
    assert!(b[0].column(1).is_null(0));
}

fn irtlake(args: &[&str]) -> (bool, String, String) {
    crate::support::irtlake_cmd(args)
}

/// `irt fit` on LSAT7 (the published pattern table, so it runs on every clone): the
/// log-likelihood printed by mirt's documentation, and, where the reference folder is
/// present, the item parameters of R mirt 1.41.10.
#[test]
fn irt_fit_and_score_on_lsat7() {
    let dir = tempfile::tempdir().unwrap();
    let responses = dir.path().join("lsat7_long.csv");
    let mut csv_text = String::from("student_id,question_id,correct\n");
    for (s, pattern) in crate::lsat7_data::lsat7_student_patterns()
        .iter()
        .enumerate()
    {
        for (i, y) in pattern.iter().enumerate() {
            csv_text.push_str(&format!("{},Item.{},{y}\n", s + 1, i + 1));
        }
    }
    std::fs::write(&responses, csv_text).unwrap();
    let out = dir.path().join("fit");
    let (ok, stdout, err) = irtlake(&[
        "irt",
        "fit",
        "--responses",
        responses.to_str().unwrap(),
        "--model",
        "2pl",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let fit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fit.json")).unwrap()).unwrap();
    assert!(stdout.contains("\"loglik\""));
    // the phases in the order they ran, summing to elapsed_ms (phases are written to
    // 0.1 ms, elapsed_ms to 1 ms: 1 ms of rounding)
    let text = std::fs::read_to_string(out.join("fit.json")).unwrap();
    let phases = &text[text.find("\"phases_ms\"").unwrap()..];
    let at = |k: &str| {
        phases
            .find(&format!("\"{k}\""))
            .unwrap_or_else(|| panic!("{k} in {phases}"))
    };
    let order = [
        "read", "prepare", "fit", "se", "link", "scoring", "item_fit", "write",
    ]
    .map(at);
    assert!(order.is_sorted(), "phases out of order: {phases}");
    let sum: f64 = fit["phases_ms"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    let elapsed = fit["elapsed_ms"].as_f64().unwrap();
    assert!(
        (sum - elapsed).abs() <= 1.0,
        "phases {sum} ms, elapsed {elapsed} ms"
    );
    assert_eq!(fit["n_students"], 1000);
    assert_eq!(fit["linking"]["method"], "none");
    // mirt's documentation prints "Log-likelihood = -2658.805" for this fit
    let loglik = fit["loglik"].as_f64().unwrap();
    assert!((loglik + 2658.805).abs() < 0.01, "loglik {loglik}");
    // item fit in items.csv: S-X² as mirt's tests/testthat/test-01-mirtOne.R asserts it
    // (tolerance 0.0005 + max(0.01, 0.001·value)), df 2, and infit/outfit present
    let mut items = csv::Reader::from_path(out.join("items.csv")).unwrap();
    let h = items.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let mirt_s_x2 = [4.749440, 14.451071, 1.270381, 5.237400, 0.941125];
    for (r, want) in items.records().zip(mirt_s_x2) {
        let r = r.unwrap();
        let s_x2: f64 = r[col("s_x2")].parse().unwrap();
        assert!(
            (s_x2 - want).abs() <= 0.0005 + (0.001 * want).max(0.01),
            "{r:?}"
        );
        assert_eq!(&r[col("df_s_x2")], "2");
        for c in ["p_s_x2", "infit", "outfit", "z_infit", "z_outfit"] {
            let v: f64 = r[col(c)].parse().unwrap();
            assert!(v.is_finite(), "{c} in {r:?}");
        }
    }
    if let Some(refdir) = crate::reference::reference_dir("lsat7") {
        let mut mirt = csv::Reader::from_path(refdir.join("mirt_2pl_items.csv")).unwrap();
        let headers = mirt.headers().unwrap().clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("{name} in {headers:?}"))
        };
        let (ci, ca, cb) = (col("item_id"), col("a"), col("b"));
        let expected: HashMap<String, (f64, f64)> = mirt
            .records()
            .map(|r| {
                let r = r.unwrap();
                (
                    r[ci].to_string(),
                    (r[ca].parse().unwrap(), r[cb].parse().unwrap()),
                )
            })
            .collect();
        assert_mirt_items(&out.join("items.csv"), &expected);
    }
    // scoring with the fitted items reproduces the fit's own EAP scores
    let scores = dir.path().join("scores.csv");
    let (ok, _, err) = irtlake(&[
        "irt",
        "score",
        "--items",
        out.join("items.csv").to_str().unwrap(),
        "--responses",
        responses.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let read = |p: &std::path::Path| -> Vec<(String, f64, f64)> {
        csv::Reader::from_path(p)
            .unwrap()
            .records()
            .map(|r| {
                let r = r.unwrap();
                (
                    r[0].to_string(),
                    r[1].parse().unwrap(),
                    r[2].parse().unwrap(),
                )
            })
            .collect()
    };
    let (rescored, fitted) = (read(&scores), read(&out.join("scores.csv")));
    assert_eq!(rescored.len(), 1000);
    for (x, y) in rescored.iter().zip(&fitted) {
        // items.csv carries 6 decimals, so θ agrees to about 1e-6
        assert!(
            x.0 == y.0 && (x.1 - y.1).abs() < 1e-4 && (x.2 - y.2).abs() < 1e-4,
            "{x:?} vs {y:?}"
        );
    }
}

/// Every item of `irt fit`'s items.csv within 0.01 of mirt's a and b (the tolerance of
/// the reference README for an independent implementation).
fn assert_mirt_items(items_csv: &std::path::Path, expected: &HashMap<String, (f64, f64)>) {
    let mut ours = csv::Reader::from_path(items_csv).unwrap();
    let mut n = 0;
    for r in ours.records() {
        let r = r.unwrap();
        let (a, b) = expected[&r[0]];
        let (oa, ob): (f64, f64) = (r[1].parse().unwrap(), r[2].parse().unwrap());
        // tolerance from shared/reference/README.md: a, b within 0.01 of mirt
        assert!(
            (oa - a).abs() < 0.01 && (ob - b).abs() < 0.01,
            "{}: ({oa}, {ob}) vs mirt ({a}, {b})",
            &r[0]
        );
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn irt_fit_bad_input_names_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let resp = write_file(
        dir.path(),
        "r.csv",
        "student_id,question_id,correct\ns1,q1,1\ns1,q2,2\n",
    );
    let (ok, _, err) = irtlake(&[
        "irt",
        "fit",
        "--responses",
        resp.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("r.csv") && err.contains("row 2") && err.contains("'correct'"),
        "{err}"
    );
    let resp = write_file(
        dir.path(),
        "r2.csv",
        "student,question_id,correct\ns1,q1,1\n",
    );
    let (ok, _, err) = irtlake(&[
        "irt",
        "fit",
        "--responses",
        resp.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("student_id"), "{err}");
    let good = write_file(
        dir.path(),
        "g.csv",
        "student_id,question_id,correct\ns1,q1,1\ns2,q1,0\n",
    );
    for (name, text, needle) in [
        ("a0.csv", "item_id,a,b,c\nq1,0,0.5,0\n", "a > 0"),
        ("c1.csv", "item_id,a,b,c\nq1,1,0.5,1.2\n", "0 <= c < 1"),
        ("nan.csv", "item_id,a,b,c\nq1,x,0.5,0\n", "'a'"),
    ] {
        let anchors = write_file(dir.path(), name, text);
        let (ok, _, err) = irtlake(&[
            "irt",
            "fit",
            "--responses",
            good.to_str().unwrap(),
            "--anchors",
            anchors.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        assert!(
            !ok && err.contains(name) && err.contains(needle),
            "{name}: {err}"
        );
    }
}

/// `student_id -> theta` of `abilities` for bank `all`.
async fn thetas(lake: &lake::Lake) -> HashMap<String, f64> {
    crate::support::values(
        lake,
        "SELECT student_id, theta FROM abilities WHERE bank = 'all'",
    )
    .await
}

/// Issue 11: `max_obs` bounds the fit sample — a seeded random sample of students with
/// all their first attempts — while every student of the window gets a θ, and the
/// linking constants and θ agree with the uncapped fit's.
#[tokio::test]
async fn a_capped_fit_samples_students_and_still_scores_everyone() {
    let (dir, lake) = temp_lake();
    let truth = dir.path().join("truth");
    crate::support::demo_platform(&lake, &truth, [4000, 60, 28, 16], &["--seed", "11"]);
    let first_attempts = crate::support::count(
        &lake,
        "SELECT count(*) FROM (SELECT DISTINCT student_id, question_id FROM attempts)",
    )
    .await;
    let students =
        crate::support::count(&lake, "SELECT count(DISTINCT student_id) FROM attempts").await;
    let questions =
        crate::support::count(&lake, "SELECT count(DISTINCT question_id) FROM attempts").await;

    // Uncapped: every student is in the fit.
    let mut i = input("all");
    i.max_obs = Some(50_000_000); // the largest allowed
    let full = run(&lake, &i).await.unwrap();
    assert_eq!(full.sample, "student_bucket<4096/4096 seed=0", "{full:?}");
    assert_eq!(full.n_responses as i64, first_attempts);
    let full_theta = thetas(&lake).await;
    assert_eq!(full_theta.len() as i64, students);

    // Capped at a quarter of the first attempts.
    let max_obs = (first_attempts / 4) as usize;
    let mut i = input("all");
    i.max_obs = Some(max_obs);
    let capped = run(&lake, &i).await.unwrap();
    eprintln!("uncapped {full:?}\ncapped {capped:?}");
    assert!(capped.n_responses <= max_obs, "{capped:?}");
    // The sample grows bucket by bucket up to the cap on attempts (≥ first attempts):
    // it holds a good part of a quarter of the students, not a sliver.
    assert!(
        capped.n_students > students as usize / 6 && capped.n_students < students as usize / 3,
        "{capped:?}"
    );
    let k: usize = capped
        .sample
        .strip_prefix("student_bucket<")
        .and_then(|r| r.strip_suffix("/4096 seed=0"))
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("sample rule {}", capped.sample));
    assert!(k > 0 && k < 4096);

    // Every student of the window has a θ, in the sample or not.
    let capped_theta = thetas(&lake).await;
    assert_eq!(capped_theta.len() as i64, students);
    assert_eq!(capped.n_students_scored as i64, students);
    let b = lake
        .sql(
            "SELECT n_students_fit, n_students_scored, n_responses_fit, n_responses_scored, sample \
             FROM fit_meta WHERE bank = 'all'",
        )
        .await
        .unwrap();
    let int = |c: usize| b[0].column(c).as_primitive::<Int64Type>().value(0);
    assert_eq!(int(0) as usize, capped.n_students);
    assert_eq!(int(1), students);
    assert_eq!(int(2) as usize, capped.n_responses);
    // Every first attempt at an estimated item entered some student's θ.
    assert_eq!(int(3) as usize, capped.n_responses_scored);
    assert_eq!(
        crate::support::count(&lake, "SELECT sum(n_responses) FROM abilities").await,
        int(3)
    );
    assert_eq!(b[0].column(4).as_string::<i32>().value(0), capped.sample);
    // Every question of the window is in item_params, estimated or excluded with a reason.
    assert_eq!(
        crate::support::count(&lake, "SELECT count(*) FROM item_params").await,
        questions
    );
    assert_eq!(
        crate::support::count(
            &lake,
            "SELECT count(*) FROM item_params WHERE a IS NULL AND excluded_reason IS NULL"
        )
        .await,
        0
    );

    // Linking constants within 0.1 of the uncapped fit: the capped sample is ~1,000 of
    // the 4,000 students, so its latent mean differs from the whole cohort's by about
    // SD·sqrt(1/1000 − 1/4000) ≈ 0.03 (SD ≈ 1), and anchors estimated on ~1/4 of the
    // responses add linking error of the same order; 0.1 is about three such SDs. The
    // recency sample this replaces moved B by 0.2 and A by 0.25 at 100k students.
    assert!(
        (capped.linking.a - full.linking.a).abs() < 0.1
            && (capped.linking.b - full.linking.b).abs() < 0.1,
        "A, B capped ({}, {}) vs uncapped ({}, {})",
        capped.linking.a,
        capped.linking.b,
        full.linking.a,
        full.linking.b
    );

    // θ recovers the truth (θ at the end of the window) about as well as uncapped.
    let mut truth_theta = HashMap::new();
    let mut r = csv::Reader::from_path(truth.join("students.csv")).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        truth_theta.insert(rec[0].to_string(), rec[4].parse::<f64>().unwrap());
    }
    let corr = |est: &HashMap<String, f64>| {
        let (x, y): (Vec<f64>, Vec<f64>) = est
            .iter()
            .map(|(s, t)| (*t, truth_theta[s.as_str()]))
            .unzip();
        crate::support::pearson(&x, &y)
    };
    let (c_full, c_capped) = (corr(&full_theta), corr(&capped_theta));
    eprintln!("corr(θ, true θ): uncapped {c_full:.4}, capped {c_capped:.4}");
    // Item parameters from a quarter of the data add little to a θ that rests on ~20
    // responses (its SE ≈ 0.45 dominates): the correlation may drop by at most 0.02.
    assert!(
        c_capped > c_full - 0.02,
        "capped {c_capped} vs uncapped {c_full}"
    );
    assert!(c_full > 0.8, "uncapped {c_full}");
}

/// `abilities` of `run_date`/`all`: student → (θ, SE, responses, run id).
async fn abilities(lake: &lake::Lake) -> HashMap<String, (f64, f64, i64, String)> {
    let mut m = HashMap::new();
    for b in lake
        .sql("SELECT student_id, theta, se, n_responses, run_id FROM abilities WHERE run_date = '2026-02-01' AND bank = 'all'")
        .await
        .unwrap()
    {
        let ids = b.column(0).as_string::<i32>();
        let th = b.column(1).as_primitive::<Float64Type>();
        let se = b.column(2).as_primitive::<Float64Type>();
        let n = b.column(3).as_primitive::<Int64Type>();
        let run = b.column(4).as_string::<i32>();
        for r in 0..b.num_rows() {
            let row = (th.value(r), se.value(r), n.value(r), run.value(r).to_string());
            assert!(m.insert(ids.value(r).to_string(), row).is_none(), "one row per student");
        }
    }
    m
}

/// Scoring by shard (calibrate with `scoring = shards`, then `score_abilities` in three
/// shards) gives every student the θ, SE and response count that calibrate's inline
/// scoring gives, for a calibration linked after the fit (Stocking–Lord: θ* = Aθ + B on
/// the final scale's nodes and prior), one held on fixed anchors, and an unlinked one.
/// The fit sample (`max_obs` 20,000) is a fraction of the window, so students outside it
/// are compared too. Tolerance 1e-9: the two compute the same posterior, one on the fit
/// scale then mapped, one on the mapped nodes (rounding, ~1e-14, is all that differs).
#[tokio::test]
async fn abilities_scored_by_shard_equal_the_inline_scores() {
    let (_dir, lake) = platform_3000(16).await;
    for link in [None, Some("fixed"), Some("none")] {
        let mut i = input("all");
        i.max_obs = Some(20_000);
        i.link = link.map(str::to_string);
        let inline_out = run(&lake, &i).await.unwrap();
        let inline = abilities(&lake).await;
        assert_eq!(inline.len(), inline_out.n_students_scored, "{link:?}");
        assert!(
            inline_out.n_students < inline_out.n_students_scored,
            "the sample is a part of the window: {inline_out:?}"
        );

        i.scoring = Some(calibrate::Scoring::Shards);
        let fit_out = run(&lake, &i).await.unwrap();
        assert_eq!(fit_out.n_students_scored, 0, "{fit_out:?}");
        let scored = crate::support::count(
            &lake,
            "SELECT count(n_students_scored) FROM fit_meta WHERE run_date = '2026-02-01'",
        )
        .await;
        assert_eq!(scored, 0, "fit_meta leaves the scored count to the shards");
        let mut rows = 0;
        for k in 0..3 {
            let stage = lake::runs::StageInput {
                run_date: Some(crate::support::day("2026-02-01")),
                shard: Some(k),
                shards: Some(3),
                ..Default::default()
            };
            let out = calibrate::score_abilities::run(&lake, &stage)
                .await
                .unwrap();
            assert_eq!(out.status, "scored");
            assert_eq!(out.banks, vec!["all".to_string()]);
            rows += out.rows;
        }
        let sharded = abilities(&lake).await;
        assert_eq!(rows, inline.len(), "{link:?}");
        assert_eq!(sharded.len(), inline.len(), "{link:?}");
        let mut worst = 0.0f64;
        for (id, (th, se, n, run_id)) in &inline {
            let (th2, se2, n2, run_id2) = &sharded[id];
            assert_eq!((n, run_id), (n2, run_id2), "{link:?} {id}");
            worst = worst.max((th - th2).abs()).max((se - se2).abs());
        }
        assert!(worst <= 1e-9, "{link:?}: largest θ/SE difference {worst:e}");
        assert_eq!(fit_out.linking.method, inline_out.linking.method);
    }
}

/// The time-split drift test in the stage: on a demo whose drifted anchors got 1.5
/// easier a week before the run date, the recent week's answers flag exactly them
/// (`flagged_recent`, and left out of the link), with their shift and standard error
/// on the anchor scale in `anchor_drift`; with `drift_recent_days = 0` the test is off
/// and its columns are null.
#[tokio::test]
async fn recent_drift_is_flagged_from_the_last_week_of_answers() {
    let (dir, lake) = temp_lake();
    let truth = dir.path().join("truth");
    crate::support::demo_platform(
        &lake,
        &truth,
        [3000, 80, 21, 20],
        &[
            "--seed",
            "7",
            "--drift-from-day",
            "14",
            "--drift-b-shift",
            "-1.5",
        ],
    );
    let mut r = csv::Reader::from_path(truth.join("items.csv")).unwrap();
    let planted: Vec<String> = r
        .records()
        .map(|rec| rec.unwrap())
        .filter(|rec| !rec[9].is_empty())
        .map(|rec| rec[0].to_string())
        .collect();
    assert_eq!(planted.len(), 2, "a tenth of 20 anchors drift");

    let run_date = "2026-01-25".parse::<NaiveDate>().unwrap(); // day 20: days 14..20 shifted
    let out = run(&lake, &CalibrateInput::new(run_date)).await.unwrap();
    assert_eq!(out.status, "calibrated", "{out:?}");
    let rows = lake
        .sql(
            "SELECT item_id, flagged, flagged_recent, n_earlier, n_recent, recent_shift_b, \
             recent_se_b FROM anchor_drift ORDER BY item_id",
        )
        .await
        .unwrap();
    let mut n = 0;
    for b in &rows {
        let ids = b.column(0).as_string::<i32>();
        let (flagged, recent) = (b.column(1).as_boolean(), b.column(2).as_boolean());
        let (n_recent, shift, se) = (
            b.column(4).as_primitive::<Int64Type>(),
            b.column(5).as_primitive::<Float64Type>(),
            b.column(6).as_primitive::<Float64Type>(),
        );
        for i in 0..b.num_rows() {
            n += 1;
            let id = ids.value(i);
            let is_planted = planted.iter().any(|p| p == id);
            assert!(
                !recent.is_null(i) && n_recent.value(i) >= 30,
                "{id}: tested"
            );
            assert_eq!(recent.value(i), is_planted, "{id}: flagged_recent");
            assert_eq!(flagged.value(i), is_planted, "{id}: flagged");
            if is_planted {
                // −1.5 in truth, less the anchors' common recent shift; SE ≈ 0.1–0.2
                assert!(shift.value(i) < -1.0, "{id}: shift {}", shift.value(i));
                assert!(
                    se.value(i) > 0.0 && se.value(i) < 0.25,
                    "{id}: se {}",
                    se.value(i)
                );
            }
        }
    }
    assert_eq!(n, 20);
    assert_eq!(out.linking.n_anchors_used, 18, "{out:?}");

    let mut off = CalibrateInput::new(run_date);
    off.drift_recent_days = Some(0);
    run(&lake, &off).await.unwrap();
    let nulls = lake
        .sql("SELECT count(*) FROM anchor_drift WHERE flagged_recent IS NULL AND recent_z IS NULL")
        .await
        .unwrap();
    assert_eq!(nulls[0].column(0).as_primitive::<Int64Type>().value(0), 20);
}
