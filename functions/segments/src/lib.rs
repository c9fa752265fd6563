//! Stage **segments** → `user_segment` (partition `run_date`).
//!
//! # Features
//!
//! Per student with at least one attempt in the look-back window (`lookback_days`,
//! default 60, ending on the run date), from `sql/segments/students.sql` (activity) and
//! `sql/segments/weekly_kpi.sql` (weekly I_t, E_t). The KPI means are taken here in
//! (student, week) order rather than by SQL `avg`, whose parallel partial sums merge in
//! arrival order and would change the last bits from run to run.
//!
//! - `sessions`: sessions in the window — distinct session ids; attempts without a
//!   session id count one session per day, as the kpis stage counts them.
//! - `gap`: mean days between consecutive session starts (a session starts at its first
//!   attempt in the window), i.e. (last start − first start) / (sessions − 1), in days.
//!   **One session only**: there is no gap between sessions, so the gap is the time the
//!   student has gone without a second one — from that session's start to the end of
//!   the run date (24:00 UTC). It is a lower bound of their true gap, never more than
//!   the window; snapshot field `gap_open` = true marks it. (Dropping these students
//!   would hide exactly the one-off visitors `long_rare` is about; the window length
//!   instead would call a student who came yesterday "rare".)
//! - `hints`: hints per item — hints used (null = 0) over attempts in the window.
//! - `improvement`: mean of the non-null `weekly_kpi.i_t` of the student's weeks that
//!   overlap the window (0 if none).
//! - `efficiency`: mean `weekly_kpi.e_t` of those weeks. A student without any KPI row
//!   there (kpis not run for their weeks) has no efficiency and is left out, counted
//!   in the summary (`excluded_no_kpis`).
//!
//! # Clustering and labels
//!
//! [`models::cluster::kmeans`] on the standardized features: k-means++ with 10 seeded
//! restarts per k, k chosen by mean silhouette over 4..=8 (the stage input has no k),
//! fixed seed [`SEED`] and students in id order, so a re-run writes the same bytes
//! (timestamps are `run_ts`). The standardization and the centres are fitted on the
//! **fit sample** (below); every student is then assigned to the centre nearest to
//! their standardized features ([`models::cluster::KMeansFit::nearest`], ties to the
//! lower index, the rule of k-means' own assignment step). Each student's label is the
//! first rule of DESIGN.md §4 (in [`models::segment::PRECEDENCE`] order) that their
//! **raw** features satisfy, else the label of their cluster's centre in original units
//! ([`models::segment::segment_label`]; `steady` when no rule matches the centre
//! either). `cluster` is the k-means cluster index (0-based).
//!
//! # Fit sample, shards and memory
//!
//! An invocation writes the students of its shard (`shard`/`shards` of the input,
//! [`lake::shard::Shard`]) as the shard's own object of the run date's partition; the
//! features queries restrict their scans to the shard's student buckets.
//!
//! The centres and the standardization are fitted on a bounded, seeded sample of the
//! students, the same on every shard: the students of the buckets `0..k` of
//! `student_bucket(student_id, FIT_SAMPLE_SEED)` ([`FIT_SAMPLE_SEED`], a fixed seed),
//! with `k` the largest number of buckets whose students active in the window add up to
//! at most [`DEFAULT_MAX_FIT_STUDENTS`] (50,000; `sql/segments/bucket_counts.sql` counts them per
//! bucket, the rule is `models::sample::fit_prefix`, as calibrate's, recorded as `fit_sample`). For
//! a fixed seed, ids fall into buckets uniformly and independently of their features,
//! so the sample is a simple random sample of about `k / 4096` of the active students
//! and its centres estimate the full fit's within sampling error (a unit test checks it
//! on simulated clusters). When no more than 50,000 students are active, `k` = 4096: the
//! sample is everyone and the fit is the full one. Every shard draws the same sample and
//! runs the same seeded fit on the same rows in the same order, so the shards of a run
//! agree on the centres, and a run in N shards writes the same rows as one unsharded run.
//! When one process serves several shards of a run (the local runner, a warm Lambda
//! container), the bucket counts, the sample's features and the fit are computed once
//! ([`lake::memo`], keyed by the run date, look-back, cap and the state of `attempts` and
//! `weekly_kpi`): the later shards take them (`reused_shared_work`).
//!
//! Memory per invocation: DataFusion's query pool (`IRTLAKE_QUERY_MEMORY_MB`, default
//! 1 GiB; the per-student aggregations spill to disk beyond it) plus the fit sample's
//! features and k-means' working set (≤ 50,000 students: ~30 MB) plus the shard's
//! students and output rows (about 500 bytes a student): **≤ 1 GB for a 12.5k-student
//! shard** (and for a 100k-student one), whatever the size of the platform.
//! The status (`segmented`, `too_few_students`, `degenerate_features`, `no_activity`)
//! is decided on the fit sample, so every shard of a run reports the same one.
//!
//! # Degenerate inputs
//!
//! Fewer than [`MIN_STUDENTS`] (2 × k_max) eligible students in the fit sample → status
//! `too_few_students`; features so uniform that k-means cannot form 4 clusters →
//! `degenerate_features` with the model's message; nothing is written in either case.
//! A shard without eligible students writes an empty object when the fit succeeded.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{Int32Array, RecordBatch, StringArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::USER_SEGMENT;
use lake::columns::{Columns, TableBatch};
use lake::memo::Memo;
use lake::phases::Phases;
use lake::runs::{RunContext, StageError, StageInput, day_param, day_str, week_start};
use lake::shard::{STUDENT_BUCKETS, Shard};
use lake::stream::{for_each_batch, for_each_student, opt_value, query_stream};
use models::cluster::{KMeansConfig, KMeansFit, kmeans};
use models::segment::{SEGMENT_FEATURES, Segment, SegmentFeatures, centroid_label, rule_label};
use serde::Serialize;

