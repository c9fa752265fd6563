//! View models: what a report shows, as text and chart geometry, built from
//! [`WeekData`]. The templates only lay these out; every number is formatted here.
//!
//! Key values also carry their raw number (`raw`), written by the templates as
//! `data-value` attributes so that tests and tools can read them back exactly.
//!
//! The page frame, labelled fields and linking rows shared by both reports are here;
//! `format` holds number, date and tick formatting, percentile ranks and θ levels,
//! `forecast` the forecast chart both reports draw, `student` the student report
//! ([`StudentView`], [`student_view`]) and `cohort` the cohort report ([`CohortView`],
//! [`cohort_view`]).

mod cohort;
mod forecast;
mod format;
mod student;

use serde::Serialize;

use crate::data::{FitRow, WeekData};
use crate::labels::{Labels, fill};

pub use cohort::{
    CohortView, Distribution, DriftView, ForecastGroup, HealthRow, SegmentRow, cohort_view,
};
pub use forecast::forecast_chart;
pub use format::{
    LEVEL_CUTS, THETA_RANGE, level_of, num, pct, percentile, percentile_rank, signed,
};
pub use student::{
    AbilityView, KpiView, OutlookView, SegmentView, StudentView, TopicView, main_subject,
    student_view,
};

use format::raw;

/// A labelled value.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// Stable name (the `data-field` attribute).
    pub key: &'static str,
    /// Label.
    pub label: String,
    /// Display text.
    pub value: String,
    /// Raw value (the `data-value` attribute).
    pub raw: String,
}

fn field(key: &'static str, label: &str, value: String, raw: String) -> Field {
    Field {
        key,
        label: label.to_string(),
        value,
        raw,
    }
}

/// The page frame shared by both reports.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// `<html lang>`.
    pub lang: &'static str,
    /// Document title.
    pub title: String,
    /// Heading.
    pub heading: String,
    /// Report kind line.
    pub kind: String,
    /// Week line.
    pub week_line: String,
    /// Footer line.
    pub generated: String,
    /// Week (machine-readable).
    pub week_start: String,
    /// As-of day (machine-readable).
    pub as_of: String,
}

/// Run facts shown in the footers.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Generation time, RFC 3339.
    pub generated_at: String,
}

fn page(
    t: &Labels,
    lang: &'static str,
    d: &WeekData,
    run: &RunInfo,
    kind: &str,
    heading: String,
) -> Page {
    let week = d.week.to_string();
    Page {
        lang,
        title: format!("{kind} \u{b7} {heading} \u{b7} {week}"),
        heading,
        kind: kind.to_string(),
        week_line: format!(
            "{} \u{b7} {}",
            fill(t.week_of, &[("week", &week)]),
            fill(t.as_of, &[("day", &d.as_of.to_string())])
        ),
        generated: fill(
            t.generated,
            &[("ts", &run.generated_at), ("run", &run.run_id)],
        ),
        week_start: week,
        as_of: d.as_of.to_string(),
    }
}

/// The linking/equating rows of a calibration.
pub fn linking_fields(t: &Labels, cal: &FitRow) -> Vec<Field> {
    vec![
        field(
            "calibration_run",
            t.calibration_run,
            cal.run_id.clone(),
            cal.run_id.clone(),
        ),
        field(
            "calibration_date",
            t.calibration_date,
            cal.run_date.clone(),
            cal.run_date.clone(),
        ),
        field(
            "model",
            t.model,
            cal.model.to_uppercase(),
            cal.model.clone(),
        ),
        field(
            "linking_method",
            t.linking_method,
            cal.linking_method.clone(),
            cal.linking_method.clone(),
        ),
        field(
            "linking_a",
            t.linking_a,
            num(cal.linking_a, 4),
            raw(cal.linking_a),
        ),
        field(
            "linking_b",
            t.linking_b,
            num(cal.linking_b, 4),
            raw(cal.linking_b),
        ),
        field(
            "anchors_used",
            t.anchors_used,
            format!("{} / {}", cal.n_anchors_used, cal.n_anchors),
            cal.n_anchors_used.to_string(),
        ),
        field(
            "converged",
            t.converged,
            format!(
                "{} ({} {})",
                if cal.converged { t.yes } else { t.no },
                cal.iterations,
                t.iterations.to_lowercase()
            ),
            cal.converged.to_string(),
        ),
    ]
}
