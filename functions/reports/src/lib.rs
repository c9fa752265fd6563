//! Stage **reports** → `reports/…/*.html` artifacts and `report_artifacts`.
//!
//! # What is written
//! For one report week (Monday, UTC) and one shard of students:
//! - one self-contained HTML report per student,
//!   `reports/week_start=W/student_id=<escaped id>/report.html` (see
//!   [`lake::artifacts`]): θ trend with SE band and goal, current θ, SE, percentile and
//!   level; the week's KPIs with explanations and sparklines; topic θ weakest first;
//!   difficulty of the week's questions against θ; segment; the outlook of the student's
//!   subject; the linking/equating facts of the calibration;
//! - by shard 0 only (and not for a single `student`), the cohort (operations) report
//!   `reports/week_start=W/cohort.html`: calibration health, test information, linking
//!   constants over time, KPI distributions, Kaplan–Meier retention, segment sizes,
//!   forecasts with anomalies;
//! - one `report_artifacts` row per artifact written (partition `week_start`): `key`,
//!   `bytes`, `sha256` of the HTML, `url` ([`Lake::artifact_url`]: a presigned `GET` URL
//!   on S3 valid for the stage's URL expiry, default [`DEFAULT_URL_EXPIRY`]; a `file://`
//!   URL on a local lake), `format` = `html`, `student_id` (null for the cohort report).
//!   On S3 the HTML is stored as `text/html; charset=utf-8` ([`Lake::put_html`]), so the
//!   URL opens in a browser.
//!
//! # Summary
//! [`ReportsOutput`] as JSON (what the state machine records in its execution history)
//! holds counts, the week and timings — no URLs, keys of students or signatures; the
//! URLs are in `report_artifacts`.
//!
//! # Shards
//! A run is split into `shards` invocations (a Map over shards): shard K of N is the
//! lake's student shard ([`Shard`]: the students whose `student_bucket(student_id, 0)`
//! lies in the shard's bucket range), the same shard every other stage uses
//! ([`Shard::holding`]); at most [`MAX_SHARDS`] shards. An invocation reads the rows of its
//! own students only (the shard predicate is in every per-student query, see
//! [`data`]) and the cohort as aggregates (counts and distributions, streamed sorted:
//! a student's percentile is their rank in the whole cohort), so every shard count
//! writes the same bytes for every student and the same cohort report. Shards run in
//! parallel; each records its reports in its own object of the week's
//! `report_artifacts` partition ([`Lake::update_partition_shard`]: rows of the keys it
//! wrote are replaced, its other rows kept, other shards' objects never touched). A
//! single `student`'s report updates the object of the partition's current layout that
//! holds the student ([`Lake::partition_shard_count`], [`Shard::holding`]).
//!
//! # Memory
//! An invocation holds its shard's rows (the week's KPIs and attempts, nine weeks of
//! KPIs and weekly θ, topic θ, segment), two batches of 128 rendered reports (one being
//! written while the next renders; about 30 KB a report), and the queries' working
//! memory, bounded by the session's spilling pool
//! (`IRTLAKE_QUERY_MEMORY_MB`, default 1024 MiB). It does not hold the cohort's rows:
//! the cohort streams sort one number per student (θ, on every shard) and six per
//! active student (the KPIs, shard 0 only) inside that pool, and the forecast series'
//! history is a `GROUP BY` in it. Peak resident memory is about 150 MB plus 22 KB per
//! student of the shard active in the week (measured with the debug build and the
//! shard-aware `kpis::weekly_thetas` on a 40,000-student demo, 13,540 active: 449 MB as
//! one shard, 187–196 MB as one of 8, 147–148 MB as one of 32), so **≤ 0.5 GB for a
//! shard of 12,500 active students**; more shards scale it down linearly. The shard's
//! object of the week's `report_artifacts` partition is read and rewritten whole (one
//! row per report of the shard: about 0.2 KB a row on a local lake; on S3 the presigned
//! URL makes it 1–2 KB).
//!
//! # Who gets a report
//! Students of this shard with a `weekly_kpi` row in the report week (at least one
//! attempt in it) — with `all_students`, also every student of the shard with a θ in
//! the calibration, so that inactive students (often the ones at risk) get a report
//! too. With `student`, exactly that student (`shard` is ignored: the invocation reads
//! the shard of [`MAX_SHARDS`] holding them), also when they were not active that week,
//! as long as the lake knows them.
//!
//! # Week and data
//! `week_start` (any day: its Monday is used) or the week of `run_date`; data is shown
//! as of `run_date` when it falls inside that week, else as of the week's Sunday. Every
//! source is the latest run on or before that day (see [`data`]). Each report says
//! what it could not show (no θ yet, no activity this week, no forecast…) instead of
//! failing; an empty week (nobody active) writes only the cohort report.
//!
//! # Language
//! `lang` = `en` (default) or `ko`; all text comes from [`labels`].
//!
//! # Determinism
//! With the same lake and the same `run_ts`, a re-run writes the same bytes (students,
//! topics and series are ordered; cohort sums are taken over sorted values), whatever
//! the number of shards.

