//! Stage **kpis** → `weekly_kpi` (formulas in `models::kpi`).
//!
//! For each week (Monday, UTC) touching `from..=to` (default: the run date's week) and
//! each student active in it (≥ 1 attempt up to the run date):
//! - `i_t`: θ delta between this week and the previous one, each θ an EAP of the week's
//!   first responses per question with the latest `all`-bank calibration on or before
//!   the run date held fixed (prior N(B, A²)); a week has a θ with ≥ [`MIN_WEEK_RESPONSES`]
//!   responses to calibrated items. Without θ in either week, the same formula on
//!   accuracy (`accuracy_delta`); without a previous week at all, null (`method` null).
//! - `a_t` from distinct sessions (attempts without a session id count one session per
//!   day); `e_t` from accuracy and mean time against the bank's median time per item
//!   over the look-back window; `r_t` from wrong answers followed by a right one in the
//!   same topic within the week (null without wrong answers).
//!
//! `s`, `p`, `sigma`, `p_model` belong to the churn and growth stages: every writer of
//! `weekly_kpi` updates its shard's object of the partition with
//! [`Lake::update_partition_shard`],
//! carrying the others' columns over, so re-running any of them never wipes the others'
//! work (the three stages must run with the same shard count).
//!
//! # Shards and memory
//!
//! An invocation processes the students of its shard (`shard`/`shards` of the input,
//! [`lake::shard::Shard`]): the attempts query restricts the scan to the shard's student
//! buckets before its sort, and the stage reads the sorted rows as a stream, one student
//! at a time ([`stream`]), borrowing strings from the batches. Each week's rows go to
//! the shard's own object of the week's partition, so the shards of a run never rewrite
//! each other, and a run in N shards writes the same rows as one unsharded run. The
//! reference time per item (the median time over the look-back window) is the
//! platform's, the same on every shard, computed from counts per distinct time.
//!
//! Memory per invocation: DataFusion's query pool (`IRTLAKE_QUERY_MEMORY_MB`, default
//! 1 GiB, the sort spilling to disk beyond it) plus the week's output rows of the shard
//! (about 150 bytes a student), one student's attempts, the calibration's items and one
//! count per distinct attempt time: **≤ 1 GB for a 12.5k-student shard** (and for a
//! 100k-student one), whatever the size of the platform.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::TimestampMicrosecondType;
use arrow::error::ArrowError;
use chrono::{Days, NaiveDate};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, WEEKLY_KPI};
use lake::columns::{Columns, TableBatch, opt_day};
use lake::intern::{AttemptIds, Interner};
use lake::phases::Phases;
use lake::runs::{
    CalibrationRef, StageError, StageInput, day_param, day_str, latest_calibration, week_start,
};
use lake::shard::Shard;
use models::irt::{ItemParams, NamedEapTable, ScoringConfig};
use models::kpi::{self, Measure};
use serde::Serialize;

use lake::stream::{self, for_each_batch, for_each_student, opt_str, opt_value};

const ATTEMPTS_SQL: &str = include_str!("../../../sql/kpis/attempts.sql");
const WEEKLY_ANSWERS_SQL: &str = include_str!("../../../sql/kpis/weekly_answers.sql");
const TIME_REF_SQL: &str = include_str!("../../../sql/kpis/time_ref.sql");

/// Fewest responses to calibrated items for a weekly θ.
pub const MIN_WEEK_RESPONSES: usize = 3;

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct KpisOutput {
    /// Run id.
    pub run_id: String,
    /// The shard of the students this invocation processed (`"shard K of N"`).
    pub shard: String,
    /// Weeks written.
    pub weeks: Vec<String>,
    /// Student-weeks written.
    pub rows: usize,
    /// Rows by method: theta_delta, accuracy_delta, none.
    pub methods: [usize; 3],
    /// Calibration the θs come from (none: accuracy only).
    pub calibration_run: Option<String>,
    /// Reference time per item (ms).
    pub t_ref_ms: Option<f64>,
    /// Wall time of the stage's phases (ms): read (calibration, reference time, then
    /// each week's attempts, student by student), kpis, write.
    pub phases_ms: Phases,
}

/// One attempt as the KPIs see it, borrowed from the query's batches.
struct Attempt<'a> {
    dt: &'a str,
    question: &'a str,
    topic: Option<&'a str>,
    session: Option<&'a str>,
    correct: bool,
    time_ms: Option<i64>,
}

