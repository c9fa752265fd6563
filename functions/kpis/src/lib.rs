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
//! buckets. The weeks are read [`WEEKS_PER_SCAN`] at a time, each scan with the week
//! before its first: the scan's attempts are kept in 48 bytes each (ids interned, attempt
//! ids in one arena) and sorted by integer keys, one student's in time order. Each
//! week's rows go to the shard's own object of the week's partition, so the shards of a
//! run never rewrite each other, and a run in N shards writes the same rows as one
//! unsharded run. The reference time per item (the median time over the look-back
//! window) is the platform's, the same on every shard, computed from counts per distinct
//! time.
//!
//! Memory per invocation: the shard's attempts of one scan (4 weeks: about 60 bytes an
//! attempt with its id: ≈ 18 MB for a 12.5k-student shard of the 100k-student benchmark
//! platform, 75k attempts a week; ≈ 150 MB for all its students), plus the weeks' output
//! rows (about 150 bytes a student-week), the calibration's items and one count per
//! distinct attempt time: **≤ 1 GB for a 100k-student shard**, whatever the size of the
//! platform.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
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

use lake::stream::{self, for_each_batch, opt_str, opt_value};

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

/// Weeks one attempts scan covers at most (plus the week before its first): a scan's
/// attempts are held in compact form ([`ShardAttempts`]), so this bounds the memory of a
/// long backfill (a scan holds 4 weeks of the shard's attempts, 48 bytes each plus
/// their attempt ids); a daily run's week is one scan, a 9-week backfill three (12 weeks
/// of attempts read instead of the 18 of one scan per week and its previous week).
const WEEKS_PER_SCAN: usize = 3;

/// Set in an interned session key ([`Attempt::session`]) for a day's session
/// (`day:<dt>`, or an attempt without a session id); clear for a session id.
const DAY_SESSION: u32 = 1 << 31;

/// [`Attempt::topic`] of an attempt without a topic.
const NO_TOPIC: u32 = u32::MAX;

/// [`Attempt::time_ms`] of an attempt without a time (a time of `i64::MIN` ms would be
/// read as none: no attempt takes minus 292 million years).
const NO_TIME: i64 = i64::MIN;

/// One attempt as the KPIs see it, in 48 bytes: student, question, topic and session
/// interned ([`ShardAttempts`]), the day (days since 1970-01-01), and what orders a
/// student's attempts in time: `completed_at` (µs), then the attempt id (in
/// the scan's [`ScanKeys`]).
struct Attempt {
    student: u32,
    day: i32,
    at: i64,
    id: (u32, u32),
    question: u32,
    topic: u32,
    /// Two attempts share a session exactly when the strings `session_id` / `day:<dt>`
    /// are equal: a `day:` key is the rest of the string in one interner (with
    /// [`DAY_SESSION`] set), any other session id is interned in another.
    session: u32,
    time_ms: i64,
    correct: bool,
}

const _: () = assert!(std::mem::size_of::<Attempt>() == 48);

/// A week's first answer per question, over questions interned `0..n`: each question's
/// slot is stamped with the week's number instead of its id being hashed into a set per
/// week.
struct FirstAnswers {
    seen: Vec<u32>,
    week: u32,
}

impl FirstAnswers {
    fn new(questions: usize) -> Self {
        Self {
            seen: vec![0; questions],
            week: 0,
        }
    }

    /// Starts the next week: every question is unanswered again.
    fn next_week(&mut self) {
        self.week += 1;
    }

    /// Whether `question` is answered for the first time this week (it is not any more).
    fn first(&mut self, question: u32) -> bool {
        let slot = &mut self.seen[question as usize];
        let first = *slot != self.week;
        *slot = self.week;
        first
    }
}

/// What both scans of this crate keep beside their rows: the student and question ids
/// interned once per scan (each question with its EAP table index) and the attempt ids
/// in one arena.
#[derive(Default)]
struct ScanKeys {
    students: Interner,
    questions: Interner,
    /// EAP table index of each interned question (`None`: not calibrated).
    item: Vec<Option<u32>>,
    ids: AttemptIds,
}

