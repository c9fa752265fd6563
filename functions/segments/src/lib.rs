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
//! (timestamps are `run_ts`). Each student's label is the first rule of DESIGN.md §4
//! (in [`models::cluster::PRECEDENCE`] order) that their **raw** features satisfy, else
//! the label of their cluster's centre in original units
//! ([`models::cluster::segment_label`]; `steady` when no rule matches the centre
//! either). `cluster` is the k-means cluster index (0-based).
//!
//! `features_snapshot` is JSON: the five raw features, `gap_open`, `attempts`,
//! `label_source` (`rule` or `centroid`) and `z` (the standardized features the
//! clustering saw), e.g.
//! `{"gap":2.5,"sessions":12,"hints":0.3,"improvement":0.1,"efficiency":0.8,"gap_open":false,"attempts":97,"label_source":"rule","z":{...}}`.
//!
//! # Degenerate inputs
//!
//! Fewer than [`MIN_STUDENTS`] (2 × k_max) eligible students → status
//! `too_few_students`; features so uniform that k-means cannot form 4 clusters →
//! `degenerate_features` with the model's message; nothing is written in either case.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, USER_SEGMENT};
use lake::runs::{StageError, StageInput, day_str, week_start};
use models::cluster::{
    KMeansConfig, SEGMENT_FEATURES, SegmentFeatures, centroid_label, kmeans, rule_label,
};
use serde::Serialize;

const STUDENTS_SQL: &str = include_str!("../../../sql/segments/students.sql");
const WEEKLY_KPI_SQL: &str = include_str!("../../../sql/segments/weekly_kpi.sql");

/// Seed of k-means (seeding, restarts, silhouette sample).
pub const SEED: u64 = 20_260_105;

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
    /// First day of the look-back window.
    pub window_from: String,
    /// Students with attempts in the window.
    pub active_students: usize,
    /// Of those, left out for lack of any weekly KPI row in the window.
    pub excluded_no_kpis: usize,
    /// Students clustered (rows written when segmented).
    pub students: usize,
    /// Of those, with a single session (gap measured to the end of the run date).
    pub single_session: usize,
    /// Chosen number of clusters.
    pub k: Option<usize>,
    /// Mean silhouette of the chosen clustering.
    pub silhouette: Option<f64>,
    /// Mean silhouette per candidate k.
    pub silhouette_by_k: Vec<(usize, f64)>,
    /// The clusters: size, centre in original units, centre's label.
    pub clusters: Vec<ClusterSummary>,
    /// Students per label.
    pub labels: BTreeMap<String, usize>,
    /// Labels from the student's own features (`rule`) vs the centre's (`centroid`).
    pub label_sources: BTreeMap<String, usize>,
    /// One line for a person.
    pub message: String,
}