impl<'a> Attempt<'a> {
    /// The session the attempt counts in: its session id, or one session per day
    /// (`day:<dt>`) without one. As a pair (`true` = a `day:` key, the rest of the key)
    /// so that nothing is allocated: two attempts share a key exactly when the strings
    /// `session_id` / `day:<dt>` are equal.
    fn session_key(&self) -> (bool, &'a str) {
        match self.session {
            Some(s) => match s.strip_prefix("day:") {
                Some(day) => (true, day),
                None => (false, s),
            },
            None => (true, self.dt),
        }
    }
}

/// The attempts of one student, in query order (`sql/kpis/attempts.sql` columns).
fn read_attempts(parts: &[RecordBatch]) -> Result<Vec<Attempt<'_>>, StageError> {
    let mut out = Vec::new();
    for b in parts {
        let c = Columns::of(b);
        let (dt, q) = (c.strings("dt")?, c.strings("question_id")?);
        let (tp, ss) = (c.strings("topic_id")?, c.strings("session_id")?);
        let (ok, tm) = (c.bools("correct")?, c.i64s("time_spent_ms")?);
        for r in 0..b.num_rows() {
            out.push(Attempt {
                dt: dt.value(r),
                question: q.value(r),
                topic: opt_str(tp, r),
                session: opt_str(ss, r),
                correct: ok.value(r),
                time_ms: opt_value(tm, r),
            });
        }
    }
    Ok(out)
}

/// The KPIs of one student-week.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    i_t: Option<f64>,
    a_t: f64,
    e_t: f64,
    r_t: Option<f64>,
    method: Option<&'static str>,
    n: usize,
}

/// θ of a week's attempts (first attempt per question, calibrated items only).
fn week_theta(attempts: &[Attempt<'_>], eap: Option<&NamedEapTable<'_>>) -> Option<Measure> {
    week_theta_of(attempts.iter().map(|a| (a.question, a.correct)), eap)
}

/// [`week_theta`] of a week's answers as (question, correct), in time order.
fn week_theta_of<'a>(
    answers: impl Iterator<Item = (&'a str, bool)>,
    eap: Option<&NamedEapTable<'_>>,
) -> Option<Measure> {
    let eap = eap?;
    let mut seen = HashSet::new();
    let calibrated: Vec<(u32, bool)> = answers
        .filter(|(q, _)| seen.insert(*q))
        .filter_map(|(q, ok)| eap.index(q).map(|i| (i, ok)))
        .collect();
    week_measure(eap, &calibrated, &mut Vec::new())
}

/// The week's θ from its first answers on calibrated questions, `(EAP table index,
/// correct)`: `None` below [`MIN_WEEK_RESPONSES`]. `buf` is scratch space.
fn week_measure(
    eap: &NamedEapTable<'_>,
    calibrated: &[(u32, bool)],
    buf: &mut Vec<f64>,
) -> Option<Measure> {
    if calibrated.len() < MIN_WEEK_RESPONSES {
        return None;
    }
    eap.score(calibrated.iter().copied(), buf).map(|s| Measure {
        value: s.theta,
        se: s.se,
        n: s.n_responses,
    })
}

/// The items of calibration `cal` tabulated for EAP under `cfg` ([`NamedEapTable`]: one
/// addition per response and node instead of a logistic); an invalid parameter is an
/// error naming the calibration and question. Used by kpis and score_topics.
pub fn calibration_eap<'a>(
    cal: &'a CalibrationRef,
    cfg: &'a ScoringConfig,
) -> Result<NamedEapTable<'a>, StageError> {
    NamedEapTable::new(
        cal.items
            .iter()
            .map(|(q, &(a, b, c))| (q.as_str(), ItemParams { a, b, c })),
        cfg,
    )
    .map_err(|e| StageError::model(format!("calibration {}: {e}", cal.run_id)))
}

