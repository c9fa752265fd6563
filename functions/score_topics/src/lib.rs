//! Stage **score_topics** → `student_topic_theta`.
//!
//! For each student and topic: EAP θ and posterior SD from the student's first
//! responses to that topic's questions in the window `[run_date − lookback_days + 1,
//! run_date]`, with the item parameters of the latest `all`-bank calibration on or
//! before the run date held fixed (its linked scale), and that calibration's latent
//! distribution N(B, A²) as the prior. Only calibrated (not excluded) items count; a
//! student-topic with fewer than [`MIN_TOPIC_RESPONSES`] such responses gets no row.
//!
//! # Shards and memory
//!
//! An invocation scores the students of its shard (`shard`/`shards` of the input,
//! [`lake::shard::Shard`]): the query restricts the scan to the shard's student buckets
//! before sorting the responses by student, question and time; the stage reads the
//! sorted rows as a stream ([`lake::stream`]) and scores one student at a time (first
//! attempt per question = first row of each question), and writes the shard's own
//! object of the run date's partition. A run in N shards writes the same rows as one
//! unsharded run.
//!
//! Memory per invocation: DataFusion's query pool (`IRTLAKE_QUERY_MEMORY_MB`, default
//! 1 GiB; the sort spills to disk beyond it) plus the output rows of the shard (about
//! 80 bytes per student-topic), one student's responses and the calibration's items:
//! **≤ 1 GB for a 12.5k-student shard** (and for a 100k-student one), whatever the size
//! of the platform.

use std::sync::Arc;

use arrow::array::{Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use lake::Lake;
use lake::catalog::STUDENT_TOPIC_THETA;
use lake::columns::TableBatch;
use lake::phases::Phases;
use lake::runs::{StageError, StageInput, day_param, day_str, latest_calibration};
use lake::stream::{for_each_student, query_stream};
use models::irt::{NamedEapTable, ScoringConfig};
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
    /// The shard of the students this invocation scored (`"shard K of N"`).
    pub shard: String,
    /// Calibration used.
    pub calibration_run: Option<String>,
    /// Rows written.
    pub rows: usize,
    /// Students with at least one topic θ.
    pub students: usize,
    /// Student-topics left out for too few responses.
    pub skipped_too_few: usize,
    /// Wall time of the stage's phases (ms): read (the streamed responses, student by
    /// student), scoring, write.
    pub phases_ms: Phases,
}

/// The output columns, built row by row.
#[derive(Default)]
struct Columns {
    students: StringBuilder,
    topics: StringBuilder,
    thetas: Float64Builder,
    ses: Float64Builder,
    ns: Int64Builder,
    rows: usize,
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<ScoreTopicsOutput, StageError> {
    let mut phases = Phases::start();
    let rc = input.context("score_topics")?;
    let ctx = lake.session()?;
    let mut out = ScoreTopicsOutput {
        status: "scored".into(),
        run_id: rc.run_id.clone(),
        run_date: day_str(rc.run_date),
        shard: rc.shard.label(),
        calibration_run: None,
        rows: 0,
        students: 0,
        skipped_too_few: 0,
        phases_ms: Phases::start(),
    };
    let Some(cal) = latest_calibration(&ctx, "all", rc.run_date).await? else {
        out.status = "no_calibration".into();
        tracing::warn!("no calibration of the all bank yet: nothing written");
        return Ok(out);
    };
    out.calibration_run = Some(cal.run_id.clone());
    let [lo, hi] = rc.shard.sql_params();
    let stream = query_stream(
        &ctx,
        RESPONSES_SQL,
        vec![
            day_param(rc.window_start(rc.run_date)),
            day_param(rc.run_date),
            lo,
            hi,
        ],
    )
    .await?;
    let config = ScoringConfig {
        prior_mean: cal.latent_mean,
        prior_sd: cal.latent_sd,
        ..ScoringConfig::default()
    };
    let scorer = kpis::calibration_eap(&cal, &config)?;
    let mut buf = Vec::new();
    let mut cols = Columns::default();
    let read = for_each_student(stream, 0, |student, parts| {
        let responses = first_responses(parts)?;
        phases.mark("read");
        let rows_before = cols.rows;
        score_student(
            student,
            &responses,
            &scorer,
            &mut buf,
            &mut cols,
            &mut out.skipped_too_few,
        );
        if cols.rows > rows_before {
            out.students += 1;
        }
        phases.mark("scoring");
        Ok(())
    })
    .await?;
    if read == 0 {
        out.status = "no_observations".into();
        return Ok(out);
    }
    let n = cols.rows;
    out.rows = n;
    let batch = TableBatch::new(STUDENT_TOPIC_THETA, n)?
        .text("run_id", &rc.run_id)?
        .set("student_id", Arc::new(cols.students.finish()))?
        .set("topic_id", Arc::new(cols.topics.finish()))?
        .set("theta", Arc::new(cols.thetas.finish()))?
        .set("se", Arc::new(cols.ses.finish()))?
        .set("n_responses", Arc::new(cols.ns.finish()))?
        .finish()?;
    lake.write_partition_shard(
        STUDENT_TOPIC_THETA,
        &[("run_date", &day_str(rc.run_date))],
        rc.shard,
        &[batch],
    )
    .await?;
    phases.mark("write");
    tracing::info!(rows = n, shard = %out.shard, %phases, "wrote student_topic_theta");
    out.phases_ms = phases;
    Ok(out)
}

/// One student's first response to a question: (topic, question, correct).
type Response<'a> = (&'a str, &'a str, bool);

/// The first response per question of one student's rows (sorted by question, then
/// time: the first row of each question), sorted by topic and then question.
fn first_responses(parts: &[RecordBatch]) -> Result<Vec<Response<'_>>, StageError> {
    let mut out: Vec<Response<'_>> = Vec::new();
    let mut last_question: Option<&str> = None;
    for b in parts {
        let c = lake::columns::Columns::of(b);
        let (q, tp, ok) = (
            c.strings("question_id")?,
            c.strings("topic_id")?,
            c.bools("correct")?,
        );
        for r in 0..b.num_rows() {
            let question = q.value(r);
            if last_question == Some(question) {
                continue;
            }
            last_question = Some(question);
            out.push((tp.value(r), question, ok.value(r)));
        }
    }
    // Stable: questions stay in id order within a topic.
    out.sort_by_key(|r| r.0);
    Ok(out)
}

/// Scores each topic of one student's first responses (sorted by topic) into `cols`;
/// topics with 1 ..= [`MIN_TOPIC_RESPONSES`] − 1 calibrated responses are counted in
/// `skipped`.
fn score_student(
    student: &str,
    responses: &[Response<'_>],
    scorer: &NamedEapTable<'_>,
    buf: &mut Vec<f64>,
    cols: &mut Columns,
    skipped: &mut usize,
) {
    for topic in responses.chunk_by(|a, b| a.0 == b.0) {
        let calibrated = topic
            .iter()
            .filter_map(|&(_, question, correct)| scorer.index(question).map(|i| (i, correct)));
        let n = calibrated.clone().count();
        if n >= MIN_TOPIC_RESPONSES {
            if let Some(s) = scorer.score(calibrated, buf) {
                cols.students.append_value(student);
                cols.topics.append_value(topic[0].0);
                cols.thetas.append_value(s.theta);
                cols.ses.append_value(s.se);
                cols.ns.append_value(s.n_responses as i64);
                cols.rows += 1;
            }
        } else if n > 0 {
            *skipped += 1;
        }
    }
}