pub mod charts;
pub mod data;
pub mod labels;
pub mod render;
pub mod svg;
pub mod view;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray};
use bytes::Bytes;
use chrono::{Days, NaiveDate};
use lake::Lake;
use lake::artifacts::{cohort_report_key, student_report_key};
use lake::catalog::{self, REPORT_ARTIFACTS};
use lake::columns::TableBatch;
use lake::phases::Phases;
use lake::runs::{StageError, day_str, week_start};
use lake::shard::Shard;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::labels::Lang;
use crate::view::RunInfo;

/// The event of the stage (JSON, as sent by the state machine or the CLI).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsInput {
    /// The day the run is for (UTC); the report week is the week containing it unless `week_start` is given.
    #[serde(default, deserialize_with = "lake::bounds::opt_date")]
    pub run_date: Option<NaiveDate>,
    /// Time written on every output row (RFC 3339); default now.
    pub run_ts: Option<chrono::DateTime<chrono::Utc>>,
    /// Monday of the report week.
    #[serde(default, deserialize_with = "lake::bounds::opt_date")]
    pub week_start: Option<NaiveDate>,
    /// This shard's number in `0..shards`: the lake's student shard ([`Shard`], the
    /// students whose `student_bucket(student_id, 0)` lies in its bucket range).
    pub shard: Option<u32>,
    /// Number of shards, 1 to [`MAX_SHARDS`] (default 1).
    pub shards: Option<u32>,
    /// Only this student.
    pub student: Option<String>,
    /// Language of the text: `en` (default) or `ko`.
    pub lang: Option<String>,
    /// Id written on every `report_artifacts` row; default `reports-<as-of day>`.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Also report on students not active in the week: everyone with a θ in the
    /// calibration (default false: only the week's active students).
    #[serde(default)]
    pub all_students: Option<bool>,
}

/// An artifact written by the stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The student (none for the cohort report).
    pub student_id: Option<String>,
    /// Object key relative to the lake root.
    pub key: String,
    /// Where it is: a file path (local lake) or `s3://bucket/key`.
    pub location: String,
    /// URL to open it (presigned on S3).
    pub url: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
}

