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
//! [`lake::shard::Shard`]): the query restricts the scan to the shard's student buckets;
//! the stage keeps the first attempt of each (student, question) as the rows stream in
//! (ids interned, one hash lookup per row), then orders the kept attempts by student,
//! topic and question (integer ranks of the sorted ids) and scores each student-topic,
//! and writes the shard's own object of the run date's partition. A run in N shards
//! writes the same rows as one unsharded run. Keeping first attempts as they come
//! replaced a DataFusion sort of every attempt by `student_id, question_id,
//! completed_at, attempt_id`.
//!
//! Memory per invocation: DataFusion's query pool (`IRTLAKE_QUERY_MEMORY_MB`, default
//! 1 GiB) plus the shard's first attempts (about 60 bytes each with their ids and the
//! pair map: ≈ 35 MB for the ~600,000 of a 12.5k-student shard at 100k, as much as the
//! sort buffer it replaces) and the output rows (about 80 bytes per student-topic):
//! **≤ 1 GB for a 100k-student shard**.

use std::sync::Arc;

use arrow::array::{Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::TimestampMicrosecondType;
use lake::Lake;
use lake::catalog::STUDENT_TOPIC_THETA;
use lake::columns::TableBatch;
use lake::intern::{FirstAttempts, Interner};
use lake::phases::Phases;
use lake::runs::{StageError, StageInput, day_param, day_str, latest_calibration};
use lake::stream::{for_each_batch, query_stream};
use models::irt::NamedEapTable;
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
    let config = kpis::calibration_scoring(Some(&cal));
    let scorer = kpis::calibration_eap(&cal, &config)?;
    let mut first = FirstResponses::default();
    let mut read = 0;
    for_each_batch(stream, |b| {
        read += b.num_rows();
        first.offer_all(b)
    })
    .await?;
    phases.mark("read");
    let mut cols = Columns::default();
    first.score(&scorer, &mut cols, &mut out);
    phases.mark("scoring");
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

/// The first attempt of each (student, question) of the scan ([`FirstAttempts`]; its
/// topic is that attempt's), with the question and topic ids interned.
#[derive(Default)]
struct FirstResponses {
    questions: Interner,
    topics: Interner,
    /// Payload: (topic index, correct).
    first: FirstAttempts<(u32, bool)>,
}

impl FirstResponses {
    /// Offers every row of one batch of `responses.sql`.
    fn offer_all(&mut self, b: &RecordBatch) -> Result<(), StageError> {
        let c = lake::columns::Columns::of(b);
        let (st, q, tp, ok) = (
            c.strings("student_id")?,
            c.strings("question_id")?,
            c.strings("topic_id")?,
            c.bools("correct")?,
        );
        let (at, id) = (
            c.primitives::<TimestampMicrosecondType>("completed_at")?,
            c.strings("attempt_id")?,
        );
        for r in 0..b.num_rows() {
            let question = self.questions.intern(q.value(r));
            let topic = self.topics.intern(tp.value(r));
            self.first.offer(
                st.value(r),
                question,
                (topic, ok.value(r)),
                at.value(r),
                id.value(r),
            )?;
        }
        Ok(())
    }

    /// Scores each student-topic into `cols`, students and topics in id order, each
    /// topic's responses in question id order; student-topics with 1 ..=
    /// [`MIN_TOPIC_RESPONSES`] − 1 calibrated responses are counted as skipped.
    fn score(self, scorer: &NamedEapTable<'_>, cols: &mut Columns, out: &mut ScoreTopicsOutput) {
        let (student_ids, mut kept) = self.first.into_sorted();
        let (question_ids, question_rank) = self.questions.sorted();
        let (topic_ids, topic_rank) = self.topics.sorted();
        let item: Vec<Option<u32>> = question_ids.iter().map(|q| scorer.index(q)).collect();
        for k in &mut kept {
            k.question = question_rank[k.question as usize];
            k.payload.0 = topic_rank[k.payload.0 as usize];
        }
        kept.sort_unstable_by_key(|k| (k.student, k.payload.0, k.question));
        let mut buf = Vec::new();
        for student in kept.chunk_by(|a, b| a.student == b.student) {
            let rows_before = cols.rows;
            for topic in student.chunk_by(|a, b| a.payload.0 == b.payload.0) {
                let calibrated = topic
                    .iter()
                    .filter_map(|k| item[k.question as usize].map(|i| (i, k.payload.1)));
                let n = calibrated.clone().count();
                if n >= MIN_TOPIC_RESPONSES {
                    if let Some(s) = scorer.score(calibrated, &mut buf) {
                        cols.students
                            .append_value(&student_ids[student[0].student as usize]);
                        cols.topics
                            .append_value(&topic_ids[topic[0].payload.0 as usize]);
                        cols.thetas.append_value(s.theta);
                        cols.ses.append_value(s.se);
                        cols.ns.append_value(s.n_responses as i64);
                        cols.rows += 1;
                    }
                } else if n > 0 {
                    out.skipped_too_few += 1;
                }
            }
            if cols.rows > rows_before {
                out.students += 1;
            }
        }
    }
}
