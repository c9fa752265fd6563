//! Stage **score_topics** → `student_topic_theta`.
//!
//! For each student and topic: EAP θ and posterior SD from the student's first
//! responses to that topic's questions in the window `[run_date − lookback_days + 1,
//! run_date]`, with the item parameters of the latest `all`-bank calibration on or
//! before the run date held fixed (its linked scale), and that calibration's latent
//! distribution N(B, A²) as the prior. Only calibrated (not excluded) items count; a
//! student-topic with fewer than [`MIN_TOPIC_RESPONSES`] such responses gets no row.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, STUDENT_TOPIC_THETA};
use lake::runs::{StageError, StageInput, day_str, latest_calibration};
use models::irt::{ItemParams, ScoringConfig, eap_score};
use serde::Serialize;

const RESPONSES_SQL: &str = include_str!("../../../sql/score_topics/responses.sql");

/// Fewest responses for a topic θ.
pub const MIN_TOPIC_RESPONSES: usize = 3;

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreTopicsOutput {
    /// `scored`, `no_calibration` or `no_observations`.
    pub status: String,
    /// Run id.
    pub run_id: String,
    /// Run date.
    pub run_date: String,
    /// Calibration used.
    pub calibration_run: Option<String>,
    /// Rows written.
    pub rows: usize,
    /// Students with at least one topic θ.
    pub students: usize,
    /// Student-topics left out for too few responses.
    pub skipped_too_few: usize,
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<ScoreTopicsOutput, StageError> {
    let rc = input.context("score_topics")?;
    let ctx = lake.session()?;
    let mut out = ScoreTopicsOutput {
        status: "scored".into(),
        run_id: rc.run_id.clone(),
        run_date: day_str(rc.run_date),
        calibration_run: None,
        rows: 0,
        students: 0,
        skipped_too_few: 0,
    };
    let Some(cal) = latest_calibration(&ctx, "all", rc.run_date).await? else {
        out.status = "no_calibration".into();
        tracing::warn!("no calibration of the all bank yet: nothing written");
        return Ok(out);
    };
    out.calibration_run = Some(cal.run_id.clone());
    let batches = ctx
        .sql(RESPONSES_SQL)
        .await?
        .with_param_values(vec![
            ScalarValue::Utf8(Some(day_str(rc.window_start(rc.run_date)))),
            ScalarValue::Utf8(Some(day_str(rc.run_date))),
        ])?
        .collect()
        .await?;
    let config = ScoringConfig {
        prior_mean: cal.latent_mean,
        prior_sd: cal.latent_sd,
        ..ScoringConfig::default()
    };
    let (mut students, mut topics, mut thetas, mut ses, mut ns) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut items: Vec<ItemParams> = Vec::new();
    let mut outcomes: Vec<bool> = Vec::new();
    let mut current: Option<(String, String)> = None;
    let mut flush =
        |key: &(String, String), items: &mut Vec<ItemParams>, outcomes: &mut Vec<bool>| {
            if items.len() >= MIN_TOPIC_RESPONSES {
                if let Some(s) = eap_score(items, outcomes, &config) {
                    students.push(key.0.clone());
                    topics.push(key.1.clone());
                    thetas.push(s.theta);
                    ses.push(s.se);
                    ns.push(s.n_responses as i64);
                }
            } else if !items.is_empty() {
                out.skipped_too_few += 1;
            }
            items.clear();
            outcomes.clear();
        };
    for b in &batches {
        let (st, tp, q, ok) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
            b.column(3).as_boolean(),
        );
        for r in 0..b.num_rows() {
            let same = current
                .as_ref()
                .is_some_and(|(s, t)| s == st.value(r) && t == tp.value(r));
            if !same {
                if let Some(key) = &current {
                    flush(key, &mut items, &mut outcomes);
                }
                current = Some((st.value(r).to_string(), tp.value(r).to_string()));
            }
            if let Some(&(a, bb, c)) = cal.items.get(q.value(r)) {
                items.push(ItemParams { a, b: bb, c });
                outcomes.push(ok.value(r));
            }
        }
    }
    if let Some(key) = &current {
        flush(key, &mut items, &mut outcomes);
    }
    if batches.iter().all(|b| b.num_rows() == 0) {
        out.status = "no_observations".into();
        return Ok(out);
    }
    let n = students.len();
    out.rows = n;
    out.students = {
        let mut s = students.clone();
        s.dedup();
        s.len()
    };
    let batch = RecordBatch::try_new(
        catalog::table(STUDENT_TOPIC_THETA)?.file_schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![rc.run_id.as_str(); n])) as ArrayRef,
            Arc::new(StringArray::from(students)),
            Arc::new(StringArray::from(topics)),
            Arc::new(Float64Array::from(thetas)),
            Arc::new(Float64Array::from(ses)),
            Arc::new(Int64Array::from(ns)),
        ],
    )?;
    lake.write_partition(
        STUDENT_TOPIC_THETA,
        &[("run_date", &day_str(rc.run_date))],
        &[batch],
    )
    .await?;
    tracing::info!(rows = n, "wrote student_topic_theta");
    Ok(out)
}
