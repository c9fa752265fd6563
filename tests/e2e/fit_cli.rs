//! `irtlake fit cox|km|lmm|growth|kmeans|forecast` on CSV files: published reference
//! fits (R survival's `ovarian`, lme4's `sleepstudy`), hand-computed Kaplan–Meier
//! values, simulated data with known structure, and the input validation messages.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::support::write_file;

/// Runs `irtlake fit ARGS`: (success, stdout, stderr).
fn fit(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["fit"];
    all.extend_from_slice(args);
    crate::support::irtlake_cmd(&all)
}

/// Runs `irtlake fit ARGS`, which must succeed; returns stdout.
fn fit_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = fit(args);
    assert!(ok, "irtlake fit {args:?} failed:\n{stderr}");
    stdout
}

/// Runs `irtlake fit ARGS`, which must fail; returns stderr.
fn fit_err(args: &[&str]) -> String {
    let (ok, stdout, stderr) = fit(args);
    assert!(!ok, "irtlake fit {args:?} should fail:\n{stdout}");
    stderr
}

/// A CSV output: header and records.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn read(path: &Path) -> Self {
        let mut r = csv::Reader::from_path(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let header = r
            .headers()
            .expect("header")
            .iter()
            .map(str::to_string)
            .collect();
        let rows = r
            .records()
            .map(|rec| rec.expect("record").iter().map(str::to_string).collect())
            .collect();
        Self { header, rows }
    }

    fn index(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    fn text(&self, name: &str) -> Vec<String> {
        let j = self.index(name);
        self.rows.iter().map(|r| r[j].clone()).collect()
    }

    fn num(&self, name: &str) -> Vec<f64> {
        self.text(name)
            .iter()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}: '{v}' is not a number"))
            })
            .collect()
    }

    /// The row whose first field is `key`, as column → number.
    fn row_by(&self, key: &str) -> HashMap<String, f64> {
        let r = self
            .rows
            .iter()
            .find(|r| r[0] == key)
            .unwrap_or_else(|| panic!("no row {key}"));
        self.header
            .iter()
            .zip(r)
            .skip(1)
            .map(|(h, v)| (h.clone(), v.parse().unwrap_or(f64::NAN)))
            .collect()
    }
}

fn json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (± {tol})"
    );
}

// ---------------------------------------------------------------- survival ----