/// What the stage did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportsOutput {
    /// Run id.
    #[serde(default)]
    pub run_id: String,
    /// Monday of the report week.
    #[serde(default)]
    pub week_start: String,
    /// Day the data is shown as of.
    #[serde(default)]
    pub as_of: String,
    /// Language.
    #[serde(default)]
    pub lang: String,
    /// This shard.
    #[serde(default)]
    pub shard: u32,
    /// Shards.
    #[serde(default)]
    pub shards: u32,
    /// Students active in the week (all shards).
    #[serde(default)]
    pub students_in_week: u64,
    /// Student reports written.
    pub student_reports: u64,
    /// Cohort reports written (1 by shard 0 of a whole-week run, else 0).
    #[serde(default)]
    pub cohort_reports: u64,
    /// The first student report written (by student id), if any. Not in the JSON
    /// summary: the summary goes to the state machine's execution history, which must
    /// hold counts, not (presigned) URLs; the URLs are in `report_artifacts`.
    #[serde(skip)]
    pub first_student_report: Option<Artifact>,
    /// The cohort report, when this run wrote it. Not in the JSON summary (see
    /// `first_student_report`).
    #[serde(skip)]
    pub cohort_report: Option<Artifact>,
    /// Bytes of HTML written.
    #[serde(default)]
    pub bytes: u64,
    /// Rows of the `report_artifacts` partition after the update.
    #[serde(default)]
    pub artifact_rows: u64,
    /// Wall time (ms).
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Of which reading the lake (ms).
    #[serde(default)]
    pub load_ms: u64,
    /// Wall time of the stage's phases (ms): read (the week's data), render (views and
    /// HTML, batch by batch), write (waiting for the HTML objects, which are written
    /// while the next batch renders, and `report_artifacts`). Written to
    /// the JSON summary only: [`Phases`] does not deserialise (read back as empty).
    #[serde(skip_deserializing)]
    pub phases_ms: Phases,
    /// Anything the operator should know.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Default lifetime of presigned report URLs on S3: [`lake::DEFAULT_URL_EXPIRY`] (1 day).
pub const DEFAULT_URL_EXPIRY: std::time::Duration = lake::DEFAULT_URL_EXPIRY;

/// Students rendered (in parallel) and written (made durable together, see
/// [`Lake::put_objects`]) per batch; a batch is written while the next renders, so two
/// batches of HTML (≈ 2 × 128 × 30 KB) are held at once. Measured on the demo with the
/// charts drawn in Rust ([`svg`]): batches of 256 had a peak RSS 8 MB above the former
/// template-drawn rendering, batches of 128 one 14 MB below it; wall time within the noise.
const BATCH: usize = 128;

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Most shards a reports run may be split into: [`lake::shard::MAX_SHARDS`].
pub const MAX_SHARDS: u32 = lake::shard::MAX_SHARDS;

/// Dates, times and `shards` within their ranges (see `lake::bounds`); errors name the field.
fn check_bounds(input: &ReportsInput) -> Result<(), StageError> {
    let bad = StageError::InvalidInput;
    for (field, d) in [
        ("run_date", input.run_date),
        ("week_start", input.week_start),
    ] {
        if let Some(d) = d {
            lake::bounds::check_date(field, d).map_err(bad)?;
        }
    }
    if let Some(t) = input.run_ts {
        lake::bounds::check_event_time("run_ts", t).map_err(bad)?;
    }
    if let Some(n) = input.shards {
        lake::bounds::check_range("shards", n, 1..=MAX_SHARDS).map_err(bad)?;
    }
    if input.run_id.as_deref() == Some("") {
        return Err(bad("run_id may not be empty".into()));
    }
    Ok(())
}

/// The report week (Monday) and the as-of day of an input.
pub fn resolve_week(
    input: &ReportsInput,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), StageError> {
    let week = week_start(input.week_start.or(input.run_date).unwrap_or(today));
    let sunday = week + Days::new(6);
    let as_of = match input.run_date {
        Some(d) if d < week => {
            return Err(StageError::InvalidInput(format!(
                "run_date {d} is before the report week starting {week}"
            )));
        }
        Some(d) => d.min(sunday),
        None => sunday,
    };
    Ok((week, as_of))
}

fn render_err(e: render::RenderError) -> StageError {
    StageError::Internal(format!("report template: {e}"))
}