fn week_row(
    this: &[Attempt<'_>],
    prev: &[Attempt<'_>],
    eap: Option<&NamedEapTable<'_>>,
    t_ref: Option<f64>,
) -> Row {
    let correct = this.iter().filter(|a| a.correct).count();
    let acc = kpi::accuracy_measure(correct, this.len());
    let acc_prev = kpi::accuracy_measure(prev.iter().filter(|a| a.correct).count(), prev.len());
    let th = week_theta(this, eap);
    let th_prev = week_theta(prev, eap);
    let improvement = kpi::improvement_index(
        th.as_ref(),
        th_prev.as_ref(),
        acc.as_ref(),
        acc_prev.as_ref(),
    );
    let sessions: HashSet<(bool, &str)> = this.iter().map(Attempt::session_key).collect();
    let times: Vec<f64> = this
        .iter()
        .filter_map(|a| a.time_ms)
        .map(|t| t as f64)
        .collect();
    let t_mean = if times.is_empty() {
        f64::NAN
    } else {
        times.iter().sum::<f64>() / times.len() as f64
    };
    let accuracy = acc.map(|m| m.value).unwrap_or(0.0);
    let seq: Vec<(Option<&str>, bool)> = this.iter().map(|a| (a.topic, a.correct)).collect();
    Row {
        i_t: improvement.map(|x| x.0),
        a_t: kpi::activity(sessions.len()),
        e_t: kpi::efficiency(accuracy, t_ref.unwrap_or(f64::NAN), t_mean),
        r_t: kpi::recovery_rate(&seq),
        method: improvement.map(|x| x.1.as_str()),
        n: this.len(),
    }
}

/// The query parameters of `sql/kpis/attempts.sql`: the days `[from, to]` of `shard`.
fn attempts_params(from: NaiveDate, to: NaiveDate, shard: Shard) -> Vec<ScalarValue> {
    let [lo, hi] = shard.sql_params();
    vec![day_param(from), day_param(to), lo, hi]
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<KpisOutput, StageError> {
    let mut phases = Phases::start();
    let mut input = input.clone();
    let run_date = input
        .run_date
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    input.run_date = Some(run_date);
    input.from = Some(input.from.unwrap_or(run_date));
    let rc = input.context("kpis")?;
    let ctx = lake.session()?;
    let cal = latest_calibration(&ctx, "all", rc.run_date).await?;
    let cfg = ScoringConfig {
        prior_mean: cal.as_ref().map_or(0.0, |c| c.latent_mean),
        prior_sd: cal.as_ref().map_or(1.0, |c| c.latent_sd),
        ..ScoringConfig::default()
    };
    let eap = cal.as_ref().map(|c| calibration_eap(c, &cfg)).transpose()?;
    let t_ref = reference_time(&ctx, rc.window_start(rc.run_date), rc.run_date).await?;
    phases.mark("read");
    let mut out = KpisOutput {
        run_id: rc.run_id.clone(),
        shard: rc.shard.label(),
        weeks: Vec::new(),
        rows: 0,
        methods: [0; 3],
        calibration_run: cal.as_ref().map(|c| c.run_id.clone()),
        t_ref_ms: t_ref,
        phases_ms: Phases::start(),
    };
    let last_day = rc.to.min(rc.run_date);
    let mut week = week_start(rc.from);
    while week <= last_day {
        let week_end = (week + Days::new(6)).min(rc.run_date);
        let rows = compute_week(
            &ctx,
            week,
            week_end,
            rc.shard,
            eap.as_ref(),
            t_ref,
            &mut phases,
        )
        .await?;
        for r in &rows.rows {
            out.methods[match r.method {
                Some("theta_delta") => 0,
                Some(_) => 1,
                None => 2,
            }] += 1;
        }
        if !rows.rows.is_empty() {
            write_week(lake, rc.shard, week, &rc.run_id, rc.run_ts, &rows).await?;
            phases.mark("write");
            out.rows += rows.rows.len();
            out.weeks.push(day_str(week));
        }
        week = week + Days::new(7);
    }
    tracing::info!(rows = out.rows, shard = %out.shard, %phases, "wrote weekly_kpi");
    out.phases_ms = phases;
    Ok(out)
}

/// The bank's reference time per item (ms): the median `time_spent_ms` of every attempt
/// of the days `[from, to]` (`sql/kpis/time_ref.sql`), `None` without any.
async fn reference_time(
    ctx: &SessionContext,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<f64>, StageError> {
    let stream =
        stream::query_stream(ctx, TIME_REF_SQL, vec![day_param(from), day_param(to)]).await?;
    let mut counts: Vec<(i64, u64)> = Vec::new();
    for_each_batch(stream, |b| {
        let c = Columns::of(b);
        let (t, n) = (c.i64s("time_spent_ms")?, c.i64s("attempts")?);
        for r in 0..b.num_rows() {
            counts.push((t.value(r), u64::try_from(n.value(r)).unwrap_or(0)));
        }
        Ok(())
    })
    .await?;
    counts.sort_unstable();
    Ok(median_of_counts(&counts))
}

/// The median of the integers given as `(value, count)` sorted by value, as SQL `median`
/// of a `BIGINT` column computes it (DataFusion, which takes integers as `DOUBLE`): the
/// middle value, or for an even count the mean of the two middle values
/// (`(low + high) / 2` in `f64`). `None` without values.
fn median_of_counts(counts: &[(i64, u64)]) -> Option<f64> {
    let n: u64 = counts.iter().map(|c| c.1).sum();
    if n == 0 {
        return None;
    }
    // The value at 0-based position `i` of the sorted values.
    let at = |i: u64| {
        let mut seen = 0u64;
        counts.iter().find_map(|&(v, c)| {
            seen += c;
            (seen > i).then_some(v)
        })
    };
    let high = at(n / 2)? as f64;
    if n % 2 == 1 {
        return Some(high);
    }
    let low = at(n / 2 - 1)? as f64;
    Some((low + high) / 2.0)
}

/// One week's KPI rows of a shard: student ids (sorted) and their rows.
struct WeekRows {
    students: StringArray,
    rows: Vec<Row>,
}

/// Per student of `shard` active in the week starting `week` (up to `week_end`): the
/// KPIs, students in id order. Marks each student's `read` and `kpis` in `phases`.
async fn compute_week(
    ctx: &SessionContext,
    week: NaiveDate,
    week_end: NaiveDate,
    shard: Shard,
    eap: Option<&NamedEapTable<'_>>,
    t_ref: Option<f64>,
    phases: &mut Phases,
) -> Result<WeekRows, StageError> {
    let week_str = day_str(week);
    let prev = week - Days::new(7);
    let stream =
        stream::query_stream(ctx, ATTEMPTS_SQL, attempts_params(prev, week_end, shard)).await?;
    let mut students = StringBuilder::new();
    let mut rows = Vec::new();
    for_each_student(stream, 0, |student, parts| {
        let (this, prev): (Vec<Attempt<'_>>, Vec<Attempt<'_>>) = read_attempts(parts)?
            .into_iter()
            .partition(|a| a.dt >= week_str.as_str());
        phases.mark("read");
        if !this.is_empty() {
            students.append_value(student);
            rows.push(week_row(&this, &prev, eap, t_ref));
        }
        phases.mark("kpis");
        Ok(())
    })
    .await?;
    Ok(WeekRows {
        students: students.finish(),
        rows,
    })
}

/// Columns of `weekly_kpi` that other stages own (churn: `s`; growth: `p`, `sigma`,
/// `p_model`): carried over when kpis rewrites a week.
const CARRIED: [&str; 4] = ["s", "p", "sigma", "p_model"];

/// Writes one week's KPI columns to the shard's object of the week's partition,
/// keeping the [`CARRIED`] columns that other stages wrote there.
async fn write_week(
    lake: &Lake,
    shard: Shard,
    week: NaiveDate,
    run_id: &str,
    run_ts: i64,
    week_rows: &WeekRows,
) -> Result<(), StageError> {
    let week_s = day_str(week);
    let (ids, rows) = (&week_rows.students, &week_rows.rows);
    lake.update_partition_shard(WEEKLY_KPI, &[("week_start", &week_s)], shard, |existing| {
        let [s, p, sigma, p_model] = carried_columns(&existing, ids)?;
        let batch = TableBatch::new(WEEKLY_KPI, rows.len())?
            .text("run_id", run_id)?
            .set("student_id", Arc::new(ids.clone()))?
            .set(
                "i_t",
                Arc::new(rows.iter().map(|r| r.i_t).collect::<Float64Array>()),
            )?
            .set(
                "a_t",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.a_t))),
            )?
            .set(
                "e_t",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.e_t))),
            )?
            .set(
                "r_t",
                Arc::new(rows.iter().map(|r| r.r_t).collect::<Float64Array>()),
            )?
            .set("s", s)?
            .set("p", p)?
            .set("sigma", sigma)?
            .set(
                "method",
                Arc::new(rows.iter().map(|r| r.method).collect::<StringArray>()),
            )?
            .set(
                "n_responses",
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.n as i64),
                )),
            )?
            .timestamp("updated_at", run_ts)?
            .set("p_model", p_model)?
            .finish()?;
        Ok(vec![batch])
    })
    .await?;
    Ok(())
}