#[test]
fn km_matches_hand_computed_greenwood() {
    let dir = tempfile::tempdir().unwrap();
    // Tie of an event and a censoring at 2 (the event comes first), a censoring at 4,
    // the last subject has the event (S = 0). Event spellings mixed on purpose.
    let data = write_file(
        dir.path(),
        "km.csv",
        "id,days,status\na,1,1\nb,2,1\nc,2,0\nd,3,true\ne,4,FALSE\nf,5,1\n",
    );
    let out = dir.path().join("out");
    let stdout = fit_ok(&[
        "km",
        "--data",
        data.to_str().unwrap(),
        "--time",
        "days",
        "--event",
        "status",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (summary["n"].as_u64(), summary["events"].as_u64()),
        (Some(6), Some(4))
    );

    let km = Csv::read(&out.join("km.csv"));
    assert_eq!(km.header, ["time", "n_risk", "events", "surv", "se"]);
    // S(t) = Π (1 − d/n); Greenwood SE = S · √Σ d/(n(n − d)).
    let g1: f64 = 1.0 / 30.0;
    let g2: f64 = g1 + 1.0 / 20.0;
    let g3: f64 = g2 + 1.0 / 6.0;
    let want = [
        (1.0, 6.0, 1.0, 5.0 / 6.0, 5.0 / 6.0 * g1.sqrt()),
        (2.0, 5.0, 1.0, 2.0 / 3.0, 2.0 / 3.0 * g2.sqrt()),
        (3.0, 3.0, 1.0, 4.0 / 9.0, 4.0 / 9.0 * g3.sqrt()),
        (5.0, 1.0, 1.0, 0.0, 0.0),
    ];
    assert_eq!(km.rows.len(), want.len());
    let cols: Vec<Vec<f64>> = ["time", "n_risk", "events", "surv", "se"]
        .iter()
        .map(|c| km.num(c))
        .collect();
    for (i, w) in want.iter().enumerate() {
        let w = [w.0, w.1, w.2, w.3, w.4];
        for (c, &v) in cols.iter().zip(&w) {
            close(c[i], v, 1e-12, &format!("km row {i}"));
        }
    }
}

/// R survival's `ovarian` (futime, fustat, age), as in models/tests/survival.rs.
const OVARIAN: [(f64, u8, f64); 26] = [
    (59.0, 1, 72.3315),
    (115.0, 1, 74.4932),
    (156.0, 1, 66.4658),
    (421.0, 0, 53.3644),
    (431.0, 1, 50.3397),
    (448.0, 0, 56.4301),
    (464.0, 1, 56.937),
    (475.0, 1, 59.8548),
    (477.0, 0, 64.1753),
    (563.0, 1, 55.1781),
    (638.0, 1, 56.7562),
    (744.0, 0, 50.1096),
    (769.0, 0, 59.6301),
    (770.0, 0, 57.0521),
    (803.0, 0, 39.2712),
    (855.0, 0, 43.1233),
    (1040.0, 0, 38.8932),
    (1106.0, 0, 44.6),
    (1129.0, 0, 53.9068),
    (1206.0, 0, 44.2055),
    (1227.0, 0, 59.589),
    (268.0, 1, 74.5041),
    (329.0, 1, 43.137),
    (353.0, 1, 63.2192),
    (365.0, 1, 64.4247),
    (377.0, 0, 58.3096),
];

fn ovarian_csv(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("futime,fustat,age\n");
    for (t, s, a) in OVARIAN {
        text.push_str(&format!("{t},{s},{a}\n"));
    }
    write_file(dir, "ovarian.csv", &text)
}

#[test]
fn cox_matches_coxph_on_ovarian() {
    let dir = tempfile::tempdir().unwrap();
    let data = ovarian_csv(dir.path());
    let run = |ties: &str| {
        let out = dir.path().join(ties);
        fit_ok(&[
            "cox",
            "--data",
            data.to_str().unwrap(),
            "--time",
            "futime",
            "--event",
            "fustat",
            "--covariates",
            "age",
            "--ties",
            ties,
            "--out",
            out.to_str().unwrap(),
        ]);
        out
    };
    let out = run("efron");
    // coxph(Surv(futime, fustat) ~ age, data = ovarian):
    //        coef exp(coef) se(coef)     z       p
    // age 0.16162   1.17541  0.04974 3.249 0.00116
    let coef = Csv::read(&out.join("coef.csv"));
    assert_eq!(coef.header, ["term", "coef", "se", "z", "p"]);
    assert_eq!(coef.text("term"), ["age"]);
    let age = coef.row_by("age");
    close(age["coef"], 0.1616, 5e-4, "coef");
    close(age["se"], 0.0497, 5e-4, "se");
    close(age["z"], 3.249, 5e-3, "z");
    close(age["p"], 0.00116, 5e-5, "p");

    let base = Csv::read(&out.join("baseline.csv"));
    let (times, cumhaz) = (base.num("time"), base.num("cumhaz"));
    assert_eq!(times.len(), 12, "one row per distinct event time");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(cumhaz.windows(2).all(|w| w[0] <= w[1]), "{cumhaz:?}");
    assert!(cumhaz[0] > 0.0);
    let centred = base.num("cumhaz_centered");
    assert!(centred.windows(2).all(|w| w[0] <= w[1]), "{centred:?}");

    let f = json(&out.join("fit.json"));
    for key in ["loglik", "concordance", "n", "events", "iterations"] {
        assert!(!f[key].is_null(), "fit.json lacks {key}: {f}");
    }
    assert_eq!(
        (f["n"].as_u64(), f["events"].as_u64()),
        (Some(26), Some(12))
    );
    assert!(f["loglik"].as_f64().unwrap() > f["loglik_null"].as_f64().unwrap());
    // R: Likelihood ratio test = 14.29 on 1 df
    close(f["lr_statistic"].as_f64().unwrap(), 14.29, 5e-3, "LR");
    let c = f["concordance"].as_f64().unwrap();
    assert!(c > 0.5 && c <= 1.0, "{c}");
    assert_eq!(f["ties"], "efron");

    // No tied event times in ovarian: Breslow gives the same fit.
    let out_b = run("breslow");
    assert_eq!(json(&out_b.join("fit.json"))["ties"], "breslow");
    close(
        Csv::read(&out_b.join("coef.csv")).row_by("age")["coef"],
        age["coef"],
        1e-8,
        "breslow coef",
    );
}

// ---------------------------------------------------------------- growth ----

/// lme4's `sleepstudy` (Reaction, Days, Subject): the fixture models/tests/growth.rs reads.
const SLEEPSTUDY_CSV: &str = include_str!("../../models/tests/data/sleepstudy.csv");

fn sleepstudy_csv(dir: &Path) -> std::path::PathBuf {
    write_file(dir, "sleepstudy.csv", SLEEPSTUDY_CSV)
}

#[test]
fn lmm_matches_lme4_on_sleepstudy() {
    let dir = tempfile::tempdir().unwrap();
    let data = sleepstudy_csv(dir.path());
    let run = |method: &str| {
        let out = dir.path().join(method);
        fit_ok(&[
            "lmm",
            "--data",
            data.to_str().unwrap(),
            "--y",
            "Reaction",
            "--time",
            "Days",
            "--group",
            "Subject",
            "--method",
            method,
            "--out",
            out.to_str().unwrap(),
        ]);
        out
    };
    // lmer(Reaction ~ Days + (Days | Subject), sleepstudy): fixed 251.405 (6.825),
    // 10.467 (1.546); SDs 24.741, 5.922, corr 0.066, residual 25.592; REML crit 1743.628.
    let out = run("reml");
    let fixed = Csv::read(&out.join("fixed.csv"));
    assert_eq!(fixed.header, ["term", "estimate", "se"]);
    assert_eq!(fixed.text("term"), ["(Intercept)", "Days"]);
    let (est, se) = (fixed.num("estimate"), fixed.num("se"));
    close(est[0], 251.405, 1e-2, "intercept");
    close(se[0], 6.825, 1e-2, "SE intercept");
    close(est[1], 10.467, 1e-2, "slope");
    close(se[1], 1.546, 1e-2, "SE slope");
    let v = json(&out.join("varcomp.json"));
    let g = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("varcomp.json: {k}"));
    close(g("sd_intercept"), 24.741, 1e-2, "sd intercept");
    close(g("sd_slope"), 5.922, 1e-2, "sd slope");
    close(g("corr"), 0.066, 1e-2, "corr");
    close(g("sd_residual"), 25.592, 1e-2, "residual");
    close(g("criterion"), 1743.628, 1e-2, "REML criterion");
    assert_eq!(v["method"], "reml");

    let blups = Csv::read(&out.join("blups.csv"));
    assert_eq!(blups.header, ["group", "u0", "u1"]);
    let groups = blups.text("group");
    assert_eq!(groups.len(), 18, "one row per subject");
    assert_eq!(groups.iter().collect::<BTreeSet<_>>().len(), 18);
    assert_eq!(groups[0], "308");
    // 308 climbs about 20 ms/day (slope above average); 309 starts low and stays flat.
    assert!(blups.row_by("308")["u1"] > 5.0);
    assert!(blups.row_by("309")["u0"] < -20.0);
    let u0 = blups.num("u0");
    assert!(u0.iter().sum::<f64>().abs() / 18.0 < 1.0);

    // ML (REML = FALSE): same fixed effects, smaller SEs and SDs; deviance 1751.939.
    let out = run("ml");
    let ml = Csv::read(&out.join("fixed.csv"));
    let (est_ml, se_ml) = (ml.num("estimate"), ml.num("se"));
    close(est_ml[0], 251.405, 1e-2, "ML intercept");
    close(se_ml[0], 6.632, 1e-2, "ML SE intercept");
    close(se_ml[1], 1.502, 1e-2, "ML SE slope");
    assert!(se_ml[0] < se[0] - 0.1 && se_ml[1] < se[1] - 0.01);
    let v = json(&out.join("varcomp.json"));
    assert_eq!(v["method"], "ml");
    close(
        v["sd_intercept"].as_f64().unwrap(),
        23.780,
        1e-2,
        "ML sd intercept",
    );
    close(v["criterion"].as_f64().unwrap(), 1751.939, 1e-2, "deviance");
}