/// A checked event: what to write, for whom, when.
struct Plan {
    lang: Lang,
    /// This invocation's shard.
    shard: Shard,
    /// The students whose rows are read: the shard, or for one `student` the shard of
    /// [`MAX_SHARDS`] holding them.
    scope: Shard,
    /// Whether this invocation writes the cohort report (shard 0, not one student).
    cohort_report: bool,
    run_ts: chrono::DateTime<chrono::Utc>,
    week: NaiveDate,
    as_of: NaiveDate,
    run_id: String,
    url_expiry: Duration,
}

impl Plan {
    /// Checks `input` and `url_expiry`; nothing is read or written before.
    fn of(input: &ReportsInput, url_expiry: Duration) -> Result<Plan, StageError> {
        let lang = match input.lang.as_deref() {
            None => Lang::En,
            Some(s) => Lang::parse(s).ok_or_else(|| {
                StageError::InvalidInput(format!("lang must be en or ko, got '{s}'"))
            })?,
        };
        check_bounds(input)?;
        let shard = Shard::new(input.shard.unwrap_or(0), input.shards.unwrap_or(1))
            .map_err(StageError::InvalidInput)?;
        if url_expiry < Duration::from_secs(1) || url_expiry > lake::MAX_URL_EXPIRY {
            return Err(StageError::InvalidInput(format!(
                "report URL expiry must be between 1 s and 7 days, got {} s",
                url_expiry.as_secs_f64()
            )));
        }
        let scope = match input.student.as_deref() {
            Some("") => return Err(StageError::InvalidInput("student may not be empty".into())),
            Some(s) => Shard::holding(s, MAX_SHARDS),
            None => shard,
        };
        let run_ts = input.run_ts.unwrap_or_else(chrono::Utc::now);
        let (week, as_of) = resolve_week(input, run_ts.date_naive())?;
        let run_id = input
            .run_id
            .clone()
            .unwrap_or_else(|| format!("reports-{}", day_str(as_of)));
        Ok(Plan {
            lang,
            shard,
            scope,
            cohort_report: shard.index == 0 && input.student.is_none(),
            run_ts,
            week,
            as_of,
            run_id,
            url_expiry,
        })
    }
}

/// Runs the stage; presigned URLs (S3 lakes) live for `url_expiry`.
pub async fn run(
    lake: &Lake,
    input: &ReportsInput,
    url_expiry: std::time::Duration,
) -> Result<ReportsOutput, StageError> {
    let started = Instant::now();
    let mut phases = Phases::start();
    let plan = Plan::of(input, url_expiry)?;
    let week_s = day_str(plan.week);
    // On the heap: the reads' joined futures are large in unoptimised builds, and a
    // caller's `block_on` keeps its future on the thread's stack.
    let d = Box::pin(data::load(
        lake,
        plan.week,
        plan.as_of,
        plan.scope,
        plan.cohort_report,
    ))
    .await?;
    let load_ms = started.elapsed().as_millis() as u64;
    phases.mark("read");
    let students = select_students(input, &d)?;
    tracing::info!(week = %week_s, as_of = %plan.as_of, shard = %plan.shard.label(),
        students = students.len(), "rendering reports");

    let labels = plan.lang.labels();
    let run = RunInfo {
        run_id: plan.run_id.clone(),
        generated_at: plan.run_ts.format("%Y-%m-%d %H:%M UTC").to_string(),
    };
    let mut out = ReportsOutput {
        run_id: plan.run_id.clone(),
        week_start: week_s.clone(),
        as_of: day_str(plan.as_of),
        lang: plan.lang.tag().to_string(),
        shard: plan.shard.index,
        shards: plan.shard.count,
        students_in_week: d.cohort.students_active as u64,
        load_ms,
        ..Default::default()
    };
    if d.calibration.is_none() {
        out.notes.push(format!(
            "no calibration of bank all on or before {}: reports have no θ",
            plan.as_of
        ));
    }

    let mut artifacts =
        write_student_reports(lake, &plan, &d, &run, &students, &mut phases).await?;
    out.student_reports = artifacts.len() as u64;
    out.first_student_report = artifacts.first().cloned();
    if plan.cohort_report {
        let v = view::cohort_view(labels, plan.lang.tag(), &d, &run);
        let html = render::cohort_html(plan.lang, &v).map_err(render_err)?;
        phases.mark("render");
        let key = cohort_report_key(&week_s)?;
        let a = write_artifact(lake, key, None, html, plan.url_expiry).await?;
        phases.mark("write");
        out.cohort_report = Some(a.clone());
        out.cohort_reports = 1;
        artifacts.push(a);
    }
    out.bytes = artifacts.iter().map(|a| a.bytes).sum();
    if !artifacts.is_empty() {
        let ts = plan.run_ts.timestamp_micros();
        let target = match input.student.as_deref() {
            // One student: the object of the partition's current layout that holds them.
            Some(id) => {
                let values = [("week_start", week_s.as_str())];
                let count = lake
                    .partition_shard_count(REPORT_ARTIFACTS, &values)
                    .await?;
                Shard::holding(id, count.unwrap_or(1))
            }
            None => plan.shard,
        };
        let rows = record_artifacts(lake, &week_s, target, &plan.run_id, ts, &artifacts).await?;
        out.artifact_rows = rows as u64;
        phases.mark("write");
    }
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        reports = out.student_reports,
        bytes = out.bytes,
        elapsed_ms = out.elapsed_ms,
        %phases,
        "reports written"
    );
    out.phases_ms = phases;
    Ok(out)
}