const STUDENTS_SQL: &str = include_str!("../../../sql/segments/students.sql");
const WEEKLY_KPI_SQL: &str = include_str!("../../../sql/segments/weekly_kpi.sql");
const BUCKET_COUNTS_SQL: &str = include_str!("../../../sql/segments/bucket_counts.sql");

/// Seed of k-means (seeding, restarts, silhouette sample).
pub const SEED: u64 = 20_260_105;

/// Seed of the student buckets the fit sample is drawn from
/// (`student_bucket(student_id, FIT_SAMPLE_SEED)`, see the crate docs). Fixed: another
/// seed draws another sample.
pub const FIT_SAMPLE_SEED: u64 = SEED;

pub use models::sample::DEFAULT_MAX_FIT_STUDENTS;

/// Fewest eligible students: two per cluster at the largest candidate k (8).
pub const MIN_STUDENTS: usize = 16;

const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentsOutput {
    /// `segmented`, `too_few_students`, `degenerate_features` or `no_activity`.
    pub status: String,
    /// Run id.
    pub run_id: String,
    /// Run date.
    pub run_date: String,
    /// The shard of the students this invocation wrote (`"shard K of N"`).
    pub shard: String,
    /// First day of the look-back window.
    pub window_from: String,
    /// Students of the shard with attempts in the window.
    pub active_students: usize,
    /// Of those, left out for lack of any weekly KPI row in the window.
    pub excluded_no_kpis: usize,
    /// Students of the shard clustered (rows written when segmented).
    pub students: usize,
    /// Of those, with a single session (gap measured to the end of the run date).
    pub single_session: usize,
    /// The fit sample's rule, `student_bucket<k/4096 seed=S` (`4096/4096`: everyone).
    pub fit_sample: String,
    /// Eligible students in the fit sample (the rows k-means was fitted on).
    pub fit_students: usize,
    /// Chosen number of clusters.
    pub k: Option<usize>,
    /// Mean silhouette of the chosen clustering (on the fit sample).
    pub silhouette: Option<f64>,
    /// Mean silhouette per candidate k.
    pub silhouette_by_k: Vec<(usize, f64)>,
    /// The clusters: size (students of the shard), centre in original units, label.
    pub clusters: Vec<ClusterSummary>,
    /// Students per label.
    pub labels: BTreeMap<String, usize>,
    /// Labels from the student's own features (`rule`) vs the centre's (`centroid`).
    pub label_sources: BTreeMap<String, usize>,
    /// One line for a person.
    pub message: String,
    /// Whether this invocation found the run's shared work (bucket counts, the fit
    /// sample's features, the k-means fit) begun by an earlier invocation of the run in
    /// the same process ([`lake::memo`]): it took every piece that one had computed,
    /// and computed only the pieces it was first to need.
    pub reused_shared_work: bool,
    /// Wall time of the stage's phases (ms): read (bucket counts, the shard's and the fit
    /// sample's features), fit (k-means), assign (the shard's students to the centres,
    /// labels), write.
    pub phases_ms: Phases,
}

