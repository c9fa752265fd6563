//! `irtlake fit glmm` end to end: lme4's `cbpp` example through `--trials` and
//! `--factor`, a simulated 0/1 growth panel through `--random slope` and
//! `--random intercept`, and the input validation messages (file, row, column).

use std::path::{Path, PathBuf};

use models::growth::{BinomialGrowthSpec, simulate_binomial};

use crate::cbpp_data::CBPP;
use crate::support::write_file;

/// Runs `irtlake fit glmm ARGS`: (success, stdout, stderr).
fn glmm(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["fit", "glmm"];
    all.extend_from_slice(args);
    crate::support::irtlake_cmd(&all)
}

fn glmm_ok(args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = glmm(args);
    assert!(ok, "irtlake fit glmm {args:?} failed:\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"))
}

fn glmm_err(args: &[&str]) -> String {
    let (ok, stdout, stderr) = glmm(args);
    assert!(!ok, "irtlake fit glmm {args:?} should fail:\n{stdout}");
    stderr
}

/// (header, rows) of a CSV output.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (± {tol})"
    );
}

fn cbpp_csv(dir: &Path) -> PathBuf {
    let mut text = String::from("herd,incidence,size,period\n");
    for (herd, incidence, size, period) in CBPP {
        text.push_str(&format!("{herd},{incidence},{size},{period}\n"));
    }
    write_file(dir, "cbpp.csv", &text)
}