/// One cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    /// Index (the `cluster` column).
    pub cluster: usize,
    /// Students in it.
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

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<SegmentsOutput, StageError> {
    let rc = input.context("segments")?;
    let ctx = lake.session()?;
    let from = rc.window_start(rc.run_date);
    let mut out = SegmentsOutput {
        status: "segmented".into(),
        run_id: rc.run_id.clone(),
        run_date: day_str(rc.run_date),
        window_from: day_str(from),
        active_students: 0,
        excluded_no_kpis: 0,
        students: 0,
        single_session: 0,
        k: None,
        silhouette: None,
        silhouette_by_k: Vec::new(),
        clusters: Vec::new(),
        labels: BTreeMap::new(),
        label_sources: BTreeMap::new(),
        message: String::new(),
    };
    let batches = ctx
        .sql(STUDENTS_SQL)
        .await?
        .with_param_values(vec![
            ScalarValue::Utf8(Some(day_str(from))),
            ScalarValue::Utf8(Some(day_str(rc.run_date))),
        ])?
        .collect()
        .await?;
    let kpi_batches = ctx
        .sql(WEEKLY_KPI_SQL)
        .await?
        .with_param_values(vec![
            ScalarValue::Utf8(Some(day_str(week_start(from)))),
            ScalarValue::Utf8(Some(day_str(rc.run_date))),
        ])?
        .collect()
        .await?;
    let kpis = kpi_means(&kpi_batches);
    // end of the run date, µs since the epoch
    let window_end = (rc.run_date + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();
    let students = read_students(&batches, &kpis, window_end, &mut out);
    out.students = students.len();
    if out.active_students == 0 {
        out.status = "no_activity".into();
        out.message = format!(
            "no attempts between {} and {}: nothing written",
            out.window_from, out.run_date
        );
        tracing::warn!("{}", out.message);
        return Ok(out);
    }
    if students.len() < MIN_STUDENTS {
        out.status = "too_few_students".into();
        out.message = format!(
            "{} eligible students between {} and {} ({} active, {} without weekly KPIs); segmentation needs at least {MIN_STUDENTS}: nothing written",
            students.len(),
            out.window_from,
            out.run_date,
            out.active_students,
            out.excluded_no_kpis
        );
        tracing::warn!("{}", out.message);
        return Ok(out);
    }

    let rows: Vec<[f64; 5]> = students.iter().map(|s| s.features.to_array()).collect();
    let config = KMeansConfig {
        seed: SEED,
        ..KMeansConfig::default()
    };
    let fit = match kmeans(&rows, &config) {
        Ok(f) => f,
        Err(e) => {
            out.status = "degenerate_features".into();
            out.message = format!(
                "{} students, but k-means cannot segment them: {e}; nothing written",
                students.len()
            );
            tracing::warn!("{}", out.message);
            return Ok(out);
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
    out.clusters = (0..fit.k)
        .map(|c| ClusterSummary {
            cluster: c,
            size: fit.sizes[c],
            centre: SEGMENT_FEATURES
                .iter()
                .zip(&fit.centres[c])
                .map(|(n, v)| ((*n).to_string(), *v))
                .collect(),
            label: centre_labels[c].as_str().to_string(),
        })
        .collect();

    let n = students.len();
    let (mut ids, mut clusters, mut labels, mut snaps) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (s, &c) in students.iter().zip(&fit.labels) {
        let (label, source) = match rule_label(&s.features) {
            Some(l) => (l, "rule"),
            None => (centre_labels[c], "centroid"),
        };
        let z = fit.standardizer.transform(&s.features.to_array());
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
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![rc.run_id.as_str(); n])),
        Arc::new(StringArray::from(ids)),
        Arc::new(Int32Array::from(clusters)),
        Arc::new(StringArray::from(labels)),
        Arc::new(StringArray::from(snaps)),
        Arc::new(TimestampMicrosecondArray::from(vec![rc.run_ts; n]).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(catalog::table(USER_SEGMENT)?.file_schema.clone(), cols)?;
    lake.write_partition(USER_SEGMENT, &[("run_date", &out.run_date)], &[batch])
        .await?;
    out.message = format!(
        "{n} students in {} clusters (silhouette {:.3}); labels {:?}",
        fit.k,
        fit.silhouette.unwrap_or(f64::NAN),
        out.labels
    );
    tracing::info!("{}", out.message);
    Ok(out)
}

/// Per student: (mean of the non-null i_t, or `None`; mean of the non-null e_t, or
/// `None`) over the rows (`student_id, week_start, i_t, e_t`), in query order.
fn kpi_means(batches: &[RecordBatch]) -> HashMap<String, (Option<f64>, Option<f64>)> {
    let mut acc: HashMap<String, (Vec<f64>, Vec<f64>)> = HashMap::new();
    for b in batches {
        let st = b.column(0).as_string::<i32>();
        let it = b.column(2).as_primitive::<Float64Type>();
        let et = b.column(3).as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let e = acc.entry(st.value(r).to_string()).or_default();
            if !it.is_null(r) && it.value(r).is_finite() {
                e.0.push(it.value(r));
            }
            if !et.is_null(r) && et.value(r).is_finite() {
                e.1.push(et.value(r));
            }
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    acc.into_iter()
        .map(|(k, (it, et))| (k, (mean(&it), mean(&et))))
        .collect()
}

/// The eligible students from the activity rows (`student_id, attempts, hints,
/// sessions, first_start, last_start`) and the KPI means, in id order; counts the
/// active and the excluded ones into `out`.
fn read_students(
    batches: &[RecordBatch],
    kpis: &HashMap<String, (Option<f64>, Option<f64>)>,
    window_end: i64,
    out: &mut SegmentsOutput,
) -> Vec<Student> {
    let mut students = Vec::new();
    for b in batches {
        let id = b.column(0).as_string::<i32>();
        let attempts = b.column(1).as_primitive::<Int64Type>();
        let hints = b.column(2).as_primitive::<Int64Type>();
        let sessions = b.column(3).as_primitive::<Int64Type>();
        let first = b.column(4).as_primitive::<TimestampMicrosecondType>();
        let last = b.column(5).as_primitive::<TimestampMicrosecondType>();
        for r in 0..b.num_rows() {
            out.active_students += 1;
            let Some(&(improvement, Some(efficiency))) = kpis.get(id.value(r)) else {
                out.excluded_no_kpis += 1;
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
                out.single_session += 1;
                ((window_end - first.value(r)) as f64 / MICROS_PER_DAY, true)
            };
            let n_attempts = attempts.value(r);
            students.push(Student {
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
    }
    students
}