#[test]
fn growth_samples_and_writes_goal_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    // θ-like data: 30 students × 6 weeks, β = (0, 0.2), τ = (0.5, 0.1), σ = 0.3.
    let mut rng = StdRng::seed_from_u64(11);
    let z = Normal::new(0.0, 1.0).unwrap();
    let mut text = String::from("student,week,theta\n");
    for s in 0..30 {
        let u0 = 0.5 * z.sample(&mut rng);
        let u1 = 0.1 * z.sample(&mut rng);
        for w in 0..6 {
            let y = u0 + (0.2 + u1) * f64::from(w) + 0.3 * z.sample(&mut rng);
            text.push_str(&format!("s{s:02},{w},{y}\n"));
        }
    }
    let data = write_file(dir.path(), "growth.csv", &text);
    let out = dir.path().join("out");
    fit_ok(&[
        "growth",
        "--data",
        data.to_str().unwrap(),
        "--y",
        "theta",
        "--time",
        "week",
        "--group",
        "student",
        "--goal",
        "1.5",
        "--target-time",
        "8",
        "--chains",
        "2",
        "--draws",
        "200",
        "--warmup",
        "200",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = Csv::read(&out.join("summary.csv"));
    assert_eq!(summary.header, ["parameter", "mean", "sd", "rhat", "ess"]);
    assert_eq!(
        summary.text("parameter"),
        [
            "beta0",
            "beta1",
            "sd_intercept",
            "sd_slope",
            "corr",
            "sigma"
        ]
    );
    for (r, e) in summary.num("rhat").iter().zip(summary.num("ess")) {
        assert!(r.is_finite() && *r > 0.9 && *r < 1.2, "rhat {r}");
        assert!(e > 10.0, "ess {e}");
    }
    let beta1 = summary.row_by("beta1");
    close(beta1["mean"], 0.2, 0.1, "slope");
    close(summary.row_by("sigma")["mean"], 0.3, 0.1, "sigma");

    let groups = Csv::read(&out.join("groups.csv"));
    assert_eq!(groups.header, ["group", "p_goal", "mean_at_target"]);
    assert_eq!(groups.rows.len(), 30);
    assert_eq!(groups.text("group")[0], "s00");
    let (p, m) = (groups.num("p_goal"), groups.num("mean_at_target"));
    assert!(p.iter().all(|p| (0.0..=1.0).contains(p)), "{p:?}");
    assert!(m.iter().all(|m| m.is_finite()));
    let hi = (0..30).max_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap();
    let lo = (0..30).min_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap();
    assert!(p[hi] > 0.5 && p[lo] < 0.5 && p[hi] > p[lo], "{p:?} {m:?}");
    let f = json(&out.join("fit.json"));
    assert_eq!(f["chains"], 2);
    assert_eq!(f["n_groups"], 30);
}

// ---------------------------------------------------------------- k-means ----

/// Three blobs: (rows as "x,y", true group of each row).
fn blobs(
    centres: &[(f64, f64)],
    spread: (f64, f64),
    per: usize,
    seed: u64,
) -> Vec<(f64, f64, usize)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Vec::new();
    for _ in 0..per {
        for (g, c) in centres.iter().enumerate() {
            let dx: f64 = rng.random_range(-1.0..1.0);
            let dy: f64 = rng.random_range(-1.0..1.0);
            v.push((c.0 + spread.0 * dx, c.1 + spread.1 * dy, g));
        }
    }
    v
}

