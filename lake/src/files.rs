//! Analyst files for the standalone IRT commands (`irtlake irt fit|score`): long
//! response files, anchor parameter files and item parameter files, CSV or Parquet,
//! validated with errors naming file, row and column.

use std::collections::HashSet;
use std::path::Path as FsPath;

use rustc_hash::FxHashSet;

use crate::error::Result;
use crate::ingest::{Problems, parse_correct, read_raw, value};
use crate::intern::Interner;

/// Long responses read from a file, interned: every id is stored once, every response as
/// a pair of indices into the sorted id lists (the IRT engine's compact form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Responses {
    /// Student ids, sorted, each once.
    pub students: Vec<String>,
    /// Question ids, sorted, each once.
    pub questions: Vec<String>,
    /// `(student, question, correct)` as indices into [`Self::students`] and
    /// [`Self::questions`], in file order; a repeated (student, question) pair keeps its
    /// first row.
    pub triplets: Vec<(u32, u32, bool)>,
    /// Repeated (student, question) rows left out.
    pub repeats: usize,
}

impl Responses {
    /// The index of question `id`, if it has responses.
    pub fn question(&self, id: &str) -> Option<u32> {
        self.questions
            .binary_search_by(|q| q.as_str().cmp(id))
            .ok()
            .map(|i| i as u32)
    }
}

/// Reads `student_id,question_id,correct` rows straight into [`Responses`]: ids interned
/// once (no string per row), repeats dropped by a set of index pairs.
pub fn read_responses(path: &FsPath) -> Result<Responses> {
    let raw = read_raw(path)?;
    raw.require(&["student_id", "question_id", "correct"])?;
    let (s, q, c) = (
        raw.column("student_id"),
        raw.column("question_id"),
        raw.column("correct"),
    );
    let mut problems = Problems::new(&raw.file);
    let mut students = Interner::default();
    let mut questions = Interner::default();
    let mut triplets = Vec::with_capacity(raw.rows);
    let mut seen: FxHashSet<u64> = FxHashSet::default();
    seen.reserve(raw.rows);
    let mut repeats = 0;
    for i in 0..raw.rows {
        let (Some(st), Some(qu)) = (value(s, i), value(q, i)) else {
            problems.push(format!(
                "{}: student_id and question_id are required",
                raw.row_name(i)
            ));
            continue;
        };
        let Some(cv) = value(c, i) else {
            // a missing response is missing by design: skip it
            continue;
        };
        let Some(ok) = parse_correct(cv) else {
            problems.push(format!(
                "{}, column 'correct': expected 0/1/true/false, got '{cv}'",
                raw.row_name(i)
            ));
            continue;
        };
        let (si, qi) = (students.intern(st), questions.intern(qu));
        if seen.insert(u64::from(si) << 32 | u64::from(qi)) {
            triplets.push((si, qi, ok));
        } else {
            repeats += 1;
        }
    }
    problems.finish()?;
    drop(seen);
    let (students, student_rank) = students.sorted();
    let (questions, question_rank) = questions.sorted();
    for t in &mut triplets {
        t.0 = student_rank[t.0 as usize];
        t.1 = question_rank[t.1 as usize];
    }
    Ok(Responses {
        students,
        questions,
        triplets,
        repeats,
    })
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
