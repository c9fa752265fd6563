//! The questions ingest ([`ingest_questions`]): validation (anchors need known
//! parameters) and the upsert by `question_id`; the `questions` row type, how the table
//! is read, and its batch builder.

use std::collections::{BTreeMap, HashMap};
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::DataType;

use crate::catalog::{self, QUESTIONS};
use crate::columns::{Columns, TableBatch};
use crate::error::Result;
use crate::store::Lake;

use super::parse::{parse_correct, parse_tags};
use super::raw::{Problems, parsed, read_raw, value};

/// What a questions ingest did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QuestionsReport {
    /// The input file.
    pub file: String,
    /// Data rows read.
    pub rows_read: usize,
    /// Questions new to the lake.
    pub inserted: usize,
    /// Questions that replaced an existing row.
    pub updated: usize,
    /// Anchors among the rows read.
    pub anchors: usize,
    /// Questions in the table after the ingest.
    pub total: usize,
}

/// A validated row of the `questions` table (shared by ingest, anchors and the
/// PostgreSQL export).
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionRow {
    /// Question id.
    pub question_id: String,
    /// Subject id.
    pub subject_id: Option<String>,
    /// Topic id.
    pub topic_id: Option<String>,
    /// Tags, in source order.
    pub tags: Vec<String>,
    /// Known discrimination (anchors).
    pub irt_a: Option<f64>,
    /// Known difficulty (anchors).
    pub irt_b: Option<f64>,
    /// Known guessing (anchors).
    pub irt_c: Option<f64>,
    /// Whether the question is an anchor of the scale.
    pub is_anchor: bool,
}

/// Every question in the lake's `questions` table, by id (empty if never written).
pub async fn read_questions(lake: &Lake) -> Result<BTreeMap<String, QuestionRow>> {
    let mut rows = BTreeMap::new();
    for b in lake.read_partition(QUESTIONS, &[]).await? {
        for r in question_rows(&b)? {
            rows.insert(r.question_id.clone(), r);
        }
    }
    Ok(rows)
}

/// Ingests a questions file (CSV or Parquet) into the `questions` table.
///
/// Required column: `question_id`; optional: `subject_id, topic_id, tags, irt_a, irt_b,
/// irt_c, is_anchor`. A question is an anchor when its tags contain `anchor` or
/// `is_anchor` is true; an anchor needs valid known parameters.
pub async fn ingest_questions(lake: &Lake, path: &FsPath) -> Result<QuestionsReport> {
    let raw = read_raw(path)?;
    raw.require(&["question_id"])?;
    let col = |n: &str| raw.column(n);
    let (c_q, c_s, c_t, c_tags, c_a, c_b, c_c, c_anchor) = (
        col("question_id"),
        col("subject_id"),
        col("topic_id"),
        col("tags"),
        col("irt_a"),
        col("irt_b"),
        col("irt_c"),
        col("is_anchor"),
    );
    let mut problems = Problems::new(&raw.file);
    let mut first_row: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(raw.rows);
    for i in 0..raw.rows {
        let rn = raw.row_name(i);
        let Some(qid) = value(c_q, i) else {
            problems.push(format!("{rn}, column 'question_id': value is missing"));
            continue;
        };
        if let Some(prev) = first_row.insert(qid.to_string(), i) {
            problems.push(format!(
                "{rn}, column 'question_id': '{qid}' already appears on {}",
                raw.row_name(prev)
            ));
            continue;
        }
        let row = || rn.clone();
        let mut num = |name: &str, c: Option<&StringArray>| {
            parsed(&mut problems, &row, name, value(c, i), false, |s| {
                match s.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(format!("expected a number, got '{s}'")),
                }
            })
        };
        let (irt_a, irt_b, irt_c) = (num("irt_a", c_a), num("irt_b", c_b), num("irt_c", c_c));
        let tags = value(c_tags, i).map(parse_tags).unwrap_or_default();
        let flag = match value(c_anchor, i) {
            None => false,
            Some(s) => match parse_correct(s) {
                Some(v) => v,
                None => {
                    problems.push(format!(
                        "{rn}, column 'is_anchor': expected 0/1/true/false, got '{s}'"
                    ));
                    false
                }
            },
        };
        let is_anchor = flag || tags.iter().any(|t| t.eq_ignore_ascii_case("anchor"));
        if is_anchor {
            match (irt_a, irt_b) {
                (Some(a), Some(_)) if a > 0.0 => {}
                (Some(a), Some(_)) => problems.push(format!(
                    "{rn}, column 'irt_a': anchor '{qid}' needs irt_a > 0, got {a}"
                )),
                _ => problems.push(format!(
                    "{rn}: anchor '{qid}' needs known parameters irt_a and irt_b"
                )),
            }
            if let Some(c) = irt_c
                && !(0.0..1.0).contains(&c)
            {
                problems.push(format!(
                    "{rn}, column 'irt_c': anchor '{qid}' needs 0 <= irt_c < 1, got {c}"
                ));
            }
        }
        rows.push(QuestionRow {
            question_id: qid.to_string(),
            subject_id: value(c_s, i).map(str::to_string),
            topic_id: value(c_t, i).map(str::to_string),
            tags,
            irt_a,
            irt_b,
            irt_c: if is_anchor {
                Some(irt_c.unwrap_or(0.0))
            } else {
                irt_c
            },
            is_anchor,
        });
    }
    problems.finish()?;

    let mut merged = read_questions(lake).await?;
    let mut report = QuestionsReport {
        file: raw.file.clone(),
        rows_read: raw.rows,
        anchors: rows.iter().filter(|r| r.is_anchor).count(),
        ..Default::default()
    };
    let before = merged.clone();
    for r in rows {
        match merged.insert(r.question_id.clone(), r) {
            None => report.inserted += 1,
            Some(_) => report.updated += 1,
        }
    }
    report.total = merged.len();
    if merged != before {
        let batch = question_batch(&merged.into_values().collect::<Vec<_>>())?;
        lake.write_partition(QUESTIONS, &[], &[batch]).await?;
    }
    Ok(report)
}