fn blobs_csv(dir: &Path, name: &str, rows: &[(f64, f64, usize)]) -> std::path::PathBuf {
    let mut text = String::from("id,x,y,truth\n");
    for (i, (x, y, g)) in rows.iter().enumerate() {
        text.push_str(&format!("p{i},{x},{y},{g}\n"));
    }
    write_file(dir, name, &text)
}

/// Whether the clustering equals the true partition (up to renaming).
fn recovers(labels: &[String], truth: &[usize]) -> bool {
    let mut map = HashMap::new();
    let mut back = HashMap::new();
    labels.iter().zip(truth).all(|(l, t)| {
        *map.entry(l.clone()).or_insert(*t) == *t && *back.entry(*t).or_insert(l.clone()) == *l
    })
}

fn kmeans(data: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "kmeans",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--features",
        "x,y",
        "--k",
        "3",
        "--seed",
        "5",
        "--id",
        "id",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    fit_ok(&args);
    json(&out.join("fit.json"))
}

#[test]
fn kmeans_recovers_blobs_with_centres_in_original_units() {
    let dir = tempfile::tempdir().unwrap();
    let truth_centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
    let rows = blobs(&truth_centres, (1.0, 1.0), 20, 1);
    let data = blobs_csv(dir.path(), "blobs.csv", &rows);
    let out = dir.path().join("raw");
    let f = kmeans(&data, &out, &[]);

    let labels = Csv::read(&out.join("labels.csv"));
    assert_eq!(labels.header, ["row", "id", "cluster"]);
    assert_eq!(labels.rows.len(), 60);
    assert_eq!(labels.text("id")[7], "p7");
    let truth: Vec<usize> = rows.iter().map(|r| r.2).collect();
    let cl = labels.text("cluster");
    assert!(recovers(&cl, &truth), "{cl:?}");

    let centres = Csv::read(&out.join("centers.csv"));
    assert_eq!(centres.header, ["cluster", "x", "y", "size"]);
    assert_eq!(centres.num("size"), [20.0, 20.0, 20.0]);
    let (cx, cy) = (centres.num("x"), centres.num("y"));
    // Each centre is its cluster's mean in original units, near its blob's centre.
    let mut inertia = 0.0;
    for (k, cid) in centres.text("cluster").iter().enumerate() {
        let members: Vec<&(f64, f64, usize)> = rows
            .iter()
            .zip(&cl)
            .filter(|(_, l)| *l == cid)
            .map(|(r, _)| r)
            .collect();
        let mx = members.iter().map(|r| r.0).sum::<f64>() / members.len() as f64;
        let my = members.iter().map(|r| r.1).sum::<f64>() / members.len() as f64;
        close(cx[k], mx, 1e-9, "centre x");
        close(cy[k], my, 1e-9, "centre y");
        let t = truth_centres[members[0].2];
        close(cx[k], t.0, 0.5, "centre x vs truth");
        close(cy[k], t.1, 0.5, "centre y vs truth");
        inertia += members
            .iter()
            .map(|r| (r.0 - mx).powi(2) + (r.1 - my).powi(2))
            .sum::<f64>();
    }
    // Without --standardize the inertia is in the original units.
    assert_eq!(f["standardized"], false);
    close(
        f["inertia"].as_f64().unwrap(),
        inertia,
        1e-6 * inertia,
        "inertia",
    );
    let s = f["silhouette"].as_f64().unwrap();
    assert!(s > 0.7 && s <= 1.0, "silhouette {s}");
    assert_eq!(f["k"], 3);
}

