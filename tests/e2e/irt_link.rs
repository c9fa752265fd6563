//! `irtlake irt link` on Kolen & Brennan's common-item example (R plink's `KB04`): the
//! constants R plink prints for it (Weeks, 2010, *Journal of Statistical Software*
//! 35(12), section 4.1), the items moved onto the base scale, and input errors.

use std::path::{Path, PathBuf};

use crate::reference::reference_dir;
use crate::support::{irtlake_cmd, write_file};

/// Runs `irtlake irt link --from FROM --to TO --out OUT EXTRA…`: (success, stdout, stderr).
fn link(from: &Path, to: &Path, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "irt",
        "link",
        "--from",
        from.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    irtlake_cmd(&args)
}

/// Writes Form X's and Form Y's 36 items as `item_id,a,b,c` (common items share the id
/// `c<item>`, the others are `x<item>` / `y<item>`); `None` without the reference data.
fn forms(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let kb04 = reference_dir("kb04")?;
    let text = std::fs::read_to_string(kb04.join("items_full36.csv")).expect("kb04 items");
    let (mut x, mut y) = (
        String::from("item_id,a,b,c\n"),
        String::from("item_id,a,b,c\n"),
    );
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (item, form, common) = (f[0], f[1], f[5] == "1");
        let id = if common {
            format!("c{item}")
        } else {
            format!("{}{item}", form.to_ascii_lowercase())
        };
        let row = format!("{id},{},{},{}\n", f[2], f[3], f[4]);
        match form {
            "X" => x.push_str(&row),
            _ => y.push_str(&row),
        }
    }
    Some((write_file(dir, "x.csv", &x), write_file(dir, "y.csv", &y)))
}

/// One row of constants.csv: method, A, B, criterion field, iterations field.
type ConstantsRow = (String, f64, f64, String, String);

/// Reads constants.csv.
fn constants(dir: &Path) -> Vec<ConstantsRow> {
    let text = std::fs::read_to_string(dir.join("constants.csv")).expect("constants.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("method,A,B,criterion,iterations"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].to_string(),
                f[4].to_string(),
            )
        })
        .collect()
}

fn expect(rows: &[ConstantsRow], method: &str, a: f64, b: f64, tol: f64) {
    let r = rows
        .iter()
        .find(|r| r.0 == method)
        .unwrap_or_else(|| panic!("no {method} row in {rows:?}"));
    assert!(
        (r.1 - a).abs() <= tol && (r.2 - b).abs() <= tol,
        "{method}: A = {}, B = {}; plink prints {a}, {b}",
        r.1,
        r.2
    );
}

/// `plink(x, base.grp = 2)` and the symmetric run with `as.weight(30, normal.wt =
/// TRUE)`: Form X onto Form Y. 1e-5 (moments) and 1e-4 (curves) over plink's 6 printed
/// decimals; the files carry 6 decimals too.
#[test]
fn reproduces_plinks_constants_for_kolen_brennan() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((x, y)) = forms(tmp.path()) else {
        return;
    };
    let out = tmp.path().join("default");
    let (ok, stdout, stderr) = link(&x, &y, &out, &[]);
    assert!(ok, "irt link failed: {stderr}");
    assert!(stdout.contains("12 common item(s)"), "{stdout}");
    let rows = constants(&out);
    assert_eq!(rows.len(), 4, "{rows:?}");
    expect(&rows, "mean-mean", 1.217266, -0.557155, 1e-5);
    expect(&rows, "mean-sigma", 1.168892, -0.515543, 1e-5);
    expect(&rows, "haebara", 1.112133, -0.465667, 1e-4);
    expect(&rows, "stocking-lord", 1.119231, -0.485545, 1e-4);
    for r in &rows {
        let curve = matches!(r.0.as_str(), "haebara" | "stocking-lord");
        assert_eq!(!r.3.is_empty(), curve, "criterion field of {r:?}");
        assert_eq!(!r.4.is_empty(), curve, "iterations field of {r:?}");
    }

    // items_linked.csv: all 36 items of Form X, moved with Stocking–Lord (a/A, A·b + B)
    let linked = std::fs::read_to_string(out.join("items_linked.csv")).unwrap();
    let lines: Vec<&str> = linked.lines().collect();
    assert_eq!(lines[0], "item_id,a,b,c,common");
    assert_eq!(lines.len(), 37);
    assert_eq!(lines.iter().filter(|l| l.ends_with(",1")).count(), 12);
    let sl = rows.iter().find(|r| r.0 == "stocking-lord").unwrap();
    let first: Vec<&str> = lines[1].split(',').collect(); // x1: 0.5496, -1.7960, 0.1751
    assert_eq!(first[0], "x1");
    let (a, b): (f64, f64) = (first[1].parse().unwrap(), first[2].parse().unwrap());
    assert!((a - 0.5496 / sl.1).abs() < 2e-6, "a = {a}");
    assert!((b - (sl.1 * -1.7960 + sl.2)).abs() < 2e-6, "b = {b}");
    assert_eq!(first[3], "0.175100");

    let out = tmp.path().join("symmetric");
    let extra = [
        "--method",
        "stocking-lord",
        "--quadrature",
        "normal:30:-4:4",
        "--symmetric",
    ];
    let (ok, _, stderr) = link(&x, &y, &out, &extra);
    assert!(ok, "symmetric irt link failed: {stderr}");
    let rows = constants(&out);
    assert_eq!(rows.len(), 1);
    expect(&rows, "stocking-lord", 1.109529, -0.519901, 1e-4);
}