impl ScanKeys {
    /// The index of question `qid`, its EAP table index in `eap` kept on first sight.
    fn question(&mut self, qid: &str, eap: Option<&NamedEapTable<'_>>) -> u32 {
        let question = self.questions.intern(qid);
        if question as usize == self.item.len() {
            self.item.push(eap.and_then(|e| e.index(qid)));
        }
        question
    }

    /// Renumbers `rows`' students by sorted id, then sorts the rows by `key` (which
    /// starts with the student) and the attempt id: a student's rows in time order.
    /// Returns the student ids in sorted order and each question's EAP table index.
    fn sort<T, K: Ord>(
        self,
        rows: &mut [T],
        student: impl Fn(&mut T) -> &mut u32,
        key: impl Fn(&T) -> K,
        id: impl Fn(&T) -> (u32, u32),
    ) -> (Vec<String>, Vec<Option<u32>>) {
        let (student_ids, rank) = self.students.sorted();
        for r in rows.iter_mut() {
            let s = student(r);
            *s = rank[*s as usize];
        }
        let ids = &self.ids;
        rows.sort_unstable_by(|x, y| {
            key(x)
                .cmp(&key(y))
                .then_with(|| ids.get(id(x)).cmp(ids.get(id(y))))
        });
        (student_ids, self.item)
    }
}

/// The attempts of one scan of `sql/kpis/attempts.sql` (a shard's days `[from, to]`),
/// unsorted as read, with their ids interned once per scan; [`ShardAttempts::week_rows`]
/// sorts them by integer keys (student rank, `completed_at`) where the query sorted the
/// rows by their strings: the same order, without DataFusion's sort of string rows.
struct ShardAttempts<'e, 't> {
    eap: Option<&'e NamedEapTable<'t>>,
    keys: ScanKeys,
    topics: Interner,
    sessions: Interner,
    day_sessions: Interner,
    /// The `day_sessions` index of each day's own session (attempts without one).
    day_keys: HashMap<i32, u32>,
    attempts: Vec<Attempt>,
}

impl<'e, 't> ShardAttempts<'e, 't> {
    fn new(eap: Option<&'e NamedEapTable<'t>>) -> Self {
        Self {
            eap,
            keys: ScanKeys::default(),
            topics: Interner::default(),
            sessions: Interner::default(),
            day_sessions: Interner::default(),
            day_keys: HashMap::new(),
            attempts: Vec::new(),
        }
    }

    /// Keeps the attempts of one batch of `sql/kpis/attempts.sql` (rows without a day
    /// are left out).
    fn push(&mut self, b: &RecordBatch) -> Result<(), StageError> {
        let c = Columns::of(b);
        let (st, dt, q, tp, ss) = (
            c.strings("student_id")?,
            c.days("dt")?,
            c.strings("question_id")?,
            c.strings("topic_id")?,
            c.strings("session_id")?,
        );
        let (ok, tm, at, id) = (
            c.bools("correct")?,
            c.i64s("time_spent_ms")?,
            c.primitives::<TimestampMicrosecondType>("completed_at")?,
            c.strings("attempt_id")?,
        );
        for r in 0..b.num_rows() {
            let Some(date) = opt_day(dt, r) else { continue };
            let day = dt.value(r);
            let question = self.keys.question(q.value(r), self.eap);
            let session = match opt_str(ss, r) {
                Some(s) => match s.strip_prefix("day:") {
                    Some(rest) => self.day_sessions.intern(rest) | DAY_SESSION,
                    None => self.sessions.intern(s),
                },
                None => {
                    let day_sessions = &mut self.day_sessions;
                    *self
                        .day_keys
                        .entry(day)
                        .or_insert_with(|| day_sessions.intern(&day_str(date)))
                        | DAY_SESSION
                }
            };
            if self.sessions.len().max(self.day_sessions.len()) > DAY_SESSION as usize {
                return Err(StageError::InvalidInput(
                    "more than 2^31 sessions in one kpis scan: use more shards".into(),
                ));
            }
            self.attempts.push(Attempt {
                student: self.keys.students.intern(st.value(r)),
                day,
                at: at.value(r),
                id: self.keys.ids.push(id.value(r))?,
                question,
                topic: opt_str(tp, r).map_or(NO_TOPIC, |t| self.topics.intern(t)),
                session,
                time_ms: opt_value(tm, r).unwrap_or(NO_TIME),
                correct: ok.value(r),
            });
        }
        Ok(())
    }