/// Who gets a report: `student`, if the lake knows them; else the shard's students
/// with KPIs in the week (with `all_students`, also those with a θ), by id. `d` holds
/// only the shard's students.
fn select_students(input: &ReportsInput, d: &data::WeekData) -> Result<Vec<String>, StageError> {
    if let Some(s) = &input.student {
        let known = d.week_kpis.contains_key(s)
            || d.abilities.contains_key(s)
            || d.weekly_theta.contains_key(s)
            || d.topic_theta.contains_key(s);
        if !known {
            return Err(StageError::InvalidInput(format!(
                "student '{s}' has no KPIs, θ or topic θ in the lake as of {}",
                d.as_of
            )));
        }
        return Ok(vec![s.clone()]);
    }
    let mut all: BTreeSet<&String> = d.week_kpis.keys().collect();
    if input.all_students.unwrap_or(false) {
        all.extend(d.abilities.keys());
    }
    Ok(all.into_iter().cloned().collect())
}

/// Renders the reports of `students` in batches (in parallel on the CPUs) and writes
/// each batch at once, while the next batch renders; returns the artifacts in `students`
/// order. Marks each batch's `render` and, in `write`, the time spent waiting for a
/// batch's objects once the next batch is rendered (a write that kept pace with the
/// rendering costs nothing there).
///
/// On a local lake a batch's write is mostly file-system calls and waiting for the disk
/// ([`Lake::put_objects`]: one `syncfs` before and one after its renames), on S3 it is
/// waiting for PUTs: either way the CPUs render meanwhile. At most one batch is being
/// written at a time, and every write is awaited before this returns, an error
/// included, so no write outlives the stage.
async fn write_student_reports(
    lake: &Lake,
    plan: &Plan,
    d: &data::WeekData,
    run: &RunInfo,
    students: &[String],
    phases: &mut Phases,
) -> Result<Vec<Artifact>, StageError> {
    let week_s = day_str(plan.week);
    let mut writes = BatchWrite::default();
    let rendered: Result<Vec<Artifact>, StageError> = async {
        let mut artifacts: Vec<Artifact> = Vec::with_capacity(students.len() + 1);
        for batch in students.chunks(BATCH) {
            let pages = render_students(plan.lang, d, run, batch)?;
            let mut objects = Vec::with_capacity(pages.len());
            for (id, html) in pages {
                let key = student_report_key(&week_s, &id)?;
                let bytes = Bytes::from(html.into_bytes());
                artifacts
                    .push(describe_artifact(lake, &key, Some(id), &bytes, plan.url_expiry).await?);
                objects.push((key, bytes));
            }
            phases.mark("render");
            if writes.wait().await? {
                phases.mark("write");
            }
            writes.start(lake, objects);
        }
        Ok(artifacts)
    }
    .await;
    let written = writes.wait().await;
    let artifacts = rendered?;
    written?;
    phases.mark("write");
    Ok(artifacts)
}