/// The [`CARRIED`] columns for the rows `ids` from the rows a shard's object holds
/// (batches in the catalog's `weekly_kpi` schema, as the lake hands them to an update;
/// columns looked up by name): a student's values where the object has a row for it,
/// else nulls.
fn carried_columns(existing: &[RecordBatch], ids: &StringArray) -> lake::Result<[ArrayRef; 4]> {
    let bad = |what: String| ArrowError::SchemaError(format!("weekly_kpi object: {what}"));
    // (batch, row) of each student in the existing object.
    let mut at: HashMap<&str, (usize, usize)> = HashMap::new();
    for (bi, b) in existing.iter().enumerate() {
        let st = b
            .column_by_name("student_id")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| bad("no Utf8 column 'student_id'".into()))?;
        for r in 0..b.num_rows() {
            at.insert(st.value(r), (bi, r));
        }
    }
    let pick: Vec<Option<(usize, usize)>> = ids
        .iter()
        .map(|k| k.and_then(|k| at.get(k).copied()))
        .collect();
    let schema = &catalog::table(WEEKLY_KPI)
        .map_err(|e| bad(e.to_string()))?
        .file_schema;
    let mut out = Vec::with_capacity(CARRIED.len());
    for name in CARRIED {
        let mut sources: Vec<&dyn arrow::array::Array> = existing
            .iter()
            .map(|b| {
                b.column_by_name(name)
                    .map(|c| c.as_ref())
                    .ok_or_else(|| bad(format!("no column '{name}'")))
            })
            .collect::<Result<_, _>>()?;
        // One null of the column's type, picked for students the object has no row of.
        let nulls = arrow::array::new_null_array(schema.field_with_name(name)?.data_type(), 1);
        let null_at = (sources.len(), 0);
        sources.push(nulls.as_ref());
        let indices: Vec<(usize, usize)> = pick.iter().map(|p| p.unwrap_or(null_at)).collect();
        out.push(arrow::compute::interleave(&sources, &indices)?);
    }
    out.try_into()
        .map_err(|_| bad("carried columns".into()).into())
}