/// `glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)`:
/// lme4 prints fixed effects −1.3983 (0.2312), −0.9919 (0.3032), −1.1282 (0.3228),
/// −1.5797 (0.4220), herd SD 0.6421, logLik −92.0266. Tolerances as in
/// models/tests/glmm.rs (estimates 1e-3, SD 5e-3, logLik 0.05, SEs 6e-3: lme4's SEs
/// come from a finite-difference Hessian of a deviance whose inner PIRLS stops at a
/// relative 1e-7; ours are 0.2325, 0.3066, 0.3266, 0.4274).
#[test]
fn glmm_cli_matches_glmer_on_cbpp() {
    let dir = tempfile::tempdir().unwrap();
    let data = cbpp_csv(dir.path());
    let out = dir.path().join("out");
    let summary = glmm_ok(&[
        "--data",
        data.to_str().unwrap(),
        "--y",
        "incidence",
        "--trials",
        "size",
        "--group",
        "herd",
        "--random",
        "intercept",
        "--factor",
        "period",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (header, rows) = read_csv(&out.join("fixed.csv"));
    assert_eq!(header, ["term", "estimate", "se"]);
    let want = [
        ("(Intercept)", -1.3983, 0.2312),
        ("period2", -0.9919, 0.3032),
        ("period3", -1.1282, 0.3228),
        ("period4", -1.5797, 0.4220),
    ];
    assert_eq!(rows.len(), 4);
    for (row, (term, est, se)) in rows.iter().zip(want) {
        assert_eq!(row[0], term);
        close(row[1].parse().unwrap(), est, 1e-3, term);
        close(row[2].parse().unwrap(), se, 6e-3, &format!("SE {term}"));
    }
    let v = read_json(&out.join("varcomp.json"));
    close(v["sd_intercept"].as_f64().unwrap(), 0.6421, 5e-3, "SD herd");
    assert!(v["sd_slope"].is_null() && v["corr"].is_null(), "{v}");
    let f = read_json(&out.join("fit.json"));
    close(f["loglik"].as_f64().unwrap(), -92.0266, 0.05, "logLik");
    assert_eq!(f["converged"], true);
    assert_eq!(
        (f["n_obs"].as_u64(), f["n_groups"].as_u64()),
        (Some(56), Some(15))
    );
    assert!(f["iterations"].as_u64().unwrap() > 10);
    assert_eq!(
        f["factor_levels"]["period"],
        serde_json::json!(["1", "2", "3", "4"])
    );
    assert_eq!(summary, f, "stdout is fit.json");
    let (header, rows) = read_csv(&out.join("blups.csv"));
    assert_eq!(header, ["group", "intercept", "slope"]);
    assert_eq!(rows.len(), 15);
    assert_eq!(rows[0][0], "1");
    assert!(
        rows.iter().all(|r| r[2].is_empty()),
        "no slope column values"
    );
    let sum: f64 = rows.iter().map(|r| r[1].parse::<f64>().unwrap()).sum();
    assert!(sum.abs() < 1.0);
}

/// 0/1 answers of 120 students over 6 weeks (5 a week), simulated as
/// logit P = 0.2 + b₀ + (0.15 + b₁)·week with SDs (0.8, 0.2) and correlation −0.3.
fn panel_csv(dir: &Path) -> PathBuf {
    let s = simulate_binomial(
        &BinomialGrowthSpec {
            n_groups: 120,
            n_times: 6,
            trials: 5,
            beta: [0.2, 0.15],
            sd_intercept: 0.8,
            sd_slope: 0.2,
            corr: -0.3,
        },
        5,
    )
    .unwrap();
    let (g, t, y) = s.bernoulli_rows();
    let mut text = String::from("student,week,correct,hints\n");
    for (i, ((g, t), y)) in g.iter().zip(&t).zip(&y).enumerate() {
        text.push_str(&format!("s{g:03},{t},{y},{}\n", i % 3));
    }
    write_file(dir, "panel.csv", &text)
}

/// A 0/1 panel by `--random slope` (with a numeric covariate) and by
/// `--random intercept`: sensible estimates (within 4 of the fit's SEs for β; 3600 answers
/// are a small sample for variance components, so those are only bounded), the
/// random-slope model's log-likelihood at least the intercept-only one's, and one BLUP
/// row per student.
#[test]
fn glmm_cli_fits_a_binary_growth_panel() {
    let dir = tempfile::tempdir().unwrap();
    let data = panel_csv(dir.path());
    let run = |random: &str| {
        let out = dir.path().join(random);
        let f = glmm_ok(&[
            "--data",
            data.to_str().unwrap(),
            "--y",
            "correct",
            "--time",
            "week",
            "--group",
            "student",
            "--covariates",
            "hints",
            "--random",
            random,
            "--out",
            out.to_str().unwrap(),
        ]);
        (out, f)
    };
    let (out, slope) = run("slope");
    assert_eq!(slope["random"], "slope");
    assert_eq!(slope["converged"], true, "{slope}");
    assert_eq!(slope["n_obs"], 3600);
    let (_, rows) = read_csv(&out.join("fixed.csv"));
    let terms: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(terms, ["(Intercept)", "week", "hints"]);
    for (row, truth) in rows.iter().zip([0.2, 0.15, 0.0]) {
        let (est, se): (f64, f64) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        close(est, truth, 4.0 * se, &row[0]);
    }
    let v = read_json(&out.join("varcomp.json"));
    let (sd0, sd1, r) = (
        v["sd_intercept"].as_f64().unwrap(),
        v["sd_slope"].as_f64().unwrap(),
        v["corr"].as_f64().unwrap(),
    );
    assert!(
        (0.4..1.2).contains(&sd0) && (0.0..0.45).contains(&sd1),
        "{v}"
    );
    assert!((-1.0..=1.0).contains(&r));
    let (header, blups) = read_csv(&out.join("blups.csv"));
    assert_eq!(header, ["group", "intercept", "slope"]);
    assert_eq!(blups.len(), 120);
    assert_eq!(blups[0][0], "s000");
    assert!(blups.iter().all(|b| b[2].parse::<f64>().is_ok()));

    let (_, intercept) = run("intercept");
    assert_eq!(intercept["random"], "intercept");
    let (ls, li) = (
        slope["loglik"].as_f64().unwrap(),
        intercept["loglik"].as_f64().unwrap(),
    );
    assert!(ls >= li, "slope {ls} < intercept {li}");
    assert_eq!(
        intercept["n_params"].as_u64().unwrap() + 2,
        slope["n_params"].as_u64().unwrap()
    );
}

#[test]
fn glmm_cli_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let out = out.to_str().unwrap();
    let base = |file: &Path| -> Vec<String> {
        [
            "--data",
            file.to_str().unwrap(),
            "--y",
            "y",
            "--group",
            "g",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let err = |file: &Path, extra: &[&str]| {
        let mut a = base(file);
        a.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        glmm_err(&refs)
    };

    // A 0/1 outcome without --trials.
    let f = write_file(d, "counts.csv", "g,t,y\na,0,1\na,1,2\nb,0,0\n");
    let e = err(&f, &["--time", "t"]);
    assert!(
        e.contains("counts.csv: column 'y', row 2 (line 3): '2' is not 0 or 1")
            && e.contains("--trials"),
        "{e}"
    );
    // More successes than trials.
    let f = write_file(d, "over.csv", "g,t,y,n\na,0,1,3\na,1,5,4\nb,0,0,2\n");
    let e = err(&f, &["--time", "t", "--trials", "n"]);
    assert!(
        e.contains(
            "over.csv: column 'y', row 2 (line 3): 5 successes out of 4 trials (column 'n')"
        ),
        "{e}"
    );
    // Trials that are not whole numbers >= 1.
    let f = write_file(d, "trials.csv", "g,t,y,n\na,0,1,3\na,1,0,0\nb,0,0,2\n");
    let e = err(&f, &["--time", "t", "--trials", "n"]);
    assert!(
        e.contains("trials.csv: column 'n', row 2 (line 3): 0 is not a valid number of trials"),
        "{e}"
    );
    // A missing group.
    let f = write_file(d, "nogroup.csv", "g,t,y\na,0,1\n,1,0\nb,0,0\n");
    let e = err(&f, &["--time", "t"]);
    assert!(
        e.contains("nogroup.csv: column 'g', row 2 (line 3): empty value"),
        "{e}"
    );
    // A non-numeric time, an unknown column.
    let f = write_file(d, "time.csv", "g,t,y\na,0,1\na,x,0\nb,0,0\n");
    let e = err(&f, &["--time", "t"]);
    assert!(
        e.contains("time.csv: column 't', row 2 (line 3): 'x' is not a number"),
        "{e}"
    );
    let e = err(&f, &["--time", "week"]);
    assert!(
        e.contains("time.csv: no column 'week' (available: g, t, y)"),
        "{e}"
    );
    // The default random slope needs --time.
    let e = err(&f, &[]);
    assert!(
        e.contains("--random slope (the default) needs --time"),
        "{e}"
    );
    // A column given to two options.
    let e = err(&f, &["--time", "t", "--covariates", "t"]);
    assert!(
        e.contains("column 't' is given to both --time and --covariates"),
        "{e}"
    );
    // A constant response.
    let f = write_file(d, "const.csv", "g,t,y\na,0,0\na,1,0\nb,0,0\nb,1,0\nc,0,0\n");
    let e = err(&f, &["--time", "t"]);
    assert!(
        e.contains("const.csv: column 'y': 0 of 5 trials are successes")
            && e.contains("both outcomes"),
        "{e}"
    );
    // Too few groups.
    let f = write_file(d, "two.csv", "g,t,y\na,0,0\na,1,1\nb,0,1\nb,1,0\n");
    let e = err(&f, &["--time", "t"]);
    assert!(
        e.contains("two.csv: column 'g' has 2 groups; the model needs at least 3"),
        "{e}"
    );
    // A factor with one level; a covariate collinear with the intercept.
    let f = write_file(
        d,
        "fac.csv",
        "g,t,y,f,c\na,0,0,x,2\na,1,1,x,2\nb,0,1,x,2\nb,1,0,x,2\nc,0,1,x,2\nc,1,1,x,2\n",
    );
    let e = err(&f, &["--random", "intercept", "--factor", "f"]);
    assert!(
        e.contains("fac.csv: --factor f: the column has a single level 'x'"),
        "{e}"
    );
    let e = err(&f, &["--random", "intercept", "--covariates", "c"]);
    assert!(
        e.contains("fac.csv")
            && e.contains("column 'c' is constant or a linear combination of (Intercept)"),
        "{e}"
    );
}
