//! Analyst files for the standalone IRT commands (`irtlake irt fit|score`): long
//! response files, anchor parameter files and item parameter files, CSV or Parquet,
//! validated with errors naming file, row and column.

use std::collections::HashSet;
use std::path::Path as FsPath;

use crate::error::Result;
use crate::ingest::{Problems, parse_correct, read_raw, value};

/// One response: `(student_id, question_id, correct)`.
pub type Response = (String, String, bool);

/// Reads `student_id,question_id,correct` rows. A repeated (student, question) pair
/// keeps its first row; the count of dropped repeats is returned beside the rows.
pub fn read_responses(path: &FsPath) -> Result<(Vec<Response>, usize)> {
    let raw = read_raw(path)?;
    raw.require(&["student_id", "question_id", "correct"])?;
    let (s, q, c) = (
        raw.column("student_id"),
        raw.column("question_id"),
        raw.column("correct"),
    );
    let mut problems = Problems::new(&raw.file);
    let mut out = Vec::with_capacity(raw.rows);
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut repeats = 0;
    for i in 0..raw.rows {
        let rn = raw.row_name(i);
        let (Some(st), Some(qu)) = (value(s, i), value(q, i)) else {
            problems.push(format!("{rn}: student_id and question_id are required"));
            continue;
        };
        let Some(cv) = value(c, i) else {
            // a missing response is missing by design: skip it
            continue;
        };
        let Some(ok) = parse_correct(cv) else {
            problems.push(format!(
                "{rn}, column 'correct': expected 0/1/true/false, got '{cv}'"
            ));
            continue;
        };
        if seen.insert((st.to_string(), qu.to_string())) {
            out.push((st.to_string(), qu.to_string(), ok));
        } else {
            repeats += 1;
        }
    }
    problems.finish()?;
    Ok((out, repeats))
}

/// Item parameters read from a file: `(item_id, a, b, c)`; `None` when the row has no
/// usable parameters (e.g. an excluded item with empty a/b).
pub type ItemRow = (String, Option<(f64, f64, f64)>);

/// Reads `item_id,a,b[,c]` rows (anchors or a calibration's `items.csv`). With
/// `require_params`, every row must carry valid parameters (a > 0, finite b,
/// 0 ≤ c < 1); otherwise rows with empty a/b are returned as `None`.
pub fn read_item_params(path: &FsPath, require_params: bool) -> Result<Vec<ItemRow>> {
    let raw = read_raw(path)?;
    raw.require(&["item_id", "a", "b"])?;
    let (id, a, b, c) = (
        raw.column("item_id"),
        raw.column("a"),
        raw.column("b"),
        raw.column("c"),
    );
    let mut problems = Problems::new(&raw.file);
    let mut out = Vec::with_capacity(raw.rows);
    let mut seen = HashSet::new();
    for i in 0..raw.rows {
        let rn = raw.row_name(i);
        let Some(item) = value(id, i) else {
            problems.push(format!("{rn}, column 'item_id': value is missing"));
            continue;
        };
        if !seen.insert(item.to_string()) {
            problems.push(format!("{rn}, column 'item_id': '{item}' appears twice"));
            continue;
        }
        let num =
            |col: Option<&arrow::array::StringArray>| -> Option<std::result::Result<f64, String>> {
                value(col, i).map(|v| v.trim().parse::<f64>().map_err(|_| v.to_string()))
            };
        let (pa, pb, pc) = (num(a), num(b), num(c));
        match (pa, pb) {
            (None, None) | (None, Some(_)) | (Some(_), None) if !require_params => {
                out.push((item.to_string(), None));
            }
            (Some(Ok(av)), Some(Ok(bv))) => {
                let cv = match pc {
                    None => 0.0,
                    Some(Ok(v)) => v,
                    Some(Err(v)) => {
                        problems.push(format!("{rn}, column 'c': expected a number, got '{v}'"));
                        continue;
                    }
                };
                if !(av.is_finite() && av > 0.0) {
                    problems.push(format!(
                        "{rn}, column 'a': item '{item}' needs a > 0, got {av}"
                    ));
                } else if !bv.is_finite() {
                    problems.push(format!("{rn}, column 'b': item '{item}' needs a finite b"));
                } else if !(0.0..1.0).contains(&cv) {
                    problems.push(format!(
                        "{rn}, column 'c': item '{item}' needs 0 <= c < 1, got {cv}"
                    ));
                } else {
                    out.push((item.to_string(), Some((av, bv, cv))));
                }
            }
            (Some(Err(v)), _) => {
                problems.push(format!("{rn}, column 'a': expected a number, got '{v}'"))
            }
            (_, Some(Err(v))) => {
                problems.push(format!("{rn}, column 'b': expected a number, got '{v}'"))
            }
            _ => problems.push(format!("{rn}: item '{item}' needs both a and b")),
        }
    }
    problems.finish()?;
    Ok(out)
}
