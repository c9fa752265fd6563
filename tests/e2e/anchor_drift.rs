//! The anchor drift screen through `irtlake irt fit --anchors … --link stocking-lord`:
//! anchors whose reference difficulty is off by 1.0 are flagged (exactly those), left out
//! of the link, and the constants stay those of the fit with correct references.

use std::collections::HashMap;
use std::path::Path;

use models::irt::ItemParams;
use models::sim::{draw_items, draw_thetas, simulate_complete};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::support::{irtlake_cmd, write_file};

/// True scale of the simulated students: θ* ~ N(0.4, 1.25²), so A = 1.25, B = 0.4.
const TRUE_A: f64 = 1.25;
const TRUE_B: f64 = 0.4;

/// Writes a complete 2PL bank (4000 students × 40 items, long CSV) whose θ are on the
/// anchor scale, and returns the items' true parameters on that scale.
fn bank(dir: &Path) -> (std::path::PathBuf, Vec<ItemParams>) {
    let mut rng = StdRng::seed_from_u64(11);
    let items = draw_items(40, false, &mut rng);
    let thetas = draw_thetas(4000, TRUE_B, TRUE_A, &mut rng);
    let m = simulate_complete(&items, &thetas, 12);
    let mut text = String::from("student_id,question_id,correct\n");
    for s in 0..m.n_students() {
        let (cols, ys) = m.row(s);
        for (&c, &y) in cols.iter().zip(ys) {
            text.push_str(&format!("s{s},q{c},{}\n", u8::from(y)));
        }
    }
    (write_file(dir, "responses.csv", &text), items)
}

/// Runs `irt fit` with anchors q0..q19 at their true parameters, `b` shifted by +1.0 for
/// the anchors in `shifted`; returns fit.json's linking object and anchors.csv's rows.
fn fit_with(
    dir: &Path,
    responses: &Path,
    items: &[ItemParams],
    shifted: &[usize],
    name: &str,
) -> (serde_json::Value, Vec<HashMap<String, String>>) {
    let mut anchors = String::from("item_id,a,b,c\n");
    for (j, it) in items.iter().enumerate().take(20) {
        let b = if shifted.contains(&j) {
            it.b + 1.0
        } else {
            it.b
        };
        anchors.push_str(&format!("q{j},{},{b},0\n", it.a));
    }
    let anchors = write_file(dir, &format!("{name}-anchors.csv"), &anchors);
    let out = dir.join(name);
    let linking = irt_fit(responses, &anchors, &out, &[]);
    let mut r = csv::Reader::from_path(out.join("anchors.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            h.iter()
                .zip(rec.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    (linking, rows)
}

/// Runs `irtlake irt fit --link stocking-lord` with `anchors` and `extra` options, which
/// must succeed; returns fit.json's linking object.
fn irt_fit(responses: &Path, anchors: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "irt",
        "fit",
        "--responses",
        responses.to_str().unwrap(),
        "--anchors",
        anchors.to_str().unwrap(),
        "--link",
        "stocking-lord",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, _, stderr) = irtlake_cmd(&args);
    assert!(
        ok,
        "irt fit {extra:?} into {} failed: {stderr}",
        out.display()
    );
    let fit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fit.json")).unwrap()).unwrap();
    fit["linking"].clone()
}

#[test]
fn shifted_reference_anchors_are_flagged_and_the_link_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (responses, items) = bank(dir.path());
    let (clean, clean_rows) = fit_with(dir.path(), &responses, &items, &[], "clean");
    let shifted = [3, 8, 15];
    let (drifted, rows) = fit_with(dir.path(), &responses, &items, &shifted, "drifted");

    // no false flags with correct references; exactly the shifted ones otherwise
    assert!(
        clean_rows.iter().all(|r| r["flagged"] == "false"),
        "clean references flagged: {clean_rows:?}"
    );
    assert_eq!(clean["n_anchors_used"], 20);
    let flagged: Vec<&str> = rows
        .iter()
        .filter(|r| r["flagged"] == "true")
        .map(|r| r["item_id"].as_str())
        .collect();
    assert_eq!(flagged, ["q3", "q8", "q15"], "{rows:?}");
    assert_eq!(drifted["n_anchors_used"], 17);
    assert_eq!(
        drifted["drift_screen"]["flagged"],
        serde_json::json!(["q3", "q8", "q15"])
    );
    for r in rows.iter().filter(|r| r["flagged"] == "true") {
        let d: f64 = r["diff_b"].parse().unwrap();
        assert!(
            (d + 1.0).abs() < 0.3,
            "a +1.0 shift of the reference shows as ≈ −1: {r:?}"
        );
    }

    // A, B within 0.02 of the fit with correct references (and near the truth)
    let k = |v: &serde_json::Value| (v["A"].as_f64().unwrap(), v["B"].as_f64().unwrap());
    let (ca, cb) = k(&clean);
    let (da, db) = k(&drifted);
    assert!(
        (ca - da).abs() < 0.02 && (cb - db).abs() < 0.02,
        "clean A, B = {ca}, {cb}; with 3 shifted references {da}, {db}"
    );
    assert!(
        (ca - TRUE_A).abs() < 0.08 && (cb - TRUE_B).abs() < 0.08,
        "{ca}, {cb}"
    );

    // without the screen the shifted references bend the link
    let unscreened = irt_fit(
        &responses,
        &dir.path().join("drifted-anchors.csv"),
        &dir.path().join("unscreened"),
        &["--no-drift-screen"],
    );
    let (ua, ub) = k(&unscreened);
    assert!(
        (ub - cb).abs() > 3.0 * (db - cb).abs() && (ub - cb).abs() > 0.05,
        "unscreened B {ub} should be bent away from {cb} (screened {db}); A {ua}"
    );
}