/// A student's θ in one week (EAP of the week's first responses per question, fixed
/// parameters of the latest `all`-bank calibration; see the crate docs).
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyTheta {
    /// Student id.
    pub student_id: String,
    /// Monday of the week.
    pub week_start: NaiveDate,
    /// θ (logits, anchor scale), its posterior SD, responses behind it.
    pub theta: Measure,
}

/// One student-week with attempts: the week's θ when it has one, and the accuracy of
/// the week's first responses per question (every question, calibrated or not).
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyRecord {
    /// Student id.
    pub student_id: String,
    /// Monday of the week.
    pub week_start: NaiveDate,
    /// θ as in [`WeeklyTheta`], when the week has ≥ [`MIN_WEEK_RESPONSES`] calibrated
    /// first responses and there is a calibration.
    pub theta: Option<Measure>,
    /// First responses per question in the week that were right.
    pub correct: u32,
    /// Questions answered in the week (first responses), ≥ 1.
    pub answered: u32,
}

/// Every student-week with attempts over the `weeks` weeks ending with the run date's
/// week, sorted by student and week, of the students of `shard` only (the shard
/// predicate is in the query's scan): θ where the week has one (see [`weekly_thetas`]),
/// and the accuracy counts of every week, with or without a calibration. `cal`: the
/// calibration the θ are scored with (the latest of bank `all` on or before the run
/// date; a caller reading several shards reads it once). Used by the growth stage (θ for
/// the Bayesian model, accuracy for the GLMM).
///
/// The scan is not sorted by the query: [`WeekAnswers`] keeps each answer in 32 bytes
/// (student and question interned, the attempt id in one arena) and sorts them by
/// integer keys instead of DataFusion sorting the rows by `student_id, completed_at,
/// attempt_id` (0.62 s of sort and merge for the 2.55 M answers of growth's fit sample
/// at 100k students). The order, and so every record, is the same. Measured at 100k
/// students, 8 shards: growth's read of its fit sample and shard 2.31 → 1.49 s (peak
/// RSS 367 → 246 MB); reports' weekly θ of a shard 870 → 710 ms.
///
/// Memory: the shard's answers (about 45 bytes each with the arena: ≈ 115 MB for
/// 2.55 M, as much as the sort it replaces held) plus the result (about 100 bytes per
/// student-week of the shard).
pub async fn weekly_records(
    ctx: &SessionContext,
    cal: Option<&CalibrationRef>,
    run_date: NaiveDate,
    weeks: u32,
    shard: Shard,
) -> Result<Vec<WeeklyRecord>, StageError> {
    let cfg = cal.map(|cal| ScoringConfig {
        prior_mean: cal.latent_mean,
        prior_sd: cal.latent_sd,
        ..ScoringConfig::default()
    });
    let eap = match (cal, &cfg) {
        (Some(cal), Some(cfg)) => Some(calibration_eap(cal, cfg)?),
        _ => None,
    };
    let last_week = week_start(run_date);
    let first_week = last_week - Days::new(7 * u64::from(weeks.max(1) - 1));
    let stream = stream::query_stream(
        ctx,
        WEEKLY_ANSWERS_SQL,
        attempts_params(first_week, run_date, shard),
    )
    .await?;
    let mut answers = WeekAnswers::new(eap.as_ref());
    for_each_batch(stream, |b| answers.push(b)).await?;
    Ok(answers.records())
}