/// One cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    /// Index (the `cluster` column).
    pub cluster: usize,
    /// Students of the shard in it.
    pub size: usize,
    /// Centre in original units, by feature name.
    pub centre: BTreeMap<String, f64>,
    /// The centre's label (fallback for members no rule matches).
    pub label: String,
}

/// What `features_snapshot` holds.
#[derive(Debug, Clone, Serialize)]
struct Snapshot {
    gap: f64,
    sessions: f64,
    hints: f64,
    improvement: f64,
    efficiency: f64,
    gap_open: bool,
    attempts: i64,
    label_source: &'static str,
    z: Z,
}

#[derive(Debug, Clone, Serialize)]
struct Z {
    gap: f64,
    sessions: f64,
    hints: f64,
    improvement: f64,
    efficiency: f64,
}

/// One eligible student.
struct Student {
    id: String,
    features: SegmentFeatures,
    gap_open: bool,
    attempts: i64,
}

/// The students a features query reads: those of `shard` whose fit bucket
/// (`student_bucket(student_id, FIT_SAMPLE_SEED)`) is below `fit_buckets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Selection {
    shard: Shard,
    fit_buckets: u64,
}

impl Selection {
    /// `$3 .. $6` of `students.sql` and `weekly_kpi.sql`.
    fn params(&self) -> [ScalarValue; 4] {
        let [lo, hi] = self.shard.sql_params();
        [
            lo,
            hi,
            ScalarValue::Int64(Some(FIT_SAMPLE_SEED as i64)),
            ScalarValue::Int64(Some(self.fit_buckets as i64)),
        ]
    }
}

/// The look-back window: first and last day, and the end of the last day (µs since the
/// epoch, UTC).
struct Window {
    from: NaiveDate,
    to: NaiveDate,
    end_micros: i64,
}

/// The eligible students of a selection (id order) and the counts behind them.
#[derive(Default)]
struct Cohort {
    students: Vec<Student>,
    active: usize,
    excluded_no_kpis: usize,
    single_session: usize,
}

/// Runs the stage (fit sample of at most [`DEFAULT_MAX_FIT_STUDENTS`] students).
pub async fn run(lake: &Lake, input: &StageInput) -> Result<SegmentsOutput, StageError> {
    run_with_fit_cap(lake, input, DEFAULT_MAX_FIT_STUDENTS).await
}