/// The one batch of reports being written, if any (see [`write_student_reports`]).
#[derive(Default)]
struct BatchWrite(Option<tokio::task::JoinHandle<lake::Result<()>>>);

impl BatchWrite {
    /// Starts writing `objects` (after [`BatchWrite::wait`]).
    fn start(&mut self, lake: &Lake, objects: Vec<(String, Bytes)>) {
        let lake = lake.clone();
        self.0 = Some(tokio::spawn(
            async move { lake.put_html_many(objects).await },
        ));
    }

    /// Waits for the write in flight; whether there was one.
    async fn wait(&mut self) -> Result<bool, StageError> {
        let Some(w) = self.0.take() else {
            return Ok(false);
        };
        w.await.map_err(|e| {
            StageError::Internal(format!("writing a batch of reports failed: {e}"))
        })??;
        Ok(true)
    }
}

/// The HTML of each of `batch`'s reports, rendered on scoped threads (one chunk each).
fn render_students(
    lang: Lang,
    d: &data::WeekData,
    run: &RunInfo,
    batch: &[String],
) -> Result<Vec<(String, String)>, StageError> {
    let labels = lang.labels();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = batch.len().div_ceil(threads).max(1);
    let rendered: Vec<Result<Vec<(String, String)>, StageError>> = std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|id| {
                            let v = view::student_view(labels, lang.tag(), d, run, id);
                            render::student_html(lang, &v)
                                .map(|html| (id.clone(), html))
                                .map_err(render_err)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StageError::Internal("report rendering panicked".into()))
                })
            })
            .collect()
    });
    let mut pages = Vec::with_capacity(batch.len());
    for r in rendered {
        pages.extend(r?);
    }
    Ok(pages)
}

/// Stores one HTML artifact at `key` and describes it.
async fn write_artifact(
    lake: &Lake,
    key: String,
    student_id: Option<String>,
    html: String,
    url_expiry: Duration,
) -> Result<Artifact, StageError> {
    let bytes = Bytes::from(html.into_bytes());
    let artifact = describe_artifact(lake, &key, student_id, &bytes, url_expiry).await?;
    lake.put_html(&key, bytes).await?;
    Ok(artifact)
}