/// One answer read by [`weekly_records`]: the student and question (interned), the
/// Monday of its day, and what orders a student's answers in time: `completed_at` (µs)
/// and the attempt id (in [`WeekAnswers::ids`]).
struct Answer {
    student: u32,
    week: NaiveDate,
    at: i64,
    id: (u32, u32),
    question: u32,
    correct: bool,
}

/// The answers of a scan of [`weekly_records`], and what turns them into weekly
/// records: question ids interned once per scan (each with its EAP table index), and a
/// week's first answer per question found by stamping the question's slot with the
/// week's number instead of hashing its id into a set per week.
struct WeekAnswers<'e, 't> {
    eap: Option<&'e NamedEapTable<'t>>,
    students: Interner,
    questions: Interner,
    /// EAP table index of each interned question (`None`: not calibrated).
    item: Vec<Option<u32>>,
    answers: Vec<Answer>,
    ids: AttemptIds,
}

impl<'e, 't> WeekAnswers<'e, 't> {
    fn new(eap: Option<&'e NamedEapTable<'t>>) -> Self {
        Self {
            eap,
            students: Interner::default(),
            questions: Interner::default(),
            item: Vec::new(),
            answers: Vec::new(),
            ids: AttemptIds::default(),
        }
    }

    /// Keeps the answers of one batch of `weekly_answers.sql` (rows without a day are
    /// left out).
    fn push(&mut self, b: &RecordBatch) -> Result<(), StageError> {
        let c = Columns::of(b);
        let (st, dt, q, ok) = (
            c.strings("student_id")?,
            c.days("dt")?,
            c.strings("question_id")?,
            c.bools("correct")?,
        );
        let (at, id) = (
            c.primitives::<TimestampMicrosecondType>("completed_at")?,
            c.strings("attempt_id")?,
        );
        for r in 0..b.num_rows() {
            let Some(d) = opt_day(dt, r) else { continue };
            let qid = q.value(r);
            let question = self.questions.intern(qid);
            if question as usize == self.item.len() {
                self.item.push(self.eap.and_then(|e| e.index(qid)));
            }
            self.answers.push(Answer {
                student: self.students.intern(st.value(r)),
                week: week_start(d),
                at: at.value(r),
                id: self.ids.push(id.value(r))?,
                question,
                correct: ok.value(r),
            });
        }
        Ok(())
    }

    /// The weekly records: answers sorted by student id, week, `completed_at` and
    /// attempt id (one student's weeks in order, each week's answers in time order);
    /// per student-week the accuracy of the first answer per question, and its θ
    /// ([`week_theta_of`]: the first answers on calibrated questions, at least
    /// [`MIN_WEEK_RESPONSES`]).
    fn records(self) -> Vec<WeeklyRecord> {
        let Self {
            eap,
            students,
            item,
            mut answers,
            ids,
            ..
        } = self;
        let (student_ids, rank) = students.sorted();
        for a in &mut answers {
            a.student = rank[a.student as usize];
        }
        answers.sort_unstable_by(|x, y| {
            (x.student, x.week, x.at)
                .cmp(&(y.student, y.week, y.at))
                .then_with(|| ids.get(x.id).cmp(ids.get(y.id)))
        });
        let mut out = Vec::new();
        let mut seen = vec![0u32; item.len()];
        let mut calibrated: Vec<(u32, bool)> = Vec::new();
        let mut buf = Vec::new();
        let same_week = |x: &Answer, y: &Answer| x.student == y.student && x.week == y.week;
        for (week_no, week) in (1u32..).zip(answers.chunk_by(same_week)) {
            calibrated.clear();
            let (mut answered, mut correct) = (0u32, 0u32);
            for a in week {
                let slot = &mut seen[a.question as usize];
                if *slot == week_no {
                    continue;
                }
                *slot = week_no;
                answered += 1;
                correct += u32::from(a.correct);
                if let Some(i) = item[a.question as usize] {
                    calibrated.push((i, a.correct));
                }
            }
            let theta = eap.and_then(|eap| week_measure(eap, &calibrated, &mut buf));
            out.push(WeeklyRecord {
                student_id: student_ids[week[0].student as usize].clone(),
                week_start: week[0].week,
                theta,
                correct,
                answered,
            });
        }
        out
    }
}