#[test]
fn kmeans_standardize_puts_features_on_one_scale() {
    let dir = tempfile::tempdir().unwrap();
    // x separates groups 0 and 1 by 10 (noise ±1); y is in much larger units: its noise
    // (±200) dwarfs that gap, and group 2 sits 20,000 away in y.
    let rows = blobs(
        &[(0.0, 0.0), (10.0, 0.0), (0.0, 20_000.0)],
        (1.0, 200.0),
        20,
        2,
    );
    let data = blobs_csv(dir.path(), "units.csv", &rows);
    let truth: Vec<usize> = rows.iter().map(|r| r.2).collect();

    let out = dir.path().join("z");
    let f = kmeans(&data, &out, &["--standardize"]);
    let cl = Csv::read(&out.join("labels.csv")).text("cluster");
    assert!(recovers(&cl, &truth), "standardized: {cl:?}");
    assert_eq!(f["standardized"], true);
    // Inertia on the z scale (sample SDs), centres back in original units.
    let n = rows.len() as f64;
    let sd = |v: Vec<f64>| {
        let m = v.iter().sum::<f64>() / n;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    let (sx, sy) = (
        sd(rows.iter().map(|r| r.0).collect()),
        sd(rows.iter().map(|r| r.1).collect()),
    );
    let centres = Csv::read(&out.join("centers.csv"));
    let (cx, cy) = (centres.num("x"), centres.num("y"));
    assert!(
        cy.iter().any(|&y| y > 15_000.0),
        "centres in original units: {cy:?}"
    );
    let inertia_z: f64 = rows
        .iter()
        .zip(&cl)
        .map(|(r, l)| {
            let k: usize = l.parse().unwrap();
            ((r.0 - cx[k]) / sx).powi(2) + ((r.1 - cy[k]) / sy).powi(2)
        })
        .sum();
    close(
        f["inertia"].as_f64().unwrap(),
        inertia_z,
        1e-6 * inertia_z,
        "z inertia",
    );

    // In the original units y's noise dominates: groups 0 and 1 are not told apart.
    let out = dir.path().join("raw");
    kmeans(&data, &out, &[]);
    let cl = Csv::read(&out.join("labels.csv")).text("cluster");
    assert!(
        !recovers(&cl, &truth),
        "raw units should not separate x: {cl:?}"
    );
}

// ---------------------------------------------------------------- forecast ----

#[test]
fn forecast_follows_the_trend_and_finds_the_spikes() {
    let dir = tempfile::tempdir().unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let spikes = [25usize, 52, 88];
    let mut rng = StdRng::seed_from_u64(4);
    let mut text = String::from("date,active\n");
    for t in 0..112usize {
        let tf = t as f64;
        // trend: +0.05/day, then −0.03/day from day 70; weekly pattern; noise ±0.1
        let trend = 10.0 + 0.05 * tf.min(70.0) - 0.03 * (tf - 70.0).max(0.0);
        let weekly = 0.8 * (2.0 * std::f64::consts::PI * tf / 7.0).sin();
        let noise: f64 = rng.random_range(-0.1..0.1);
        let spike = if spikes.contains(&t) { 4.0 } else { 0.0 };
        let day = start + chrono::TimeDelta::days(t as i64);
        text.push_str(&format!("{day},{}\n", trend + weekly + noise + spike));
    }
    let data = write_file(dir.path(), "series.csv", &text);
    let out = dir.path().join("out");
    fit_ok(&[
        "forecast",
        "--data",
        data.to_str().unwrap(),
        "--ds",
        "date",
        "--y",
        "active",
        "--horizon",
        "21",
        "--interval",
        "0.8",
        "--out",
        out.to_str().unwrap(),
    ]);
    let fc = Csv::read(&out.join("forecast.csv"));
    assert_eq!(fc.header, ["ds", "yhat", "yhat_lower", "yhat_upper"]);
    assert_eq!(fc.rows.len(), 21);
    let ds = fc.text("ds");
    assert_eq!(ds[0], "2026-04-27", "the day after the last (2026-04-26)");
    assert_eq!(ds[20], "2026-05-17");
    let (yhat, lo, hi) = (fc.num("yhat"), fc.num("yhat_lower"), fc.num("yhat_upper"));
    for i in 0..21 {
        assert!(
            lo[i] <= yhat[i] && yhat[i] <= hi[i],
            "day {i}: {} {} {}",
            lo[i],
            yhat[i],
            hi[i]
        );
    }
    // the point forecast keeps falling at about 0.03/day (weekly pattern aside)
    let week_change = (yhat[14] - yhat[7]) / 7.0;
    close(week_change, -0.03, 0.01, "forecast slope");

    let an = Csv::read(&out.join("anomalies.csv"));
    assert_eq!(an.header, ["ds", "y", "expected", "score"]);
    let want: Vec<String> = spikes
        .iter()
        .map(|&t| (start + chrono::TimeDelta::days(t as i64)).to_string())
        .collect();
    assert_eq!(an.text("ds"), want);
    for ((y, e), s) in an
        .num("y")
        .iter()
        .zip(an.num("expected"))
        .zip(an.num("score"))
    {
        assert!(y - e > 3.0 && s > 1.0, "{y} {e} {s}");
    }
    let f = json(&out.join("fit.json"));
    close(
        f["final_slope_per_day"].as_f64().unwrap(),
        -0.03,
        0.01,
        "slope",
    );
}

// ---------------------------------------------------------------- bad input ----

#[test]
fn bad_input_names_file_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let out = out.to_str().unwrap();
    let ovarian = ovarian_csv(d);
    let cox = |data: &Path, cov: &str| {
        fit_err(&[
            "cox",
            "--data",
            data.to_str().unwrap(),
            "--time",
            "futime",
            "--event",
            "fustat",
            "--covariates",
            cov,
            "--out",
            out,
        ])
    };

    // unknown column: the available ones are listed
    let e = cox(&ovarian, "age,agee");
    assert!(e.contains("ovarian.csv") && e.contains("'agee'"), "{e}");
    assert!(e.contains("available: futime, fustat, age"), "{e}");

    // non-numeric value in data row 3 (line 4)
    let bad = write_file(
        d,
        "bad_num.csv",
        "futime,fustat,age\n1,1,50\n2,0,60\n3,1,sixty\n4,1,70\n",
    );
    let e = cox(&bad, "age");
    assert!(e.contains("bad_num.csv"), "{e}");
    assert!(
        e.contains("column 'age', row 3 (line 4)") && e.contains("'sixty' is not a number"),
        "{e}"
    );

    // event not 0/1/true/false
    let bad = write_file(
        d,
        "bad_event.csv",
        "futime,fustat,age\n1,1,50\n2,2,60\n3,1,65\n",
    );
    let e = cox(&bad, "age");
    assert!(
        e.contains("bad_event.csv") && e.contains("column 'fustat', row 2 (line 3)"),
        "{e}"
    );
    assert!(e.contains("'2' is not an event indicator"), "{e}");

    // empty value and negative time
    let bad = write_file(d, "bad_time.csv", "futime,fustat,age\n1,1,50\n-2,0,60\n");
    let e = cox(&bad, "age");
    assert!(
        e.contains("column 'futime', row 2 (line 3)") && e.contains("negative time"),
        "{e}"
    );
    let bad = write_file(d, "empty.csv", "futime,fustat,age\n1,1,\n");
    let e = cox(&bad, "age");
    assert!(
        e.contains("column 'age', row 1 (line 2): empty value"),
        "{e}"
    );

    // too few rows: the message says how many are needed
    let bad = write_file(d, "short.csv", "futime,fustat,age,rx\n1,1,50,1\n2,0,60,2\n");
    let e = cox(&bad, "age,rx");
    assert!(
        e.contains("short.csv: 2 data rows") && e.contains("needs at least 3"),
        "{e}"
    );

    let mut series = String::from("ds,y\n");
    for i in 1..=10 {
        series.push_str(&format!("2026-03-{i:02},{i}\n"));
    }
    let short = write_file(d, "series.csv", &series);
    let forecast = |data: &Path| {
        fit_err(&[
            "forecast",
            "--data",
            data.to_str().unwrap(),
            "--ds",
            "ds",
            "--y",
            "y",
            "--horizon",
            "7",
            "--out",
            out,
        ])
    };
    let e = forecast(&short);
    assert!(
        e.contains("series.csv: 10 data rows") && e.contains("needs at least 14"),
        "{e}"
    );
    let bad = write_file(d, "dates.csv", "ds,y\n2026-03-01,1\n2026-02-30,2\n");
    let e = forecast(&bad);
    assert!(
        e.contains("column 'ds', row 2 (line 3)") && e.contains("not a date (YYYY-MM-DD)"),
        "{e}"
    );
    let bad = write_file(
        d,
        "dup.csv",
        "ds,y\n2026-03-01,1\n2026-03-02,2\n2026-03-01,3\n",
    );
    let e = forecast(&bad);
    assert!(
        e.contains("column 'ds', row 3 (line 4)") && e.contains("repeats row 1"),
        "{e}"
    );

    // lmm: enough rows but two groups
    let mut two = String::from("g,t,y\n");
    for (i, v) in [1.0, 2.0, 3.5, 4.0, 2.0, 2.5, 3.0, 4.5].iter().enumerate() {
        two.push_str(&format!(
            "{},{},{v}\n",
            if i < 4 { "a" } else { "b" },
            i % 4
        ));
    }
    let two = write_file(d, "two.csv", &two);
    let e = fit_err(&[
        "lmm",
        "--data",
        two.to_str().unwrap(),
        "--y",
        "y",
        "--time",
        "t",
        "--group",
        "g",
        "--out",
        out,
    ]);
    assert!(
        e.contains("two.csv") && e.contains("column 'g' has 2 groups") && e.contains("at least 3"),
        "{e}"
    );

    // kmeans: unknown feature, fewer rows than clusters
    let pts = write_file(d, "pts.csv", "x,y\n1,2\n3,4\n");
    let km = |features: &str, k: &str| {
        fit_err(&[
            "kmeans",
            "--data",
            pts.to_str().unwrap(),
            "--features",
            features,
            "--k",
            k,
            "--out",
            out,
        ])
    };
    let e = km("x,z", "2");
    assert!(
        e.contains("pts.csv: no column 'z' (available: x, y)"),
        "{e}"
    );
    let e = km("x,y", "3");
    assert!(
        e.contains("pts.csv: 2 data rows") && e.contains("k = 3 needs at least 3"),
        "{e}"
    );

    // a missing file is named too
    let e = fit_err(&[
        "km",
        "--data",
        d.join("nope.csv").to_str().unwrap(),
        "--time",
        "t",
        "--event",
        "e",
        "--out",
        out,
    ]);
    assert!(e.contains("nope.csv"), "{e}");
}