    /// The KPI rows of each week `(Monday, last day)` of `weeks` (the scan covers them
    /// and the week before the first): per week, the students with attempts in it, in
    /// id order, and their rows. A student's attempts are taken in time order
    /// (`completed_at`, then attempt id); a week's are those of its days, the previous
    /// week's those of the 7 days before its Monday.
    fn week_rows(self, weeks: &[(NaiveDate, NaiveDate)], t_ref: Option<f64>) -> Vec<WeekRows> {
        let Self {
            eap,
            keys,
            mut attempts,
            ..
        } = self;
        let (student_ids, item) = keys.sort(
            &mut attempts,
            |a| &mut a.student,
            |a| (a.student, a.at),
            |a| a.id,
        );
        let days = |d: NaiveDate| Date32Type::from_naive_date(d);
        let bounds: Vec<(i32, i32, i32)> = weeks
            .iter()
            .map(|&(w, end)| (days(w - Days::new(7)), days(w), days(end)))
            .collect();
        let mut out: Vec<(StringBuilder, Vec<Row>)> = weeks
            .iter()
            .map(|_| (StringBuilder::new(), Vec::new()))
            .collect();
        let mut scorer = WeekScorer::new(eap, &item, t_ref);
        let (mut this, mut prev) = (Vec::new(), Vec::new());
        for student in attempts.chunk_by(|x, y| x.student == y.student) {
            for (&(prev_from, from, to), (ids_out, rows)) in bounds.iter().zip(&mut out) {
                this.clear();
                this.extend(student.iter().filter(|a| (from..=to).contains(&a.day)));
                if this.is_empty() {
                    continue;
                }
                prev.clear();
                prev.extend(
                    student
                        .iter()
                        .filter(|a| (prev_from..from).contains(&a.day)),
                );
                ids_out.append_value(&student_ids[student[0].student as usize]);
                rows.push(scorer.row(&this, &prev));
            }
        }
        out.into_iter()
            .map(|(mut students, rows)| WeekRows {
                students: students.finish(),
                rows,
            })
            .collect()
    }
}

/// What computes a student-week's row, with its scratch space.
struct WeekScorer<'a, 'e, 't> {
    eap: Option<&'e NamedEapTable<'t>>,
    item: &'a [Option<u32>],
    t_ref: Option<f64>,
    first: FirstAnswers,
    calibrated: Vec<(u32, bool)>,
    sessions: Vec<u32>,
    topics: Vec<(u32, bool)>,
    buf: Vec<f64>,
}