/// Every student's weekly θ over the `weeks` weeks ending with the run date's week
/// (only student-weeks with a θ: ≥ [`MIN_WEEK_RESPONSES`] calibrated responses), sorted
/// by student and week, of the students of `shard` only (the shard predicate is in the
/// query's scan). Empty without a calibration. Used by the reports stage; the θ of
/// [`weekly_records`].
pub async fn weekly_thetas(
    ctx: &SessionContext,
    run_date: NaiveDate,
    weeks: u32,
    shard: Shard,
) -> Result<Vec<WeeklyTheta>, StageError> {
    let cal = latest_calibration(ctx, "all", run_date).await?;
    Ok(weekly_records(ctx, cal.as_ref(), run_date, weeks, shard)
        .await?
        .into_iter()
        .filter_map(|r| {
            r.theta.map(|theta| WeeklyTheta {
                student_id: r.student_id,
                week_start: r.week_start,
                theta,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Truth: DataFusion's own `median` over the expanded values.
    #[tokio::test]
    async fn the_median_of_counts_is_sql_median_of_the_values() {
        let cases: Vec<Vec<(i64, u64)>> = vec![
            vec![(5, 0)],
            vec![(7, 1)],
            vec![(1, 1), (2, 1)],
            vec![(1, 1), (4, 1)],
            vec![(-3, 1), (0, 1)],
            vec![(10, 3), (20, 2), (31, 4)],
            vec![(10, 2), (21, 2)],
            vec![(100, 5), (200, 0), (300, 5)],
            vec![(1, 1), (2, 3), (1000, 1), (1001, 1)],
        ];
        let ctx = SessionContext::new();
        for counts in cases {
            let values: Vec<String> = counts
                .iter()
                .flat_map(|&(x, c)| {
                    std::iter::repeat_n(format!("(CAST({x} AS BIGINT))"), c as usize)
                })
                .collect();
            let sql = if values.is_empty() {
                "SELECT CAST(median(x) AS DOUBLE) FROM (SELECT CAST(1 AS BIGINT) AS x) WHERE x < 0"
                    .to_string()
            } else {
                format!(
                    "SELECT CAST(median(column1) AS DOUBLE) FROM (VALUES {})",
                    values.join(", ")
                )
            };
            let b = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            let m = lake::stream::primitives::<arrow::datatypes::Float64Type>(&b[0], 0).unwrap();
            assert_eq!(median_of_counts(&counts), opt_value(m, 0), "{counts:?}");
        }
        assert_eq!(median_of_counts(&[]), None);
        assert_eq!(median_of_counts(&[(1, 1), (4, 1)]), Some(2.5));
        assert_eq!(median_of_counts(&[(-3, 1), (0, 1)]), Some(-1.5));
    }

    #[test]
    fn session_keys_match_the_day_strings() {
        let a = |dt, session| Attempt {
            dt,
            question: "q",
            topic: None,
            session,
            correct: true,
            time_ms: None,
        };
        let key = |x: &Attempt<'_>| {
            x.session
                .map_or_else(|| format!("day:{}", x.dt), str::to_string)
        };
        let all = [
            a("2026-01-05", None),
            a("2026-01-06", None),
            a("2026-01-05", Some("day:2026-01-05")),
            a("2026-01-05", Some("s1")),
            a("2026-01-06", Some("s1")),
            a("2026-01-06", Some("day:")),
        ];
        for x in &all {
            for y in &all {
                assert_eq!(x.session_key() == y.session_key(), key(x) == key(y));
            }
        }
    }
}