/// The `report_artifacts` row of the HTML `bytes` stored (or to be stored) at `key`:
/// its location, reader URL, size and SHA-256.
async fn describe_artifact(
    lake: &Lake,
    key: &str,
    student_id: Option<String>,
    bytes: &Bytes,
    url_expiry: Duration,
) -> Result<Artifact, StageError> {
    Ok(Artifact {
        student_id,
        location: lake.object_location(key)?,
        url: lake.artifact_url(key, url_expiry).await?,
        key: key.to_string(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    })
}

/// Replaces the rows of `artifacts`' keys in `shard`'s object of the week's
/// `report_artifacts` partition, keeping its other rows; returns that object's row count.
async fn record_artifacts(
    lake: &Lake,
    week: &str,
    shard: Shard,
    run_id: &str,
    ts: i64,
    artifacts: &[Artifact],
) -> Result<usize, StageError> {
    let def = catalog::table(REPORT_ARTIFACTS)?;
    let mut sorted: Vec<&Artifact> = artifacts.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let n = sorted.len();
    let text = |f: fn(&Artifact) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(sorted.iter().map(|a| f(a))))
    };
    let new = TableBatch::new(REPORT_ARTIFACTS, n)?
        .text("run_id", run_id)?
        .set(
            "student_id",
            Arc::new(StringArray::from_iter(
                sorted.iter().map(|a| a.student_id.as_deref()),
            )),
        )?
        .text("format", "html")?
        .set("key", text(|a| a.key.as_str()))?
        .set("url", text(|a| a.url.as_str()))?
        .set(
            "bytes",
            Arc::new(Int64Array::from_iter_values(
                sorted.iter().map(|a| a.bytes as i64),
            )),
        )?
        .set("sha256", text(|a| a.sha256.as_str()))?
        .timestamp("generated_at", ts)?
        .finish()?;
    let keys: HashSet<&str> = sorted.iter().map(|a| a.key.as_str()).collect();
    let key_ix = def.file_schema.index_of("key")?;
    let mut rows = 0;
    lake.update_partition_shard(
        REPORT_ARTIFACTS,
        &[("week_start", week)],
        shard,
        |existing| {
            let mut out = Vec::with_capacity(existing.len() + 1);
            for b in existing {
                let k = arrow::array::AsArray::as_string::<i32>(b.column(key_ix));
                let keep: BooleanArray = (0..b.num_rows())
                    .map(|r| Some(!keys.contains(k.value(r))))
                    .collect();
                let kept = arrow::compute::filter_record_batch(&b, &keep)?;
                if kept.num_rows() > 0 {
                    out.push(kept);
                }
            }
            out.push(new.clone());
            rows = out.iter().map(|b| b.num_rows()).sum();
            Ok(out)
        },
    )
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_student_is_in_the_lake_shard_of_its_bucket() {
        let ids: Vec<String> = (0..2000).map(|i| format!("s{i:05}")).collect();
        for count in [1u32, 2, 3, 4, 7, 10, 32, 1000, MAX_SHARDS] {
            let mut sizes = vec![0usize; count as usize];
            for id in &ids {
                let k = Shard::holding(id, count).index;
                assert!(k < count, "{id}: {k} of {count}");
                // The shard every stage uses, not its neighbours (the ranges are ordered).
                for j in k.saturating_sub(1)..(k + 2).min(count) {
                    let shard = Shard::new(j, count).unwrap_or_default();
                    assert_eq!(shard.contains(id), j == k, "{id}: {j} of {count}");
                }
                sizes[k as usize] += 1;
            }
            if count == 4 {
                assert!(sizes.iter().all(|n| (400..600).contains(n)), "{sizes:?}");
            }
        }
    }

    #[test]
    fn weeks_resolve_from_week_start_or_run_date() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap_or_default();
        let today = d("2026-03-05");
        let input = |week: Option<&str>, run: Option<&str>| ReportsInput {
            week_start: week.map(d),
            run_date: run.map(d),
            ..Default::default()
        };
        assert_eq!(
            resolve_week(&input(None, Some("2026-03-05")), today).ok(),
            Some((d("2026-03-02"), d("2026-03-05")))
        );
        assert_eq!(
            resolve_week(&input(Some("2026-03-04"), None), today).ok(),
            Some((d("2026-03-02"), d("2026-03-08")))
        );
        assert_eq!(
            resolve_week(&input(Some("2026-02-23"), Some("2026-03-05")), today).ok(),
            Some((d("2026-02-23"), d("2026-03-01")))
        );
        assert!(resolve_week(&input(Some("2026-03-02"), Some("2026-03-01")), today).is_err());
        assert!(
            serde_json::from_str::<ReportsInput>(
                r#"{"run_date":"2026-03-05","shard":0,"shards":2,"run_ts":"2026-03-06T03:00:00Z"}"#
            )
            .is_ok()
        );
        assert!(serde_json::from_str::<ReportsInput>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn sha256_hex_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