/// The rows of a `questions` batch (the catalog's file schema).
pub fn question_rows(b: &RecordBatch) -> Result<Vec<QuestionRow>> {
    let cols = Columns::of(b);
    let (q, subj, top) = (
        cols.strings("question_id")?,
        cols.strings("subject_id")?,
        cols.strings("topic_id")?,
    );
    let tags = cols.column("tags")?.as_list_opt::<i32>().ok_or_else(|| {
        crate::LakeError::InvalidInput("questions: column 'tags' is not a list".into())
    })?;
    let (a, bb, c) = (
        cols.f64s("irt_a")?,
        cols.f64s("irt_b")?,
        cols.f64s("irt_c")?,
    );
    let anc = cols.bools("is_anchor")?;
    let opt_s = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    let opt_f = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    Ok((0..b.num_rows())
        .map(|i| QuestionRow {
            question_id: q.value(i).to_string(),
            subject_id: opt_s(subj, i),
            topic_id: opt_s(top, i),
            tags: if tags.is_null(i) {
                Vec::new()
            } else {
                let v = tags.value(i);
                let v = v.as_string::<i32>();
                (0..v.len()).map(|j| v.value(j).to_string()).collect()
            },
            irt_a: opt_f(a, i),
            irt_b: opt_f(bb, i),
            irt_c: opt_f(c, i),
            is_anchor: anc.value(i),
        })
        .collect())
}

/// A `questions` batch (the catalog's file schema) of `rows`, in order.
pub fn question_batch(rows: &[QuestionRow]) -> Result<RecordBatch> {
    let def = catalog::table(QUESTIONS)?;
    let mut tags = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for t in &r.tags {
            tags.values().append_value(t);
        }
        tags.append(true);
    }
    let tags = tags.finish();
    let field = match def.file_schema.field_with_name("tags")?.data_type() {
        DataType::List(f) => f.clone(),
        _ => unreachable!("catalog declares tags as a list"),
    };
    let tags = arrow::array::ListArray::new(
        field,
        tags.offsets().clone(),
        tags.values().clone(),
        tags.nulls().cloned(),
    );
    let text = |f: fn(&QuestionRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    TableBatch::new(QUESTIONS, rows.len())?
        .set("question_id", text(|r| Some(r.question_id.as_str())))?
        .set("subject_id", text(|r| r.subject_id.as_deref()))?
        .set("topic_id", text(|r| r.topic_id.as_deref()))?
        .set("tags", Arc::new(tags))?
        .f64s("irt_a", rows.iter().map(|r| r.irt_a).collect())?
        .f64s("irt_b", rows.iter().map(|r| r.irt_b).collect())?
        .f64s("irt_c", rows.iter().map(|r| r.irt_c).collect())?
        .bools(
            "is_anchor",
            rows.iter().map(|r| Some(r.is_anchor)).collect(),
        )?
        .finish()
}