/// Runs the stage with a fit sample of at most `max_fit_students` active students
/// instead of [`DEFAULT_MAX_FIT_STUDENTS`] (tests exercise the sample on a small lake).
pub async fn run_with_fit_cap(
    lake: &Lake,
    input: &StageInput,
    max_fit_students: u64,
) -> Result<SegmentsOutput, StageError> {
    let mut phases = Phases::start();
    let rc = input.context("segments")?;
    let ctx = lake.session()?;
    let from = rc.window_start(rc.run_date);
    let mut out = SegmentsOutput {
        status: "segmented".into(),
        run_id: rc.run_id.clone(),
        run_date: day_str(rc.run_date),
        shard: rc.shard.label(),
        window_from: day_str(from),
        active_students: 0,
        excluded_no_kpis: 0,
        students: 0,
        single_session: 0,
        fit_sample: String::new(),
        fit_students: 0,
        k: None,
        silhouette: None,
        silhouette_by_k: Vec::new(),
        clusters: Vec::new(),
        labels: BTreeMap::new(),
        label_sources: BTreeMap::new(),
        message: String::new(),
        reused_shared_work: false,
        phases_ms: Phases::start(),
    };
    let window = Window {
        from,
        to: rc.run_date,
        end_micros: (rc.run_date + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_micros(),
    };
    let (shared, computed) = shared_work(lake, &rc, max_fit_students).await?;
    out.reused_shared_work = !computed;
    let counts = shared
        .counts
        .get_or_try_init(|| read_bucket_counts(&ctx, &window))
        .await?;
    let fit_buckets = fit_sample_buckets(counts, max_fit_students);
    out.fit_sample = models::sample::rule(fit_buckets, STUDENT_BUCKETS as usize, FIT_SAMPLE_SEED);
    let shard_sel = Selection {
        shard: rc.shard,
        fit_buckets: STUDENT_BUCKETS,
    };
    let fit_sel = Selection {
        shard: Shard::WHOLE,
        fit_buckets: fit_buckets as u64,
    };
    let shard = read_cohort(&ctx, &window, shard_sel).await?;
    out.active_students = shard.active;
    out.excluded_no_kpis = shard.excluded_no_kpis;
    out.single_session = shard.single_session;
    out.students = shard.students.len();
    let sample = if fit_sel == shard_sel {
        &shard
    } else {
        shared
            .sample
            .get_or_try_init(|| read_cohort(&ctx, &window, fit_sel))
            .await?
    };
    out.fit_students = sample.students.len();
    phases.mark("read");
    let Some((fit, centre_labels)) = fit_clusters(sample, fit_buckets, &shared.fit, &mut out)?
    else {
        phases.mark("fit");
        out.phases_ms = phases;
        tracing::warn!("{}", out.message);
        return Ok(out);
    };
    phases.mark("fit");
    let batch = assign_and_label(&shard.students, fit, &centre_labels, &rc, &mut out)?;
    phases.mark("assign");
    lake.write_partition_shard(
        USER_SEGMENT,
        &[("run_date", &out.run_date)],
        rc.shard,
        &[batch],
    )
    .await?;
    phases.mark("write");
    out.message = format!(
        "{} students in {} clusters (silhouette {:.3}); labels {:?}",
        out.students,
        fit.k,
        fit.silhouette.unwrap_or(f64::NAN),
        out.labels
    );
    tracing::info!(shard = %out.shard, %phases, "{}", out.message);
    out.phases_ms = phases;
    Ok(out)
}

/// What every shard of a run computes the same from the same inputs, done once per
/// process ([`lake::memo`]): the active students per fit bucket, the fit sample's
/// features (when a shard reads them apart from its own) and the k-means fit. Each
/// piece is computed by the first shard that needs it; a shard that takes one writes
/// what it would have written alone (the fit is seeded and its rows are in id order).
#[derive(Default)]
struct SharedWork {
    /// Active students per fit bucket.
    counts: tokio::sync::OnceCell<Vec<u64>>,
    /// The fit sample's eligible students.
    sample: tokio::sync::OnceCell<Cohort>,
    /// k-means on the fit sample, or why it cannot segment them.
    fit: OnceLock<Result<KMeansFit, String>>,
}

/// The shared work of the latest run this process served (one entry: a warm process
/// holds at most one fit sample between invocations).
static SHARED_WORK: Memo<SharedWork> = Memo::new();

/// The catalog tables the shared work reads (the memo lists them: each must be among
/// segments' Terraform reads).
pub const SHARED_INPUTS: [&str; 2] = [lake::catalog::ATTEMPTS, lake::catalog::WEEKLY_KPI];

/// The shared work of this run, and whether this call made it (else an earlier shard
/// did): its key names the run date, the look-back, the sample
/// cap and the state of [`SHARED_INPUTS`] (not the shard, nor the run id or time).
async fn shared_work(
    lake: &Lake,
    rc: &RunContext,
    max_fit_students: u64,
) -> Result<(Arc<SharedWork>, bool), StageError> {
    let parts = [
        day_str(rc.run_date),
        format!("lookback_days={}", rc.lookback_days),
        format!("max_fit_students={max_fit_students}"),
    ];
    Ok(SHARED_WORK
        .run_work(lake, "segments", &parts, &SHARED_INPUTS)
        .await?)
}

/// `k`: the fit sample is the students of the fit buckets `0..k`, the longest prefix of
/// buckets whose active students (`students_per_bucket`) add up to at most `cap`
/// (calibrate's rule, `models::sample::fit_prefix`); `k` = 4096 takes everyone.
pub fn fit_sample_buckets(students_per_bucket: &[u64], cap: u64) -> usize {
    models::sample::fit_prefix(students_per_bucket, cap)
}

/// Active students of the window per fit bucket (`sql/segments/bucket_counts.sql`),
/// indexed by bucket.
async fn read_bucket_counts(ctx: &SessionContext, window: &Window) -> Result<Vec<u64>, StageError> {
    let params = vec![
        day_param(window.from),
        day_param(window.to),
        ScalarValue::Int64(Some(FIT_SAMPLE_SEED as i64)),
    ];
    Ok(lake::shard::bucket_counts(ctx, BUCKET_COUNTS_SQL, params).await?)
}

/// Fits the clustering on the fit sample; `None` (with `out`'s status and message set)
/// when there is nothing to fit: no activity, too few eligible students, or features
/// k-means cannot split. Returns the fit and its centres' labels.
fn fit_clusters<'a>(
    sample: &Cohort,
    fit_buckets: usize,
    fitted: &'a OnceLock<Result<KMeansFit, String>>,
    out: &mut SegmentsOutput,
) -> Result<Option<(&'a KMeansFit, Vec<Segment>)>, StageError> {
    let in_sample = if fit_buckets < STUDENT_BUCKETS as usize {
        format!(" in the fit sample ({})", out.fit_sample)
    } else {
        String::new()
    };
    if sample.active == 0 {
        out.status = "no_activity".into();
        out.message = format!(
            "no attempts between {} and {}: nothing written",
            out.window_from, out.run_date
        );
        return Ok(None);
    }
    if sample.students.len() < MIN_STUDENTS {
        out.status = "too_few_students".into();
        out.message = format!(
            "{} eligible students between {} and {}{in_sample} ({} active, {} without weekly KPIs); segmentation needs at least {MIN_STUDENTS}: nothing written",
            sample.students.len(),
            out.window_from,
            out.run_date,
            sample.active,
            sample.excluded_no_kpis
        );
        return Ok(None);
    }
    let rows: Vec<[f64; 5]> = sample
        .students
        .iter()
        .map(|s| s.features.to_array())
        .collect();
    let config = KMeansConfig {
        seed: SEED,
        ..KMeansConfig::default()
    };
    let fit = lake::runs::cpu_bound(|| {
        fitted.get_or_init(|| kmeans(&rows, &config).map_err(|e| e.to_string()))
    });
    let fit = match fit {
        Ok(f) => f,
        Err(e) => {
            out.status = "degenerate_features".into();
            out.message = format!(
                "{} students{in_sample}, but k-means cannot segment them: {e}; nothing written",
                sample.students.len()
            );
            return Ok(None);
        }
    };
    let centre_labels: Vec<_> = fit
        .centres
        .iter()
        .map(|c| SegmentFeatures::from_slice(c).map(|f| centroid_label(&f)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| StageError::Model("cluster centres have fewer than 5 features".into()))?;
    out.k = Some(fit.k);
    out.silhouette = fit.silhouette;
    out.silhouette_by_k = fit.silhouette_by_k.clone();
    Ok(Some((fit, centre_labels)))
}

/// Assigns every student of the shard to the nearest centre, labels them, fills the
/// cluster summaries and label counts of `out`, and returns the `user_segment` rows.
fn assign_and_label(
    students: &[Student],
    fit: &KMeansFit,
    centre_labels: &[Segment],
    rc: &RunContext,
    out: &mut SegmentsOutput,
) -> Result<RecordBatch, StageError> {
    let n = students.len();
    let mut sizes = vec![0usize; fit.k];
    let (mut ids, mut clusters, mut labels, mut snaps) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for s in students {
        let z = fit.standardizer.transform(&s.features.to_array());
        let c = fit.nearest(&z);
        sizes[c] += 1;
        let (label, source) = match rule_label(&s.features) {
            Some(l) => (l, "rule"),
            None => (centre_labels[c], "centroid"),
        };
        let f = &s.features;
        let snap = Snapshot {
            gap: f.gap,
            sessions: f.sessions,
            hints: f.hints,
            improvement: f.improvement,
            efficiency: f.efficiency,
            gap_open: s.gap_open,
            attempts: s.attempts,
            label_source: source,
            z: Z {
                gap: z[0],
                sessions: z[1],
                hints: z[2],
                improvement: z[3],
                efficiency: z[4],
            },
        };
        *out.labels.entry(label.as_str().to_string()).or_default() += 1;
        *out.label_sources.entry(source.to_string()).or_default() += 1;
        ids.push(s.id.as_str());
        clusters
            .push(i32::try_from(c).map_err(|_| StageError::Model(format!("cluster index {c}")))?);
        labels.push(label.as_str());
        snaps.push(serde_json::to_string(&snap).map_err(StageError::model)?);
    }
    out.clusters = (0..fit.k)
        .map(|c| ClusterSummary {
            cluster: c,
            size: sizes[c],
            centre: SEGMENT_FEATURES
                .iter()
                .zip(&fit.centres[c])
                .map(|(n, v)| ((*n).to_string(), *v))
                .collect(),
            label: centre_labels[c].as_str().to_string(),
        })
        .collect();
    Ok(TableBatch::new(USER_SEGMENT, n)?
        .text("run_id", &rc.run_id)?
        .set("student_id", Arc::new(StringArray::from(ids)))?
        .set("cluster", Arc::new(Int32Array::from(clusters)))?
        .set("segment_label", Arc::new(StringArray::from(labels)))?
        .set("features_snapshot", Arc::new(StringArray::from(snaps)))?
        .timestamp("assigned_at", rc.run_ts)?
        .finish()?)
}

/// Per student of the selection, in id order: (id, mean of the non-null finite i_t or
/// `None`, mean of the non-null finite e_t or `None`) over their weekly KPI rows of the
/// weeks overlapping the window, taken in week order (`sql/segments/weekly_kpi.sql`).
async fn kpi_means(
    ctx: &SessionContext,
    window: &Window,
    sel: Selection,
) -> Result<Vec<(String, Option<f64>, Option<f64>)>, StageError> {
    let [lo, hi, seed, k] = sel.params();
    let stream = query_stream(
        ctx,
        WEEKLY_KPI_SQL,
        vec![
            day_param(week_start(window.from)),
            day_param(window.to),
            lo,
            hi,
            seed,
            k,
        ],
    )
    .await?;
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let mut out = Vec::new();
    let (mut its, mut ets) = (Vec::new(), Vec::new());
    for_each_student(stream, 0, |student, parts| {
        its.clear();
        ets.clear();
        for b in parts {
            let c = Columns::of(b);
            let (it, et) = (c.f64s("i_t")?, c.f64s("e_t")?);
            for r in 0..b.num_rows() {
                its.extend(opt_value(it, r).filter(|v| v.is_finite()));
                ets.extend(opt_value(et, r).filter(|v| v.is_finite()));
            }
        }
        out.push((student.to_string(), mean(&its), mean(&ets)));
        Ok(())
    })
    .await?;
    Ok(out)
}

/// The eligible students of the selection from the activity rows (`student_id,
/// attempts, hints, sessions, first_start, last_start`, `sql/segments/students.sql`) and
/// the KPI means, in id order, with the active, excluded and single-session counts.
async fn read_cohort(
    ctx: &SessionContext,
    window: &Window,
    sel: Selection,
) -> Result<Cohort, StageError> {
    let kpi_rows = kpi_means(ctx, window, sel).await?;
    let [lo, hi, seed, k] = sel.params();
    let stream = query_stream(
        ctx,
        STUDENTS_SQL,
        vec![
            day_param(window.from),
            day_param(window.to),
            lo,
            hi,
            seed,
            k,
        ],
    )
    .await?;
    let mut cohort = Cohort::default();
    for_each_batch(stream, |b| {
        let c = Columns::of(b);
        let (id, attempts) = (c.strings("student_id")?, c.i64s("attempts")?);
        let (hints, sessions) = (c.i64s("hints")?, c.i64s("sessions")?);
        let first = c.primitives::<TimestampMicrosecondType>("first_start")?;
        let last = c.primitives::<TimestampMicrosecondType>("last_start")?;
        for r in 0..b.num_rows() {
            cohort.active += 1;
            let kpi = kpi_rows
                .binary_search_by(|k| k.0.as_str().cmp(id.value(r)))
                .ok()
                .map(|i| (kpi_rows[i].1, kpi_rows[i].2));
            let Some((improvement, Some(efficiency))) = kpi else {
                cohort.excluded_no_kpis += 1;
                continue;
            };
            let n_sessions = sessions.value(r);
            let (gap, gap_open) = if n_sessions > 1 {
                (
                    (last.value(r) - first.value(r)) as f64
                        / MICROS_PER_DAY
                        / (n_sessions - 1) as f64,
                    false,
                )
            } else {
                cohort.single_session += 1;
                (
                    (window.end_micros - first.value(r)) as f64 / MICROS_PER_DAY,
                    true,
                )
            };
            let n_attempts = attempts.value(r);
            cohort.students.push(Student {
                id: id.value(r).to_string(),
                features: SegmentFeatures {
                    gap,
                    sessions: n_sessions as f64,
                    hints: hints.value(r) as f64 / n_attempts.max(1) as f64,
                    improvement: improvement.unwrap_or(0.0),
                    efficiency,
                },
                gap_open,
                attempts: n_attempts,
            });
        }
        Ok(())
    })
    .await?;
    Ok(cohort)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lake::shard::student_bucket;
    use models::cluster::adjusted_rand_index;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    /// True centres of the simulated students (5 features, SD 1 around each) and the
    /// share of students in each.
    const CENTRES: [[f64; 5]; 4] = [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [6.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 6.0, 0.0, 3.0, 0.0],
        [0.0, 0.0, 6.0, 0.0, -3.0],
    ];
    const SHARES: [f64; 4] = [0.4, 0.3, 0.2, 0.1];

    /// `n` students `s000000`.. with features drawn around a random one of [`CENTRES`].
    fn students(n: usize) -> Vec<(String, [f64; 5])> {
        let mut rng = StdRng::seed_from_u64(11);
        let noise = Normal::new(0.0, 1.0).unwrap();
        (0..n)
            .map(|i| {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                let g = SHARES
                    .iter()
                    .position(|s| {
                        acc += s;
                        u < acc
                    })
                    .unwrap_or(SHARES.len() - 1);
                let row = CENTRES[g].map(|c| c + noise.sample(&mut rng));
                (format!("s{i:06}"), row)
            })
            .collect()
    }

    fn config() -> KMeansConfig {
        KMeansConfig {
            seed: SEED,
            ..KMeansConfig::default()
        }
    }

    /// For each centre of `sample_fit`, the full fit's centre it estimates (nearest) and
    /// whether every coordinate lies within 4 standard errors of it: SE² = s²(1/n − 1/N),
    /// s² the within-cluster variance of the feature among the full fit's members, n and
    /// N the cluster's sizes in the sample and in the full fit (a simple random sample
    /// of N without replacement). Returns the largest |difference| / SE.
    fn largest_z(full: &KMeansFit, rows: &[[f64; 5]], sample_fit: &KMeansFit) -> f64 {
        let mut worst = 0.0f64;
        for (c, centre) in sample_fit.centres.iter().enumerate() {
            let z = full.standardizer.transform(centre);
            let f = full.nearest(&z);
            let members: Vec<&[f64; 5]> = rows
                .iter()
                .zip(&full.labels)
                .filter(|(_, l)| **l == f)
                .map(|(r, _)| r)
                .collect();
            let (n, big_n) = (sample_fit.sizes[c] as f64, members.len() as f64);
            for j in 0..5 {
                let mean = members.iter().map(|r| r[j]).sum::<f64>() / big_n;
                let var =
                    members.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / (big_n - 1.0);
                let se = (var * (1.0 / n - 1.0 / big_n)).sqrt();
                worst = worst.max((centre[j] - full.centres[f][j]).abs() / se);
            }
        }
        worst
    }

    /// The fit sample (students of the fit buckets `0..k` under [`FIT_SAMPLE_SEED`],
    /// grown up to the cap) estimates the full fit's centres within sampling error, and
    /// assigning everyone to the sample's centres agrees with the full fit; a sample
    /// chosen by a feature (not at random) fails the same check.
    #[test]
    fn centres_fitted_on_the_bucket_sample_are_within_sampling_error_of_the_full_fit() {
        let all = students(40_000);
        let cap = 8_000;
        let mut counts = vec![0u64; STUDENT_BUCKETS as usize];
        for (id, _) in &all {
            counts[student_bucket(id, FIT_SAMPLE_SEED) as usize] += 1;
        }
        let k = fit_sample_buckets(&counts, cap);
        let sample: Vec<[f64; 5]> = all
            .iter()
            .filter(|(id, _)| (student_bucket(id, FIT_SAMPLE_SEED) as usize) < k)
            .map(|(_, r)| *r)
            .collect();
        // The sample stops one bucket (~10 students) short of the cap at most.
        assert!(
            sample.len() as u64 <= cap && sample.len() as u64 > cap - 50,
            "{} students in buckets 0..{k}",
            sample.len()
        );
        let rows: Vec<[f64; 5]> = all.iter().map(|(_, r)| *r).collect();
        let full = kmeans(&rows, &config()).unwrap();
        let fit = kmeans(&sample, &config()).unwrap();
        assert_eq!(
            (full.k, fit.k),
            (4, 4),
            "{:?} {:?}",
            full.silhouette_by_k,
            fit.silhouette_by_k
        );
        // The full fit finds the true centres (SE of a mean of ≥ 4000 is ≤ 0.016).
        for c in &full.centres {
            let truth = CENTRES
                .iter()
                .min_by(|a, b| {
                    let d =
                        |t: &[f64; 5]| t.iter().zip(c).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            assert!(
                truth.iter().zip(c).all(|(t, x)| (t - x).abs() < 0.1),
                "{c:?} vs {truth:?}"
            );
        }
        // 20 coordinates at 4 SE: a false alarm has probability ~1e-3 for a fair sample.
        let z = largest_z(&full, &rows, &fit);
        eprintln!("bucket sample of {}: largest |Δ| = {z:.2} SE", sample.len());
        assert!(z < 4.0, "largest |Δ| = {z:.2} SE");
        // Everyone assigned to the sample's centres ≈ the full fit's clusters.
        let assigned: Vec<usize> = rows
            .iter()
            .map(|r| fit.nearest(&fit.standardizer.transform(r)))
            .collect();
        let ari = adjusted_rand_index(&full.labels, &assigned).unwrap();
        assert!(ari > 0.99, "ARI {ari}");

        // Negative control: the 8000 students lowest on the last feature are no random
        // sample; their centres are off by far more than sampling error.
        let mut biased = rows.clone();
        biased.sort_by(|a, b| a[4].total_cmp(&b[4]));
        biased.truncate(sample.len());
        let four = KMeansConfig {
            k: Some(4),
            ..config()
        };
        let z = largest_z(&full, &rows, &kmeans(&biased, &four).unwrap());
        assert!(z > 10.0, "biased sample within {z:.2} SE");
    }

    #[test]
    fn the_fit_sample_is_everyone_below_the_cap() {
        let counts = [3u64, 0, 5, 2];
        assert_eq!(fit_sample_buckets(&counts, 10), 4);
        assert_eq!(fit_sample_buckets(&counts, 9), 3);
        assert_eq!(
            fit_sample_buckets(&[0; 4], 10),
            4,
            "nobody active: everyone"
        );
        let sel = Selection {
            shard: Shard::WHOLE,
            fit_buckets: STUDENT_BUCKETS,
        };
        let p = sel.params();
        assert_eq!(p[1], ScalarValue::Int64(Some(4096)));
        assert_eq!(p[3], ScalarValue::Int64(Some(4096)));
    }
}