/// A quadrature file gives each group's weights; the same weights in both columns give
/// what the equivalent grid spec gives, and different FROM weights move the symmetric
/// constants (the FROM column is read).
#[test]
fn quadrature_file_gives_each_groups_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((x, y)) = forms(tmp.path()) else {
        return;
    };
    let run = |quad: &str, name: &str| {
        let out = tmp.path().join(name);
        let extra = ["--method", "haebara", "--symmetric", "--quadrature", quad];
        let (ok, _, stderr) = link(&x, &y, &out, &extra);
        assert!(ok, "irt link --quadrature {quad} failed: {stderr}");
        let r = constants(&out).remove(0);
        (r.1, r.2)
    };
    let mut same = String::from("theta,weight_from,weight_to\n");
    let mut tilted = same.clone();
    for k in 0..40 {
        let t = -4.0 + 8.0 * k as f64 / 39.0;
        same.push_str(&format!("{t},1,1\n"));
        tilted.push_str(&format!("{t},{},1\n", (-0.5 * (t - 1.0) * (t - 1.0)).exp()));
    }
    let same = write_file(tmp.path(), "same.csv", &same);
    let tilted = write_file(tmp.path(), "tilted.csv", &tilted);
    let grid = run("uniform:40:-4:4", "grid");
    let file = run(same.to_str().unwrap(), "same");
    assert!(
        (grid.0 - file.0).abs() < 2e-6 && (grid.1 - file.1).abs() < 2e-6,
        "{grid:?} vs {file:?}"
    );
    let other = run(tilted.to_str().unwrap(), "tilted");
    assert!((other.0 - grid.0).abs() > 1e-3, "{other:?} vs {grid:?}");
}

/// Bad input: a clear error, no output folder.
#[test]
fn rejects_bad_input_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_file(
        tmp.path(),
        "a.csv",
        "item_id,a,b,c\ni1,1.0,0.0,0\ni2,1.2,0.5,0\n",
    );
    let b = write_file(
        tmp.path(),
        "b.csv",
        "item_id,a,b,c\ni1,1.1,0.1,0\nj2,1.0,0.4,0\n",
    );
    let out = tmp.path().join("out");
    let cases: [(&[&str], &str); 4] = [
        (&[], "at least 2 common items"),
        (&["--method", "fixed"], "irt link computes constants"),
        (&["--quadrature", "uniform:1:-4:4"], "2 to 10000 points"),
        (
            &["--quadrature", "nofile.csv"],
            "reading --quadrature nofile.csv",
        ),
    ];
    for (extra, needle) in cases {
        let (ok, _, stderr) = link(&a, &b, &out, extra);
        assert!(!ok && stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?} left an output folder");
    }
}
