//! What the stage reads: attempts per student bucket and the window's questions
//! (`sql/calibrate/bucket_counts.sql`), the first attempts of a bucket range
//! (`sql/calibrate/observations.sql`, streamed) and the bank's anchors
//! (`sql/calibrate/questions.sql`).

use std::collections::HashMap;
use std::ops::Range;

use arrow::array::Array;
use arrow::datatypes::TimestampMicrosecondType;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use lake::LakeError;
use lake::columns::Columns;
use lake::intern::FirstAttempts;
use lake::runs::query;
use lake::shard::STUDENT_BUCKETS;
use models::irt::{ItemParams, ResponseMatrix};

use crate::{CalibrateError, Result, ValidInput};

const BUCKET_COUNTS_SQL: &str = include_str!("../../../sql/calibrate/bucket_counts.sql");
const OBSERVATIONS_SQL: &str = include_str!("../../../sql/calibrate/observations.sql");
const QUESTIONS_SQL: &str = include_str!("../../../sql/calibrate/questions.sql");

fn utf8(s: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(s.to_string()))
}

/// `$1..$4` of the stage queries: window and bank.
fn window_params(cfg: &ValidInput) -> Vec<ScalarValue> {
    let (kind, id) = cfg.bank.sql_params();
    vec![
        utf8(&cfg.window_start().format("%Y-%m-%d").to_string()),
        utf8(&cfg.run_date.format("%Y-%m-%d").to_string()),
        utf8(kind),
        utf8(id),
    ]
}

/// The seed as bound into `student_bucket(student_id, seed)`: its two's-complement bits.
fn seed_param(seed: u64) -> ScalarValue {
    ScalarValue::Int64(Some(seed as i64))
}

/// The window of one bank, counted.
pub(crate) struct Window {
    /// Attempts per student bucket (`STUDENT_BUCKETS` entries).
    pub counts: Vec<u64>,
    /// The questions with attempts in the window, sorted: the calibration's items.
    pub items: Vec<String>,
}

