//! Marking questions as anchors of the scale with known parameters ([`set_anchors`]).

use std::collections::HashMap;

use crate::catalog::QUESTIONS;
use crate::error::{LakeError, Result};
use crate::store::Lake;

use super::questions::{question_batch, read_questions};

/// What [`set_anchors`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AnchorUpdate {
    /// Questions newly tagged (or re-tagged) as anchors with the given parameters.
    pub tagged: usize,
    /// Existing anchors kept as they were.
    pub kept: usize,
    /// Existing anchors whose tag was removed (`replace`).
    pub untagged: usize,
}

/// Marks questions as anchors with known parameters `(question_id, a, b, c)`: the tag
/// `anchor` is added, `irt_a/irt_b/irt_c` set and `is_anchor` true. Existing anchors
/// not in the list are kept, unless `replace` (then their tag, flag and parameters are
/// removed). Unknown question ids are refused and nothing is written.
pub async fn set_anchors(
    lake: &Lake,
    anchors: &[(String, f64, f64, f64)],
    replace: bool,
) -> Result<AnchorUpdate> {
    let mut rows = read_questions(lake).await?;
    let wanted: HashMap<&str, (f64, f64, f64)> = anchors
        .iter()
        .map(|(q, a, b, c)| (q.as_str(), (*a, *b, *c)))
        .collect();
    let unknown: Vec<&str> = wanted
        .keys()
        .copied()
        .filter(|q| !rows.contains_key(*q))
        .collect();
    if !unknown.is_empty() {
        return Err(LakeError::InvalidInput(format!(
            "anchors for questions not in the lake: {}",
            unknown.join(", ")
        )));
    }
    let mut update = AnchorUpdate::default();
    for (id, row) in rows.iter_mut() {
        if let Some(&(a, b, c)) = wanted.get(id.as_str()) {
            if !row.tags.iter().any(|t| t.eq_ignore_ascii_case("anchor")) {
                row.tags.push("anchor".into());
            }
            (row.irt_a, row.irt_b, row.irt_c, row.is_anchor) = (Some(a), Some(b), Some(c), true);
            update.tagged += 1;
        } else if row.is_anchor {
            if replace {
                row.tags.retain(|t| !t.eq_ignore_ascii_case("anchor"));
                (row.irt_a, row.irt_b, row.irt_c, row.is_anchor) = (None, None, None, false);
                update.untagged += 1;
            } else {
                update.kept += 1;
            }
        }
    }
    let batch = question_batch(&rows.into_values().collect::<Vec<_>>())?;
    lake.write_partition(QUESTIONS, &[], &[batch]).await?;
    Ok(update)
}
