//! The `questions` table from the platform's `question` table, merged with the anchors
//! the lake already holds.

use std::collections::BTreeMap;

use lake::ingest::QuestionRow;
use tokio_postgres::Transaction;

use crate::Examples;
use crate::error::{ExportError, Result};
use crate::meta::parse_meta;
use crate::source::{Pages, QUESTIONS_SQL, text};

/// The question bank as read from the source, with what the merge did.
#[derive(Debug, Default)]
pub(crate) struct Bank {
    /// The new `questions` table, by question id.
    pub(crate) rows: BTreeMap<String, QuestionRow>,
    /// Problems in `meta` (and skipped rows), counted, with examples.
    pub(crate) warnings: Examples,
    /// Anchors kept from the lake (not marked, or marked without valid parameters, in
    /// the source).
    pub(crate) anchors_kept_from_lake: u64,
    /// Lake questions no longer in the source (dropped from the table).
    pub(crate) removed: u64,
    /// Pages read.
    pub(crate) pages: u64,
}

/// Reads the source's question bank in pages and builds the new `questions` table:
///
/// - one row per source question (`id::text`), subject = `exam_id::text`, topic =
///   `topic_id::text`, tags / anchor flag / known parameters from `meta`
///   (see [`crate::meta`]); an anchor without `c` gets `c = 0`;
/// - a question that is an anchor with known parameters in the lake (tagged by
///   `irtlake anchors tag`, an ingest or an earlier export) stays one: when the source
///   does not mark it, the lake's `anchor` tag, flag and parameters are kept; when the
///   source marks it without valid parameters, the lake's parameters are kept; when the
///   source gives valid parameters, they win;
/// - lake questions missing from the source are dropped (the table mirrors the source).
pub(crate) async fn read_bank(
    tx: &Transaction<'_>,
    target: &str,
    page_size: u32,
    lake_rows: &BTreeMap<String, QuestionRow>,
) -> Result<Bank> {
    let mut bank = Bank::default();
    let mut pages = Pages::open(
        tx,
        QUESTIONS_SQL,
        &[],
        page_size,
        format!("questions from {target}"),
    )
    .await?;
    while let Some(page) = pages.next().await? {
        for row in &page {
            let Some(id) = text(row, 0, "question.id")? else {
                bank.warnings
                    .push("a question with a NULL id was skipped".to_string());
                continue;
            };
            if bank.rows.contains_key(&id) {
                bank.warnings.push(format!(
                    "question {id}: the id appears more than once; the first row is kept"
                ));
                continue;
            }
            let meta_text = text(row, 3, "question.meta")?;
            let meta = parse_meta(meta_text.as_deref());
            for w in &meta.warnings {
                bank.warnings.push(format!("question {id}: {w}"));
            }
            let mut q = QuestionRow {
                question_id: id.clone(),
                subject_id: text(row, 1, "question.exam_id")?,
                topic_id: text(row, 2, "question.topic_id")?,
                tags: meta.tags,
                irt_a: meta.irt.map(|p| p.a),
                irt_b: meta.irt.map(|p| p.b),
                irt_c: meta
                    .irt
                    .and_then(|p| p.c)
                    .or((meta.is_anchor && meta.irt.is_some()).then_some(0.0)),
                is_anchor: meta.is_anchor,
            };
            if let Some(old) = lake_rows.get(&id)
                && old.is_anchor
                && old.irt_a.is_some()
                && old.irt_b.is_some()
                && (!q.is_anchor || q.irt_a.is_none())
            {
                if !q.tags.iter().any(|t| t.eq_ignore_ascii_case("anchor")) {
                    q.tags.push("anchor".to_string());
                }
                q.is_anchor = true;
                (q.irt_a, q.irt_b, q.irt_c) = (old.irt_a, old.irt_b, old.irt_c.or(Some(0.0)));
                bank.anchors_kept_from_lake += 1;
            }
            bank.rows.insert(id, q);
        }
    }
    bank.pages = pages.fetched;
    bank.removed = lake_rows
        .keys()
        .filter(|k| !bank.rows.contains_key(*k))
        .count() as u64;
    if bank.rows.is_empty() && !lake_rows.is_empty() {
        return Err(ExportError::InvalidInput(format!(
            "source: question on {target} is empty; refusing to replace the lake's {} \
             questions with nothing",
            lake_rows.len()
        )));
    }
    if bank.warnings.count > 0 {
        tracing::warn!(
            warnings = bank.warnings.count,
            examples = ?bank.warnings.examples,
            "questions with malformed meta were exported without the unreadable parts"
        );
    }
    Ok(bank)
}