impl Window {
    /// Attempts in the window.
    pub fn attempts(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Counts the window's attempts per student bucket and lists its questions (one scan).
pub(crate) async fn window(ctx: &SessionContext, cfg: &ValidInput) -> Result<Window> {
    let mut params = window_params(cfg);
    params.push(seed_param(cfg.sample_seed));
    let batches = query(ctx, BUCKET_COUNTS_SQL, params).await?;
    let mut counts = vec![0u64; STUDENT_BUCKETS as usize];
    let mut items = Vec::new();
    for b in &batches {
        let c = Columns::of(b);
        let (bucket, question, n) = (
            c.i64s("bucket")?,
            c.strings("question_id")?,
            c.i64s("attempts")?,
        );
        for r in 0..b.num_rows() {
            let n = u64::try_from(n.value(r)).unwrap_or(0);
            if bucket.is_valid(r) {
                let slot = usize::try_from(bucket.value(r))
                    .ok()
                    .and_then(|i| counts.get_mut(i))
                    .ok_or_else(|| {
                        CalibrateError::InvalidInput(format!(
                            "student_bucket returned {} (expected 0..{STUDENT_BUCKETS})",
                            bucket.value(r)
                        ))
                    })?;
                *slot += n;
            } else if question.is_valid(r) {
                items.push(question.value(r).to_string());
            }
        }
    }
    items.sort_unstable();
    items.dedup();
    Ok(Window { counts, items })
}

/// First attempts of the students of a bucket range, as a response matrix over the
/// window's items.
pub(crate) struct Observations {
    /// Student ids, sorted; row `s` of `matrix` is `students[s]`.
    pub students: Vec<String>,
    /// Responses; item `i` is the window's item `i`.
    pub matrix: ResponseMatrix,
    /// The responses of `matrix` answered at or after the drift screen's recent period
    /// start (same rows), when one was asked for.
    pub recent: Option<ResponseMatrix>,
    /// Attempts at questions that are not among the window's items (the lake changed
    /// between the count and this query); not used.
    pub unknown_items: usize,
}

/// Which attempts a calibration reads: its window and bank (`$1..$4` of the stage
/// queries) and the seed of the student buckets its bucket ranges refer to (`$5`).
pub(crate) struct Scan {
    window: Vec<ScalarValue>,
    seed: u64,
}

impl Scan {
    /// The window and bank of `cfg`, buckets of its fit sample's seed.
    pub fn of(cfg: &ValidInput) -> Self {
        Self {
            window: window_params(cfg),
            seed: cfg.sample_seed,
        }
    }

    /// The window `[from, to]` of `bank`, buckets under `seed`.
    pub fn new(from: &str, to: &str, bank: &crate::Bank, seed: u64) -> Self {
        let (kind, id) = bank.sql_params();
        Self {
            window: vec![utf8(from), utf8(to), utf8(kind), utf8(id)],
            seed,
        }
    }
}

/// Streams the attempts of the students in `buckets` of `scan` (`observations.sql`)
/// and keeps the first of each student on each question ([`FirstAttempts`]) in a
/// response matrix; `item_ix` maps a question id to its item index. With
/// `recent_since` (µs, UTC), the first attempts completed at or after it also form
/// [`Observations::recent`]. `expected` is about how many attempts the range holds (the
/// window's count, or an estimate): room reserved once, not a check.
pub(crate) async fn observations(
    ctx: &SessionContext,
    scan: &Scan,
    buckets: Range<usize>,
    expected: u64,
    item_ix: &HashMap<&str, u32>,
    recent_since: Option<i64>,
) -> Result<Observations> {
    let mut params = scan.window.clone();
    params.push(seed_param(scan.seed));
    params.push(ScalarValue::Int64(Some(buckets.start as i64)));
    params.push(ScalarValue::Int64(Some(buckets.end as i64)));
    // Engine errors go through `LakeError`, so the error name follows `is_retryable`.
    let lake_err = |e| CalibrateError::Lake(LakeError::from(e));
    let mut stream = lake::runs::dataframe(ctx, OBSERVATIONS_SQL, params)
        .await?
        .execute_stream()
        .await
        .map_err(lake_err)?;
    let mut first = FirstAttempts::<bool>::with_capacity(usize::try_from(expected).unwrap_or(0));
    let mut unknown_items = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(lake_err)?;
        let c = Columns::of(&batch);
        let (st, q, ok) = (
            c.strings("student_id")?,
            c.strings("question_id")?,
            c.bools("correct")?,
        );
        let at = c.primitives::<TimestampMicrosecondType>("completed_at")?;
        let id = c.strings("attempt_id")?;
        for r in 0..batch.num_rows() {
            let Some(&i) = item_ix.get(q.value(r)) else {
                unknown_items += 1;
                continue;
            };
            first.offer(st.value(r), i, ok.value(r), at.value(r), id.value(r))?;
        }
    }
    let (students, kept) = first.into_sorted();
    let triplets: Vec<Triplet> = kept
        .iter()
        .map(|a| (a.student, a.question, a.payload))
        .collect();
    let completed_at: Vec<i64> = kept.iter().map(|a| a.completed_at).collect();
    drop(kept);
    let matrix = ResponseMatrix::from_triplets(students.len(), item_ix.len(), &triplets)?;
    let recent = match recent_since {
        Some(since) => {
            let recent: Vec<(u32, u32, bool)> = triplets
                .iter()
                .zip(&completed_at)
                .filter(|(_, at)| **at >= since)
                .map(|(t, _)| *t)
                .collect();
            Some(ResponseMatrix::from_triplets(
                students.len(),
                item_ix.len(),
                &recent,
            )?)
        }
        None => None,
    };
    Ok(Observations {
        students,
        matrix,
        recent,
        unknown_items,
    })
}

/// A first attempt: (student index, item index, correct).
type Triplet = (u32, u32, bool);

/// The bank's anchors among `items`: `(is_anchor per item, known parameters of the
/// anchors that have them, by item index)`.
pub(crate) async fn anchors(
    ctx: &SessionContext,
    cfg: &ValidInput,
    item_ix: &HashMap<&str, u32>,
) -> Result<(Vec<bool>, Vec<(usize, ItemParams)>)> {
    let (kind, id) = cfg.bank.sql_params();
    let qs = query(ctx, QUESTIONS_SQL, vec![utf8(kind), utf8(id)]).await?;
    let mut anchors = Vec::new();
    let mut is_anchor = vec![false; item_ix.len()];
    for batch in &qs {
        let cols = Columns::of(batch);
        let (q, anc) = (cols.strings("question_id")?, cols.bools("is_anchor")?);
        let (a, b, c) = (
            cols.f64s("irt_a")?,
            cols.f64s("irt_b")?,
            cols.f64s("irt_c")?,
        );
        for r in 0..batch.num_rows() {
            let Some(&i) = item_ix.get(q.value(r)) else {
                continue;
            };
            if !anc.value(r) {
                continue;
            }
            is_anchor[i as usize] = true;
            if a.is_null(r) || b.is_null(r) {
                continue;
            }
            let p = ItemParams {
                a: a.value(r),
                b: b.value(r),
                c: if c.is_null(r) { 0.0 } else { c.value(r) },
            };
            if p.validate(i as usize).is_ok() {
                anchors.push((i as usize, p));
            } else {
                tracing::warn!(
                    question = q.value(r),
                    "anchor with invalid known parameters ignored"
                );
            }
        }
    }
    anchors.sort_by_key(|(i, _)| *i);
    Ok((is_anchor, anchors))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use lake::shard::student_bucket;

    use super::*;
    use crate::CalibrateInput;

    /// 60 students × 3 questions on 2026-02-01, plus a later, correct second attempt of
    /// every student at q1 (practice: not an observation) and, for every third student,
    /// a second attempt at q2 completed at the same instant as the first but with a
    /// smaller attempt id (the first attempt by the tie-break), with the other answer.
    async fn lake_with_attempts() -> (tempfile::TempDir, lake::Lake) {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake::Lake::open(&format!("file://{}", dir.path().display())).unwrap();
        let (mut id, mut st, mut q, mut ok, mut ts) = (vec![], vec![], vec![], vec![], vec![]);
        let t0 = 1_769_904_000_000_000i64; // 2026-02-01T00:00:00Z
        for s in 0..60 {
            for (k, question) in ["q1", "q2", "q3", "q1"].iter().enumerate() {
                id.push(format!("a{s}-{k}"));
                st.push(format!("s{s:03}"));
                q.push(question.to_string());
                ok.push(k == 3 || (s + k).is_multiple_of(2));
                ts.push(t0 + (s as i64 * 10 + k as i64) * 1_000_000);
            }
            if s.is_multiple_of(3) {
                // at the same instant as q2's attempt, with a smaller attempt id: the first
                id.push(format!("a{s}-0x"));
                st.push(format!("s{s:03}"));
                q.push("q2".to_string());
                ok.push(!(s + 1).is_multiple_of(2));
                ts.push(t0 + (s as i64 * 10 + 1) * 1_000_000);
            }
        }
        let n = id.len();
        let def = lake::catalog::table(lake::catalog::ATTEMPTS).unwrap();
        let batch = RecordBatch::try_new(
            def.file_schema.clone(),
            vec![
                Arc::new(StringArray::from(id)) as ArrayRef,
                Arc::new(StringArray::from(st)),
                Arc::new(StringArray::from(q)),
                Arc::new(StringArray::from(vec![Some("subj-1"); n])),
                Arc::new(StringArray::from(vec![Some("topic-1"); n])),
                Arc::new(StringArray::from(vec![Some("sess"); n])),
                Arc::new(BooleanArray::from(ok)),
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![Some(1000); n])),
                Arc::new(Int64Array::from(vec![Some(0); n])),
                // shard_bucket: the lake writes it
                Arc::new(Int64Array::from(vec![None; n])),
            ],
        )
        .unwrap();
        lake.write_partition(lake::catalog::ATTEMPTS, &[("dt", "2026-02-01")], &[batch])
            .await
            .unwrap();
        (dir, lake)
    }

    #[tokio::test]
    async fn counts_per_bucket_and_first_attempts_of_a_bucket_range() {
        let (_dir, lake) = lake_with_attempts().await;
        let ctx = lake.session().unwrap();
        let mut input = CalibrateInput::new("2026-02-01".parse().unwrap());
        input.sample_seed = Some(3);
        let cfg = input.validate().unwrap();
        let w = window(&ctx, &cfg).await.unwrap();
        assert_eq!(w.items, ["q1", "q2", "q3"]);
        assert_eq!(w.attempts(), 260);
        for s in 0..60 {
            let b = student_bucket(&format!("s{s:03}"), 3) as usize;
            assert!(w.counts[b] >= 4, "bucket {b} of s{s:03} counted");
        }
        // The students of buckets [0, 2048): their first attempts only.
        let item_ix: HashMap<&str, u32> = w
            .items
            .iter()
            .enumerate()
            .map(|(i, q)| (q.as_str(), i as u32))
            .collect();
        let obs = observations(&ctx, &Scan::of(&cfg), 0..2048, 0, &item_ix, None)
            .await
            .unwrap();
        let expected: Vec<String> = (0..60)
            .map(|s| format!("s{s:03}"))
            .filter(|id| student_bucket(id, 3) < 2048)
            .collect();
        assert!(!expected.is_empty() && expected.len() < 60);
        assert_eq!(obs.students, expected);
        assert_eq!(obs.matrix.n_responses(), 3 * expected.len());
        assert_eq!(obs.unknown_items, 0);
        for (row, id) in expected.iter().enumerate() {
            let s: usize = id[1..].parse().unwrap();
            let (items, ys) = obs.matrix.row(row);
            assert_eq!(items, [0, 1, 2]);
            // q1's first attempt, not the later correct practice attempt
            assert_eq!(ys[0], s.is_multiple_of(2), "{id}");
            // q2: the tie at the same instant goes to the smaller attempt id
            assert_eq!(
                ys[1],
                (s + 1).is_multiple_of(2) != s.is_multiple_of(3),
                "{id}"
            );
        }
        let sum: u64 = w.counts[..2048].iter().sum();
        let attempts =
            |id: &String| 4 + u64::from(id[1..].parse::<usize>().unwrap().is_multiple_of(3));
        assert_eq!(sum, expected.iter().map(attempts).sum::<u64>());
        // the other half of the buckets holds the other students
        let rest = observations(&ctx, &Scan::of(&cfg), 2048..4096, 0, &item_ix, None)
            .await
            .unwrap();
        assert_eq!(rest.students.len() + expected.len(), 60);
    }
}