impl<'a, 'e, 't> WeekScorer<'a, 'e, 't> {
    fn new(
        eap: Option<&'e NamedEapTable<'t>>,
        item: &'a [Option<u32>],
        t_ref: Option<f64>,
    ) -> Self {
        Self {
            eap,
            item,
            t_ref,
            first: FirstAnswers::new(item.len()),
            calibrated: Vec::new(),
            sessions: Vec::new(),
            topics: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// θ of a week's attempts (in time order): the EAP of the first answer per
    /// question, calibrated questions only ([`week_measure`]).
    fn theta(&mut self, attempts: &[&Attempt]) -> Option<Measure> {
        let eap = self.eap?;
        self.first.next_week();
        self.calibrated.clear();
        for a in attempts {
            if !self.first.first(a.question) {
                continue;
            }
            if let Some(i) = self.item[a.question as usize] {
                self.calibrated.push((i, a.correct));
            }
        }
        week_measure(eap, &self.calibrated, &mut self.buf)
    }

    /// The KPIs of a student-week from its attempts and the previous week's (each in
    /// time order).
    fn row(&mut self, this: &[&Attempt], prev: &[&Attempt]) -> Row {
        let correct = this.iter().filter(|a| a.correct).count();
        let acc = kpi::accuracy_measure(correct, this.len());
        let acc_prev = kpi::accuracy_measure(prev.iter().filter(|a| a.correct).count(), prev.len());
        let th = self.theta(this);
        let th_prev = self.theta(prev);
        let improvement = kpi::improvement_index(
            th.as_ref(),
            th_prev.as_ref(),
            acc.as_ref(),
            acc_prev.as_ref(),
        );
        self.sessions.clear();
        self.sessions.extend(this.iter().map(|a| a.session));
        self.sessions.sort_unstable();
        self.sessions.dedup();
        let times = || this.iter().map(|a| a.time_ms).filter(|&t| t != NO_TIME);
        let timed = times().count();
        let t_mean = if timed == 0 {
            f64::NAN
        } else {
            times().map(|t| t as f64).sum::<f64>() / timed as f64
        };
        let accuracy = acc.map(|m| m.value).unwrap_or(0.0);
        self.topics.clear();
        self.topics
            .extend(this.iter().map(|a| (a.topic, a.correct)));
        Row {
            i_t: improvement.map(|x| x.0),
            a_t: kpi::activity(self.sessions.len()),
            e_t: kpi::efficiency(accuracy, self.t_ref.unwrap_or(f64::NAN), t_mean),
            r_t: kpi::recovery_rate(&self.topics),
            method: improvement.map(|x| x.1.as_str()),
            n: this.len(),
        }
    }
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

/// EAP scoring with calibration `cal`'s latent distribution as the prior:
/// N(`latent_mean`, `latent_sd`²) on the reported scale (linking B and A; 0 and 1 when
/// unlinked), the default quadrature; without a calibration the default N(0, 1)
/// ([`ScoringConfig::default`]). The one
/// prior every stage that scores against a calibration uses (kpis, score_topics).
pub fn calibration_scoring(cal: Option<&CalibrationRef>) -> ScoringConfig {
    let (prior_mean, prior_sd) = cal.map_or((0.0, 1.0), |c| (c.latent_mean, c.latent_sd));
    ScoringConfig {
        prior_mean,
        prior_sd,
        ..ScoringConfig::default()
    }
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
    let cfg = calibration_scoring(cal.as_ref());
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
    let weeks: Vec<(NaiveDate, NaiveDate)> =
        std::iter::successors(Some(week_start(rc.from)), |w| Some(*w + Days::new(7)))
            .take_while(|w| *w <= last_day)
            .map(|w| (w, (w + Days::new(6)).min(rc.run_date)))
            .collect();
    for scan in weeks.chunks(WEEKS_PER_SCAN) {
        let week_rows =
            compute_weeks(&ctx, scan, rc.shard, eap.as_ref(), t_ref, &mut phases).await?;
        for (&(week, _), rows) in scan.iter().zip(&week_rows) {
            for r in &rows.rows {
                out.methods[match r.method {
                    Some("theta_delta") => 0,
                    Some(_) => 1,
                    None => 2,
                }] += 1;
            }
            if !rows.rows.is_empty() {
                write_week(lake, rc.shard, week, &rc.run_id, rc.run_ts, rows).await?;
                phases.mark("write");
                out.rows += rows.rows.len();
                out.weeks.push(day_str(week));
            }
        }
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

/// Per week `(Monday, last day)` of `weeks` (consecutive, at most [`WEEKS_PER_SCAN`]),
/// the KPIs of each student of `shard` active in it, students in id order: one scan of
/// the shard's attempts of those weeks and the week before them. Marks `read` and
/// `kpis` in `phases`.
async fn compute_weeks(
    ctx: &SessionContext,
    weeks: &[(NaiveDate, NaiveDate)],
    shard: Shard,
    eap: Option<&NamedEapTable<'_>>,
    t_ref: Option<f64>,
    phases: &mut Phases,
) -> Result<Vec<WeekRows>, StageError> {
    let (Some(first), Some(last)) = (weeks.first(), weeks.last()) else {
        return Ok(Vec::new());
    };
    let params = attempts_params(first.0 - Days::new(7), last.1, shard);
    let stream = stream::query_stream(ctx, ATTEMPTS_SQL, params).await?;
    let mut attempts = ShardAttempts::new(eap);
    for_each_batch(stream, |b| attempts.push(b)).await?;
    phases.mark("read");
    let rows = attempts.week_rows(weeks, t_ref);
    phases.mark("kpis");
    Ok(rows)
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
    let cfg = calibration_scoring(cal);
    let eap = cal.map(|cal| calibration_eap(cal, &cfg)).transpose()?;
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
/// and the attempt id (in the scan's [`ScanKeys`]).
struct Answer {
    student: u32,
    week: NaiveDate,
    at: i64,
    id: (u32, u32),
    question: u32,
    correct: bool,
}

/// The answers of a scan of [`weekly_records`], and what turns them into weekly
/// records: ids interned once per scan ([`ScanKeys`]), a week's first answer per question
/// found by [`FirstAnswers`].
struct WeekAnswers<'e, 't> {
    eap: Option<&'e NamedEapTable<'t>>,
    keys: ScanKeys,
    answers: Vec<Answer>,
}

impl<'e, 't> WeekAnswers<'e, 't> {
    fn new(eap: Option<&'e NamedEapTable<'t>>) -> Self {
        Self {
            eap,
            keys: ScanKeys::default(),
            answers: Vec::new(),
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
            let question = self.keys.question(q.value(r), self.eap);
            self.answers.push(Answer {
                student: self.keys.students.intern(st.value(r)),
                week: week_start(d),
                at: at.value(r),
                id: self.keys.ids.push(id.value(r))?,
                question,
                correct: ok.value(r),
            });
        }
        Ok(())
    }

    /// The weekly records: answers sorted by student id, week, `completed_at` and
    /// attempt id (one student's weeks in order, each week's answers in time order);
    /// per student-week the accuracy of the first answer per question, and its θ
    /// ([`week_measure`]: the first answers on calibrated questions, at least
    /// [`MIN_WEEK_RESPONSES`]).
    fn records(self) -> Vec<WeeklyRecord> {
        let Self {
            eap,
            keys,
            mut answers,
        } = self;
        let (student_ids, item) = keys.sort(
            &mut answers,
            |a| &mut a.student,
            |a| (a.student, a.week, a.at),
            |a| a.id,
        );
        let mut out = Vec::new();
        let mut first = FirstAnswers::new(item.len());
        let mut calibrated: Vec<(u32, bool)> = Vec::new();
        let mut buf = Vec::new();
        let same_week = |x: &Answer, y: &Answer| x.student == y.student && x.week == y.week;
        for week in answers.chunk_by(same_week) {
            first.next_week();
            calibrated.clear();
            let (mut answered, mut correct) = (0u32, 0u32);
            for a in week {
                if !first.first(a.question) {
                    continue;
                }
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

    /// Two attempts share an interned session key exactly when their strings
    /// `session_id` (or `day:<dt>` without one) are equal.
    #[test]
    fn session_keys_match_the_day_strings() {
        use arrow::array::{BooleanArray, Date32Array, TimestampMicrosecondArray};
        let rows: [(&str, Option<&str>); 7] = [
            ("2026-01-05", None),
            ("2026-01-06", None),
            ("2026-01-05", Some("day:2026-01-05")),
            ("2026-01-05", Some("s1")),
            ("2026-01-06", Some("s1")),
            ("2026-01-06", Some("day:")),
            ("2026-01-06", Some("2026-01-06")),
        ];
        let day = |d: &str| Date32Type::from_naive_date(d.parse().unwrap());
        let n = rows.len();
        let text = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v)) as ArrayRef;
        let batch = RecordBatch::try_from_iter([
            ("student_id", text(vec![Some("s"); n])),
            (
                "dt",
                Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| day(r.0)))),
            ),
            ("question_id", text(vec![Some("q"); n])),
            ("topic_id", text(vec![None; n])),
            ("session_id", text(rows.iter().map(|r| r.1).collect())),
            ("correct", Arc::new(BooleanArray::from(vec![true; n]))),
            ("time_spent_ms", Arc::new(Int64Array::from(vec![None; n]))),
            (
                "completed_at",
                Arc::new(TimestampMicrosecondArray::from_iter_values(0..n as i64)),
            ),
            ("attempt_id", text((0..n).map(|_| Some("a")).collect())),
        ])
        .unwrap();
        let mut scan = ShardAttempts::new(None);
        scan.push(&batch).unwrap();
        let key =
            |r: &(&str, Option<&str>)| r.1.map_or_else(|| format!("day:{}", r.0), str::to_string);
        for (x, a) in rows.iter().zip(&scan.attempts) {
            for (y, b) in rows.iter().zip(&scan.attempts) {
                assert_eq!(a.session == b.session, key(x) == key(y), "{x:?} {y:?}");
            }
        }
    }
}
