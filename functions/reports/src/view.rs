//! View models: what a report shows, as text and chart geometry, built from
//! [`WeekData`]. The templates only lay these out; every number is formatted here.
//!
//! Key values also carry their raw number (`raw`), written by the templates as
//! `data-value` attributes so that tests and tools can read them back exactly.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

use crate::charts::{
    self, Bullet, Chart, Frame, HBars, LevelBand, Sparkline, bullet, empty_chart, hbars, histogram,
    level_band, sparkline,
};
use crate::data::{Bins, COHORT_KPIS, DistStats, FitRow, KpiRow, THETA_BINS, WeekData};
use crate::labels::{Labels, fill, segment_text};

/// Cut points of the five named levels on the θ scale (the anchor scale, on which the
/// reference population is about N(0, 1)): below −1.5 *Beginning*, −1.5 to −0.5
/// *Developing*, −0.5 to 0.5 *Proficient*, 0.5 to 1.5 *Advanced*, from 1.5 *Expert*.
pub const LEVEL_CUTS: [f64; 4] = [-1.5, -0.5, 0.5, 1.5];
/// θ range drawn by the level band and the topic bullets.
pub const THETA_RANGE: (f64, f64) = (-3.0, 3.0);

/// A number with 2 decimals and a typographic minus; `—` when missing.
pub fn num(x: Option<f64>, decimals: usize) -> String {
    match x.filter(|v| v.is_finite()) {
        Some(v) => {
            let s = format!("{v:.decimals$}");
            let s = if s.trim_start_matches(['-', '0', '.']).is_empty() {
                s.trim_start_matches('-').to_string()
            } else {
                s
            };
            s.replace('-', "\u{2212}")
        }
        None => "\u{2014}".to_string(),
    }
}

/// A signed number (`+0.12`, `−0.30`).
pub fn signed(x: Option<f64>, decimals: usize) -> String {
    match x.filter(|v| v.is_finite()) {
        Some(v) if v > 0.0 && num(Some(v), decimals) != num(Some(0.0), decimals) => {
            format!("+{}", num(Some(v), decimals))
        }
        other => num(other, decimals),
    }
}

/// A share as a whole percentage (`63%`).
pub fn pct(x: Option<f64>) -> String {
    match x.filter(|v| v.is_finite()) {
        Some(v) if v > 0.0 && v < 0.005 => "<1%".to_string(),
        Some(v) => format!("{:.0}%", v * 100.0),
        None => "\u{2014}".to_string(),
    }
}

/// Raw value for a `data-value` attribute (empty when missing).
fn raw(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v}"))
        .unwrap_or_default()
}

/// Days since 1970-01-01 (the x coordinate of dates).
fn dnum(d: NaiveDate) -> f64 {
    f64::from(d.num_days_from_ce() - 719_163)
}

fn mmdd(d: NaiveDate) -> String {
    d.format("%m-%d").to_string()
}

/// Date ticks: every `step` days from `start`, at most about six.
fn date_ticks(start: NaiveDate, end: NaiveDate, step: u64) -> Vec<(f64, String)> {
    let span = (end - start).num_days().max(0) as u64;
    let mut k = 1;
    while span / (step * k) > 5 {
        k += 1;
    }
    let mut out = Vec::new();
    let mut d = start;
    while d <= end {
        out.push((dnum(d), mmdd(d)));
        d = d + Days::new(step * k);
    }
    out
}

/// Ticks at the run dates themselves (x in [`dnum`] days), at most six: every k-th run
/// from the first, and always the last. A single run gets its own date, centred.
fn run_ticks(xs: impl IntoIterator<Item = f64>) -> Vec<(f64, String)> {
    let mut days: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
    days.sort_by(f64::total_cmp);
    days.dedup();
    let k = days.len().div_ceil(6).max(1);
    let label = |x: f64| {
        NaiveDate::from_num_days_from_ce_opt(x as i32 + 719_163)
            .map(mmdd)
            .unwrap_or_default()
    };
    let mut out: Vec<(f64, String)> = days.iter().step_by(k).map(|&x| (x, label(x))).collect();
    if let Some(&last) = days.last()
        && out.last().map(|t| t.0) != Some(last)
    {
        // The last run replaces a tick that would sit too close to it.
        if out.len() > 1 && (last - out[out.len() - 1].0) < 4.0 * (k as f64) {
            out.pop();
        }
        out.push((last, label(last)));
    }
    out
}

/// Percentile rank (0–100) of `x` in the sorted `sorted`: share below plus half the ties.
pub fn percentile(sorted: &[f64], x: f64) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    let below = sorted.partition_point(|v| *v < x);
    let upto = sorted.partition_point(|v| *v <= x);
    percentile_rank(below, upto, sorted.len())
}

/// Percentile rank (0–100) of a value with `below` of the `n` values of a cohort below
/// it and `upto` at most it: the share below plus half the ties (none when `n` = 0).
pub fn percentile_rank(below: usize, upto: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| 100.0 * (below as f64 + 0.5 * upto.saturating_sub(below) as f64) / n as f64)
}

/// Index of the level of θ (0 … 4).
pub fn level_of(theta: f64) -> usize {
    LEVEL_CUTS.partition_point(|c| *c <= theta)
}

fn level_names(t: &Labels) -> Vec<String> {
    [t.level_0, t.level_1, t.level_2, t.level_3, t.level_4]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

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

/// The ability section.
#[derive(Debug, Clone, Serialize)]
pub struct AbilityView {
    /// θ, SE, percentile, level (empty without θ).
    pub fields: Vec<Field>,
    /// The level band.
    pub band: Option<LevelBand>,
    /// Where θ comes from.
    pub source: String,
    /// Weekly θ chart.
    pub trend: Chart,
    /// The goal in words.
    pub goal_line: String,
}

/// One KPI card.
#[derive(Debug, Clone, Serialize)]
pub struct KpiView {
    /// Column name (`i_t`, …).
    pub key: &'static str,
    /// Name.
    pub name: &'static str,
    /// Display value.
    pub value: String,
    /// Raw value.
    pub raw: String,
    /// How it was measured (I_t's method).
    pub note: Option<String>,
    /// Plain-language explanation.
    pub help: &'static str,
    /// The KPI over the history weeks.
    pub spark: Sparkline,
}

/// A topic row.
#[derive(Debug, Clone, Serialize)]
pub struct TopicView {
    /// Topic id.
    pub topic: String,
    /// θ ± SE text.
    pub theta: String,
    /// Raw θ.
    pub raw: String,
    /// Responses.
    pub n: i64,
    /// `focus` / `strength` tag.
    pub tag: Option<&'static str>,
    /// The bullet.
    pub bullet: Bullet,
}

/// The segment section.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    /// Label code (`efficient`, …).
    pub code: String,
    /// Display name.
    pub name: String,
    /// Meaning.
    pub meaning: &'static str,
}

/// The subject outlook.
#[derive(Debug, Clone, Serialize)]
pub struct OutlookView {
    /// Subject id.
    pub subject: String,
    /// Chart of the mean-θ series.
    pub chart: Chart,
    /// Sentences.
    pub lines: Vec<String>,
}

/// A student's report.
#[derive(Debug, Clone, Serialize)]
pub struct StudentView {
    /// Frame.
    pub page: Page,
    /// Student id.
    pub student_id: String,
    /// Ability.
    pub ability: AbilityView,
    /// KPI cards (empty without activity this week).
    pub kpis: Vec<KpiView>,
    /// Note above the KPI cards.
    pub kpi_note: Option<String>,
    /// Sparkline caption.
    pub kpi_weeks: String,
    /// Topics, weakest first.
    pub topics: Vec<TopicView>,
    /// Difficulty chart.
    pub difficulty: Chart,
    /// Notes under the difficulty chart.
    pub difficulty_notes: Vec<String>,
    /// Segment.
    pub segment: Option<SegmentView>,
    /// Subject outlook.
    pub outlook: Option<OutlookView>,
    /// Linking rows (empty without calibration).
    pub linking: Vec<Field>,
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

/// Builds the report of `student`.
pub fn student_view(
    t: &Labels,
    lang: &'static str,
    d: &WeekData,
    run: &RunInfo,
    student: &str,
) -> StudentView {
    let theta = d.abilities.get(student).map(|a| a.0);
    let kpi = d.week_kpis.get(student);
    let weekly = d
        .weekly_theta
        .get(student)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let (fields, band, source) = ability_fields(t, d, student);
    let (trend, goal_line) = theta_trend(t, d, weekly, theta);
    let (difficulty, difficulty_notes) = difficulty_chart(t, d, student, theta);
    let segment = d.segments.get(student).map(|code| {
        let (name, meaning) = segment_text(t, code);
        SegmentView {
            code: code.clone(),
            name,
            meaning,
        }
    });
    StudentView {
        page: page(t, lang, d, run, t.student_report, student.to_string()),
        student_id: student.to_string(),
        ability: AbilityView {
            fields,
            band,
            source,
            trend,
            goal_line,
        },
        kpi_note: kpi.is_none().then(|| t.kpis_none.to_string()),
        kpis: kpi.map(|k| kpi_cards(t, d, student, k)).unwrap_or_default(),
        kpi_weeks: fill(t.kpi_weeks, &[("n", &d.history_weeks.len().to_string())]),
        topics: topic_views(t, d, student, theta),
        difficulty,
        difficulty_notes,
        segment,
        outlook: outlook(t, d, student, theta),
        linking: d
            .calibration
            .as_ref()
            .map(|c| linking_fields(t, c))
            .unwrap_or_default(),
    }
}

/// The ability fields (θ, SE, percentile in the cohort, level), the level band and
/// where θ comes from; no fields without a θ.
fn ability_fields(
    t: &Labels,
    d: &WeekData,
    student: &str,
) -> (Vec<Field>, Option<LevelBand>, String) {
    let (Some(&(th, se, n)), Some(cal)) = (d.abilities.get(student), &d.calibration) else {
        return (Vec::new(), None, t.no_theta.to_string());
    };
    let p = d
        .theta_ranks
        .get(student)
        .and_then(|&(below, upto)| percentile_rank(below, upto, d.cohort.theta.n));
    let level = level_of(th);
    let names = level_names(t);
    let fields = vec![
        field("theta", t.theta_now, num(Some(th), 2), raw(Some(th))),
        field("se", t.se, num(Some(se), 2), raw(Some(se))),
        field(
            "percentile",
            t.percentile,
            p.map(|p| format!("{p:.0}"))
                .unwrap_or_else(|| "\u{2014}".into()),
            raw(p),
        ),
        field("level", t.level, names[level].clone(), level.to_string()),
    ];
    let band = level_band(
        &LEVEL_CUTS,
        &names,
        th,
        THETA_RANGE,
        format!("{}: {} (θ = {})", t.level, names[level], num(Some(th), 2)),
    );
    let source = format!(
        "{} {}",
        fill(
            t.theta_source,
            &[("day", &cal.run_date), ("n", &n.to_string())]
        ),
        t.level_note
    );
    (fields, Some(band), source)
}

/// The KPI cards of the week (`k`) with their sparklines over the history weeks.
fn kpi_cards(t: &Labels, d: &WeekData, student: &str, k: &KpiRow) -> Vec<KpiView> {
    type Getter = fn(&KpiRow) -> Option<f64>;
    let history = d.kpi_history.get(student);
    let series = |f: Getter| -> Vec<Option<f64>> {
        d.history_weeks
            .iter()
            .map(|w| history.and_then(|h| h.get(w)).and_then(f))
            .collect()
    };
    let defs: [(
        &'static str,
        &'static str,
        &'static str,
        Getter,
        f64,
        f64,
        bool,
    ); 6] = [
        (
            "i_t",
            t.kpi_improvement,
            t.kpi_improvement_help,
            |k| k.i_t,
            -1.0,
            1.0,
            true,
        ),
        (
            "a_t",
            t.kpi_activity,
            t.kpi_activity_help,
            |k| k.a_t,
            0.0,
            1.0,
            false,
        ),
        (
            "e_t",
            t.kpi_efficiency,
            t.kpi_efficiency_help,
            |k| k.e_t,
            0.0,
            1.0,
            false,
        ),
        (
            "r_t",
            t.kpi_recovery,
            t.kpi_recovery_help,
            |k| k.r_t,
            0.0,
            1.0,
            false,
        ),
        ("s", t.kpi_churn, t.kpi_churn_help, |k| k.s, 0.0, 1.0, false),
        ("p", t.kpi_goal, t.kpi_goal_help, |k| k.p, 0.0, 1.0, false),
    ];
    defs.into_iter()
        .map(|(key, name, help, get, lo, hi, is_signed)| {
            let v = get(k);
            let values = series(get);
            let shown: Vec<String> = values
                .iter()
                .map(|v| if is_signed { signed(*v, 2) } else { pct(*v) })
                .collect();
            let note = match (key, k.method.as_deref()) {
                ("i_t", Some("theta_delta")) => Some(t.kpi_method_theta.to_string()),
                ("i_t", Some("accuracy_delta")) => Some(t.kpi_method_accuracy.to_string()),
                _ if v.is_none() => Some(
                    match key {
                        "i_t" => t.missing_i_t,
                        "r_t" => t.missing_r_t,
                        "s" => t.missing_s,
                        "p" => t.missing_p,
                        _ => t.not_available,
                    }
                    .to_string(),
                ),
                ("p", _) => match k.p_model.as_deref() {
                    Some("bayes_theta") => Some(t.kpi_goal_theta.to_string()),
                    Some("glmm_accuracy") => Some(t.kpi_goal_accuracy.to_string()),
                    _ => None,
                },
                _ => None,
            };
            KpiView {
                key,
                name,
                value: if is_signed { signed(v, 2) } else { pct(v) },
                raw: raw(v),
                note,
                help,
                spark: sparkline(&values, lo, hi, format!("{name}: {}", shown.join(", "))),
            }
        })
        .collect()
}

/// The student's topics, weakest first (ties by id), the weakest and strongest tagged
/// when there are at least three.
fn topic_views(t: &Labels, d: &WeekData, student: &str, theta: Option<f64>) -> Vec<TopicView> {
    let mut topic_rows: Vec<_> = d.topic_theta.get(student).cloned().unwrap_or_default();
    topic_rows.sort_by(|a, b| {
        a.theta
            .total_cmp(&b.theta)
            .then_with(|| a.topic_id.cmp(&b.topic_id))
    });
    let n_topics = topic_rows.len();
    topic_rows
        .iter()
        .enumerate()
        .map(|(i, tt)| {
            let tag = if n_topics >= 3 && i == 0 {
                Some(t.weakest)
            } else if n_topics >= 3 && i + 1 == n_topics {
                Some(t.strongest)
            } else {
                None
            };
            let class = match tag {
                Some(x) if x == t.weakest => "weak",
                Some(_) => "strong",
                None => "mid",
            };
            let text = format!("{} \u{b1} {}", num(Some(tt.theta), 2), num(Some(tt.se), 2));
            TopicView {
                topic: tt.topic_id.clone(),
                theta: text.clone(),
                raw: raw(Some(tt.theta)),
                n: tt.n_responses,
                tag,
                bullet: bullet(
                    tt.theta,
                    tt.se,
                    theta,
                    THETA_RANGE,
                    class,
                    format!("{}: θ {}", tt.topic_id, text),
                ),
            }
        })
        .collect()
}

/// Weekly θ with a ±1 SE band, the goal line and the goal's target week.
fn theta_trend(
    t: &Labels,
    d: &WeekData,
    weekly: &[(NaiveDate, f64, f64)],
    theta: Option<f64>,
) -> (Chart, String) {
    let goal_line = match &d.goal {
        Some(g) => fill(
            t.goal_line,
            &[
                ("goal", &num(Some(g.theta), 2)),
                ("week", &g.target_week.to_string()),
            ],
        ),
        None => t.no_goal.to_string(),
    };
    if weekly.is_empty() {
        return (empty_chart(t.trend, t.trend_empty), goal_line);
    }
    // The axis starts at the first week with a θ: the weeks of history before it hold
    // nothing to draw.
    let first = weekly.iter().map(|w| w.0).min().unwrap_or(d.week);
    let last = d
        .goal
        .as_ref()
        .map(|g| g.target_week.max(d.week))
        .unwrap_or(d.week);
    let mut ys: Vec<f64> = weekly
        .iter()
        .flat_map(|&(_, th, se)| [th - se, th + se])
        .collect();
    ys.extend(d.goal.as_ref().map(|g| g.theta));
    ys.extend(theta);
    let ymin = ys
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let ymax = ys
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    // Weeks without a θ break the line and the band (nothing is drawn across a gap).
    let by_week: BTreeMap<NaiveDate, (f64, f64)> =
        weekly.iter().map(|&(w, th, se)| (w, (th, se))).collect();
    let mut weeks: Vec<NaiveDate> = d
        .history_weeks
        .iter()
        .copied()
        .filter(|w| *w >= first)
        .collect();
    weeks.extend(
        by_week
            .keys()
            .copied()
            .filter(|w| !d.history_weeks.contains(w)),
    );
    weeks.sort();
    let pts: Vec<(f64, Option<f64>)> = weeks
        .iter()
        .map(|w| (dnum(*w), by_week.get(w).map(|v| v.0)))
        .collect();
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new()];
    for w in &weeks {
        match by_week.get(w) {
            Some(&(th, se)) => {
                if let Some(run) = runs.last_mut() {
                    run.push((dnum(*w), th - se, th + se));
                }
            }
            None => runs.push(Vec::new()),
        }
    }
    let dots: Vec<(f64, f64, String)> = weekly
        .iter()
        .map(|&(w, th, se)| {
            (
                dnum(w),
                th,
                format!("{w}: θ {} \u{b1} {}", num(Some(th), 2), num(Some(se), 2)),
            )
        })
        .collect();
    let mut f = Frame::new(
        t.trend,
        charts::HEIGHT,
        (dnum(first) - 3.0, dnum(last) + 3.0),
        (ymin, ymax),
    )
    .x_ticks(date_ticks(first, last, 7))
    .desc(t.trend_desc);
    for run in runs.iter().filter(|r| !r.is_empty()) {
        f = f.band(run, "band");
    }
    f = f
        .line(&pts, "theta")
        .dots(&dots, 3.0, "theta")
        .legend("theta", t.weekly_theta)
        .legend("band", t.trend_band);
    if let Some(g) = &d.goal {
        f = f
            .hrule(
                g.theta,
                "goal",
                format!("{} {}", t.goal, num(Some(g.theta), 2)),
            )
            .dots(
                &[(dnum(g.target_week), g.theta, goal_line.clone())],
                4.0,
                "goal",
            )
            .legend("goal", t.goal);
    }
    (f.build(), goal_line)
}

/// The week's distinct questions by difficulty, right and wrong (first attempt).
fn difficulty_chart(
    t: &Labels,
    d: &WeekData,
    student: &str,
    theta: Option<f64>,
) -> (Chart, Vec<String>) {
    let b_of: BTreeMap<&str, f64> = d
        .items
        .iter()
        .filter(|i| i.excluded_reason.is_none())
        .filter_map(|i| {
            i.b.filter(|b| b.is_finite())
                .map(|b| (i.item_id.as_str(), b))
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let (mut right, mut wrong, mut uncal) = (Vec::new(), Vec::new(), 0usize);
    for a in d.attempts.get(student).map(Vec::as_slice).unwrap_or(&[]) {
        if !seen.insert(a.question_id.as_str()) {
            continue;
        }
        match b_of.get(a.question_id.as_str()) {
            Some(&b) if a.correct => right.push(b),
            Some(&b) => wrong.push(b),
            None => uncal += 1,
        }
    }
    let mut notes = vec![t.difficulty_help.to_string()];
    if uncal > 0 {
        notes.push(fill(t.difficulty_uncal, &[("n", &uncal.to_string())]));
    }
    if right.is_empty() && wrong.is_empty() {
        return (empty_chart(t.difficulty, t.difficulty_empty), notes);
    }
    let (lo, hi, w) = (-4.0, 4.0, 0.5);
    let hr = histogram(&right, lo, hi, w);
    let hw = histogram(&wrong, lo, hi, w);
    let ymax = hr
        .iter()
        .zip(&hw)
        .map(|(a, b)| a.1 + b.1)
        .max()
        .unwrap_or(1) as f64;
    let tip = |x: f64, n: usize, what: &str| {
        format!(
            "b {}\u{2013}{}: {n} {what}",
            num(Some(x - w / 2.0), 1),
            num(Some(x + w / 2.0), 1)
        )
    };
    let right_bars: Vec<_> = hr
        .iter()
        .map(|&(x, n)| (x, 0.0, n as f64, tip(x, n, t.right)))
        .collect();
    let wrong_bars: Vec<_> = hr
        .iter()
        .zip(&hw)
        .map(|(&(x, nr), &(_, nw))| (x, nr as f64, (nr + nw) as f64, tip(x, nw, t.wrong)))
        .collect();
    let mut f = Frame::new(t.difficulty, charts::HEIGHT, (lo, hi), (0.0, ymax.max(2.0)))
        .numeric_x_ticks(8)
        .desc(t.difficulty_desc)
        .bars(&right_bars, w, "right")
        .bars(&wrong_bars, w, "wrong")
        .legend("right", t.right)
        .legend("wrong", t.wrong);
    if let Some(th) = theta {
        f = f.vrule(th, "you", format!("{} {}", t.your_theta, num(Some(th), 2)));
    }
    (f.build(), notes)
}

/// The student's main subject this week (most attempts; ties by id).
pub fn main_subject(d: &WeekData, student: &str) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in d.attempts.get(student).map(Vec::as_slice).unwrap_or(&[]) {
        if let Some(s) = a.subject_id.as_deref() {
            *counts.entry(s).or_default() += 1;
        }
    }
    let best = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(s, _)| s.to_string())
}

/// A forecast chart of one series: history, forecast band and line, anomalies, with
/// `y_label` as the title of its y axis (what the series counts or measures).
pub fn forecast_chart(
    t: &Labels,
    d: &WeekData,
    series: &str,
    title: &str,
    y_label: &str,
    reference: Option<(f64, String)>,
) -> Option<Chart> {
    let fc = d.forecasts.get(series)?;
    let hist = d.history.get(series).map(Vec::as_slice).unwrap_or(&[]);
    let an = d.anomalies.get(series).map(Vec::as_slice).unwrap_or(&[]);
    let first = hist
        .first()
        .map(|h| h.0)
        .into_iter()
        .chain(fc.first().map(|f| f.day))
        .chain(an.iter().map(|a| a.day))
        .min()?;
    let last = fc.last().map(|f| f.day)?;
    let mut ys: Vec<f64> = hist.iter().map(|h| h.1).collect();
    ys.extend(fc.iter().flat_map(|f| [f.lo, f.hi]));
    ys.extend(an.iter().map(|a| a.value));
    ys.extend(reference.as_ref().map(|r| r.0));
    let ymin = ys
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let ymax = ys
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let hist_pts: Vec<_> = hist.iter().map(|&(day, v)| (dnum(day), Some(v))).collect();
    let band: Vec<_> = fc.iter().map(|f| (dnum(f.day), f.lo, f.hi)).collect();
    let yhat: Vec<_> = fc.iter().map(|f| (dnum(f.day), Some(f.yhat))).collect();
    let anomalies: Vec<_> = an
        .iter()
        .map(|a| {
            (
                dnum(a.day),
                a.value,
                format!(
                    "{} {}: {} ({} {})",
                    t.anomaly,
                    a.day,
                    num(Some(a.value), 2),
                    t.forecast,
                    num(Some(a.expected), 2)
                ),
            )
        })
        .collect();
    let desc = format!(
        "{title}: {} {}\u{2013}{}, {} {}\u{2013}{}",
        t.history,
        hist.first().map(|h| h.0.to_string()).unwrap_or_default(),
        hist.last().map(|h| h.0.to_string()).unwrap_or_default(),
        t.forecast,
        fc.first().map(|f| f.day.to_string()).unwrap_or_default(),
        last
    );
    let mut f = Frame::new(
        title,
        charts::HEIGHT,
        (dnum(first), dnum(last)),
        (ymin, ymax),
    )
    .x_ticks(date_ticks(first, last, 7))
    .y_label(y_label)
    .desc(desc)
    .band(&band, "fband")
    .line(&hist_pts, "hist")
    .line(&yhat, "fline")
    .dots(&anomalies, 3.5, "anomaly")
    .legend("hist", t.history)
    .legend("fline", t.forecast)
    .legend("fband", t.interval80);
    if !anomalies.is_empty() {
        f = f.legend("anomaly", t.anomaly);
    }
    if let Some((y, label)) = reference {
        f = f.hrule(y, "you", label);
    }
    Some(f.build())
}

fn outlook(t: &Labels, d: &WeekData, student: &str, theta: Option<f64>) -> Option<OutlookView> {
    let subject = main_subject(d, student)?;
    let series = format!("{subject}:mean_theta");
    let chart = forecast_chart(
        t,
        d,
        &series,
        &format!("{subject}: {}", t.series_mean_theta),
        t.theta_axis,
        theta.map(|th| (th, format!("{} {}", t.your_theta, num(Some(th), 2)))),
    )?;
    let mut lines = Vec::new();
    if let Some(last) = d.forecasts.get(&series).and_then(|f| f.last()) {
        let now = d.history.get(&series).and_then(|h| h.last()).map(|h| h.1);
        lines.push(fill(
            t.outlook_line,
            &[
                ("subject", &subject),
                ("now", &num(now, 2)),
                ("day", &last.day.to_string()),
                ("yhat", &num(Some(last.yhat), 2)),
                ("lo", &num(Some(last.lo), 2)),
                ("hi", &num(Some(last.hi), 2)),
            ],
        ));
    }
    if let Some(last) = d
        .forecasts
        .get(&format!("{subject}:active_students"))
        .and_then(|f| f.last())
    {
        lines.push(fill(
            t.outlook_active,
            &[
                ("subject", &subject),
                ("day", &last.day.to_string()),
                ("yhat", &num(Some(last.yhat), 0)),
            ],
        ));
    }
    Some(OutlookView {
        subject,
        chart,
        lines,
    })
}

/// Points `(day number, value, tooltip)` of one series over calibration runs, with its
/// CSS class and legend label.
type RunSeries<'a> = (&'a [(f64, f64, String)], &'static str, &'a str);

/// A row of the calibration health table.
#[derive(Debug, Clone, Serialize)]
pub struct HealthRow {
    /// Bank.
    pub bank: String,
    /// Model.
    pub model: String,
    /// Students.
    pub students: i64,
    /// Items.
    pub items: i64,
    /// Excluded items.
    pub excluded: i64,
    /// Converged text.
    pub converged: String,
    /// Whether it converged (styling).
    pub ok: bool,
    /// Iterations.
    pub iterations: i64,
    /// Log-likelihood.
    pub loglik: String,
    /// Linking: method, A, B.
    pub linking: String,
}

/// An anchor flagged by the drift screen, with its history over calibrations.
#[derive(Debug, Clone, Serialize)]
pub struct DriftView {
    /// Bank.
    pub bank: String,
    /// Anchor question.
    pub item: String,
    /// Run date of the first flag.
    pub first_flagged: String,
    /// "k / n": runs flagged of runs screened.
    pub runs: String,
    /// Δb by run, `MM-DD Δb` with `*` where flagged, oldest first.
    pub history: String,
}

/// Anchors flagged at least once, by bank and anchor, with their screen history.
fn drift_views(d: &WeekData) -> Vec<DriftView> {
    let mut by_anchor: BTreeMap<(&str, &str), Vec<&crate::data::DriftRow>> = BTreeMap::new();
    for r in &d.anchor_drift {
        by_anchor
            .entry((r.bank.as_str(), r.item_id.as_str()))
            .or_default()
            .push(r);
    }
    by_anchor
        .into_iter()
        .map(|((bank, item), rows)| DriftView {
            bank: bank.to_string(),
            item: item.to_string(),
            first_flagged: rows
                .iter()
                .find(|r| r.flagged)
                .map(|r| r.run_date.clone())
                .unwrap_or_default(),
            runs: format!(
                "{} / {}",
                rows.iter().filter(|r| r.flagged).count(),
                rows.len()
            ),
            history: rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {}{}",
                        r.run_date.get(5..).unwrap_or(&r.run_date),
                        num(Some(r.diff_b), 2),
                        if r.flagged { "*" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

/// Misfitting items of each bank's latest calibration in words, one line per item.
fn misfit_lines(t: &Labels, d: &WeekData) -> Vec<String> {
    let latest = latest_by_bank(d);
    d.misfit
        .iter()
        .filter(|m| latest.get(m.bank.as_str()).map(|f| f.run_date.as_str()) == Some(&m.run_date))
        .map(|m| {
            let mut reasons = Vec::new();
            if let Some((v, df, p)) = m.s_x2.filter(|x| x.2 < 0.01) {
                reasons.push(fill(
                    t.misfit_sx2,
                    &[
                        ("v", &num(Some(v), 1)),
                        ("df", &df.to_string()),
                        ("p", &format!("{p:.2e}")),
                    ],
                ));
            }
            for (stat, v) in [("infit", m.infit), ("outfit", m.outfit)] {
                let Some(v) = v.filter(|v| v.is_finite()) else {
                    continue;
                };
                let label = if v > 1.3 {
                    t.misfit_noisy
                } else if v < 0.7 {
                    t.misfit_steep
                } else {
                    continue;
                };
                reasons.push(fill(label, &[("stat", stat), ("v", &num(Some(v), 2))]));
            }
            format!("{} {}: {}", m.bank, m.item_id, reasons.join("; "))
        })
        .collect()
}

/// A KPI distribution.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// Chart.
    pub chart: Chart,
    /// n, mean, median.
    pub summary: String,
}

/// A segment row.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentRow {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Students.
    pub n: usize,
    /// Share.
    pub share: String,
    /// Meaning.
    pub meaning: &'static str,
}

/// Forecast charts of one subject.
#[derive(Debug, Clone, Serialize)]
pub struct ForecastGroup {
    /// Subject.
    pub subject: String,
    /// Charts with their anomaly counts.
    pub charts: Vec<Distribution>,
}

/// The cohort report.
#[derive(Debug, Clone, Serialize)]
pub struct CohortView {
    /// Frame.
    pub page: Page,
    /// Key figures.
    pub overview: Vec<Field>,
    /// Latest calibration of each bank.
    pub health: Vec<HealthRow>,
    /// Exclusions in words.
    pub exclusions: Vec<String>,
    /// Misfitting items in words: "bank item: reason; reason".
    pub misfit: Vec<String>,
    /// Anchors the drift screen flagged, with their history.
    pub drift: Vec<DriftView>,
    /// Misfitting items and flagged anchors of bank `all` by run.
    pub fit_history_chart: Chart,
    /// Log-likelihood per response by run.
    pub loglik_chart: Chart,
    /// Test information curve.
    pub info_chart: Chart,
    /// Where the bank is most precise.
    pub info_note: String,
    /// Linking constants over time.
    pub linking_chart: Chart,
    /// Linking of the calibration the θs come from.
    pub linking: Vec<Field>,
    /// θ distribution.
    pub theta: Distribution,
    /// KPI distributions.
    pub kpis: Vec<Distribution>,
    /// Kaplan–Meier curve.
    pub km_chart: Chart,
    /// KM sentences.
    pub km_lines: Vec<String>,
    /// Segment bar chart (empty rows: no segments).
    pub segment_chart: HBars,
    /// Segment rows.
    pub segments: Vec<SegmentRow>,
    /// Forecasts by subject.
    pub forecasts: Vec<ForecastGroup>,
}

/// "n = … · mean … · median …" of a distribution (`n = 0` when empty).
fn summary(t: &Labels, s: &DistStats, decimals: usize) -> String {
    match (s.mean, s.median) {
        (Some(mean), Some(median)) if s.n > 0 => format!(
            "n = {} \u{b7} {} {} \u{b7} {} {}",
            s.n,
            t.mean,
            num(Some(mean), decimals),
            t.median,
            num(Some(median), decimals)
        ),
        _ => "n = 0".into(),
    }
}

/// The histogram of a cohort distribution (on `bins`) with its summary.
fn distribution(t: &Labels, title: &str, s: &DistStats, bins: Bins) -> Distribution {
    if s.n == 0 {
        return Distribution {
            chart: empty_chart(title, t.no_data),
            summary: "n = 0".into(),
        };
    }
    let w = bins.width;
    let ymax = s.hist.iter().map(|x| x.1).max().unwrap_or(1) as f64;
    let bars: Vec<_> = s
        .hist
        .iter()
        .map(|&(x, n)| {
            (
                x,
                0.0,
                n as f64,
                format!(
                    "{}\u{2013}{}: {n}",
                    num(Some(x - w / 2.0), 2),
                    num(Some(x + w / 2.0), 2)
                ),
            )
        })
        .collect();
    Distribution {
        chart: Frame::new(title, 160.0, (bins.lo, bins.hi), (0.0, ymax.max(1.0)))
            .numeric_x_ticks(4)
            .desc(format!("{title}: {}", summary(t, s, 2)))
            .bars(&bars, w, "bar")
            .build(),
        summary: summary(t, s, 2),
    }
}

/// Builds the cohort report from the cohort aggregates of `d` (and its small tables:
/// calibrations, items, Kaplan–Meier, forecasts).
pub fn cohort_view(t: &Labels, lang: &'static str, d: &WeekData, run: &RunInfo) -> CohortView {
    let mean_theta = d.cohort.theta.mean;
    let (loglik_chart, linking_chart) = calibration_charts(t, d);
    let (info_chart, info_note) = test_information(t, d, mean_theta);
    let (km_chart, km_lines) = kaplan_meier(t, d);
    let (segments, segment_chart) = segment_sizes(t, d);
    CohortView {
        page: page(
            t,
            lang,
            d,
            run,
            t.cohort_report,
            t.cohort_report.to_string(),
        ),
        overview: overview_fields(t, d),
        health: health_rows(t, d),
        exclusions: d
            .exclusions
            .iter()
            .map(|(bank, reason, n)| format!("{bank}: {reason} \u{d7} {n}"))
            .collect(),
        misfit: misfit_lines(t, d),
        drift: drift_views(d),
        fit_history_chart: fit_history_chart(t, d),
        loglik_chart,
        info_chart,
        info_note,
        linking_chart,
        linking: d
            .calibration
            .as_ref()
            .map(|c| linking_fields(t, c))
            .unwrap_or_default(),
        theta: distribution(t, t.theta_distribution, &d.cohort.theta, THETA_BINS),
        kpis: kpi_distributions(t, d),
        km_chart,
        km_lines,
        segment_chart,
        segments,
        forecasts: forecast_groups(t, d),
    }
}

/// Key figures: students active this week, students with θ, mean θ.
fn overview_fields(t: &Labels, d: &WeekData) -> Vec<Field> {
    let (active, with_theta) = (d.cohort.students_active, d.cohort.theta.n);
    let mean_theta = d.cohort.theta.mean;
    vec![
        field(
            "students_active",
            t.students_active,
            active.to_string(),
            active.to_string(),
        ),
        field(
            "students_with_theta",
            t.students_with_theta,
            with_theta.to_string(),
            with_theta.to_string(),
        ),
        field(
            "mean_theta",
            t.mean_theta,
            num(mean_theta, 2),
            raw(mean_theta),
        ),
    ]
}

/// The latest calibration of each bank (`fit_history` is in run-date order).
fn latest_by_bank(d: &WeekData) -> BTreeMap<&str, &FitRow> {
    d.fit_history.iter().map(|f| (f.bank.as_str(), f)).collect()
}

/// Calibration health: the latest run of each bank, with its excluded items when it
/// is of the latest run date.
fn health_rows(t: &Labels, d: &WeekData) -> Vec<HealthRow> {
    let latest = latest_by_bank(d);
    let last_run = d.fit_history.last().map(|f| f.run_date.clone());
    latest
        .values()
        .map(|f| {
            let excluded = if Some(&f.run_date) == last_run.as_ref() {
                d.exclusions
                    .iter()
                    .filter(|e| e.0 == f.bank)
                    .map(|e| e.2)
                    .sum()
            } else {
                0
            };
            HealthRow {
                bank: f.bank.clone(),
                model: f.model.to_uppercase(),
                students: f.n_students,
                items: f.n_items,
                excluded,
                converged: if f.converged { t.yes } else { t.no }.to_string(),
                ok: f.converged,
                iterations: f.iterations,
                loglik: num(f.loglik, 1),
                linking: format!(
                    "{} A {} B {}",
                    f.linking_method,
                    num(f.linking_a, 3),
                    num(f.linking_b, 3)
                ),
            }
        })
        .collect()
}

/// Log-likelihood per response and linking constants of bank `all` by run.
fn calibration_charts(t: &Labels, d: &WeekData) -> (Chart, Chart) {
    let all: Vec<&FitRow> = d.fit_history.iter().filter(|f| f.bank == "all").collect();
    let days: Vec<NaiveDate> = all.iter().filter_map(|f| f.run_date.parse().ok()).collect();
    let run_series = |get: &dyn Fn(&FitRow) -> Option<f64>| -> Vec<(f64, f64, String)> {
        all.iter()
            .zip(&days)
            .filter_map(|(f, day)| {
                get(f).map(|v| (dnum(*day), v, format!("{}: {}", f.run_id, num(Some(v), 4))))
            })
            .collect()
    };
    let ll = run_series(&|f| {
        f.loglik
            .filter(|_| f.n_responses > 0)
            .map(|l| l / f.n_responses as f64)
    });
    let loglik_chart = run_chart(
        t,
        t.loglik_trend,
        t.loglik_trend_desc,
        &[(&ll, "theta", t.loglik)],
    );
    let la = run_series(&|f| f.linking_a);
    let lb = run_series(&|f| f.linking_b);
    let linking_chart = run_chart(
        t,
        t.linking_over_time,
        t.linking_over_time_desc,
        &[(&la, "theta", "A"), (&lb, "goal", "B")],
    );
    (loglik_chart, linking_chart)
}

/// Misfitting items and flagged anchors of bank `all` by calibration run.
fn fit_history_chart(t: &Labels, d: &WeekData) -> Chart {
    let count = |run: &str, n: usize| -> Option<(f64, f64, String)> {
        let day: NaiveDate = run.parse().ok()?;
        Some((dnum(day), n as f64, format!("{run}: {n}")))
    };
    let runs: Vec<&str> = d
        .fit_history
        .iter()
        .filter(|f| f.bank == "all")
        .map(|f| f.run_date.as_str())
        .collect();
    let misfit: Vec<(f64, f64, String)> = runs
        .iter()
        .filter_map(|run| {
            let n = d
                .misfit
                .iter()
                .filter(|m| m.bank == "all" && m.run_date == *run)
                .count();
            count(run, n)
        })
        .collect();
    let drift: Vec<(f64, f64, String)> = runs
        .iter()
        .filter_map(|run| {
            let n = d
                .anchor_drift
                .iter()
                .filter(|a| a.bank == "all" && a.run_date == *run && a.flagged)
                .count();
            count(run, n)
        })
        .collect();
    run_chart(
        t,
        t.fit_history,
        t.fit_history_desc,
        &[
            (&misfit, "theta", t.misfit),
            (&drift, "goal", t.anchor_drift),
        ],
    )
}

/// A chart of series over calibration runs (dates on x).
fn run_chart(t: &Labels, title: &str, desc: &str, series: &[RunSeries<'_>]) -> Chart {
    let pts: Vec<&(f64, f64, String)> = series.iter().flat_map(|s| s.0.iter()).collect();
    if pts.is_empty() {
        return empty_chart(title, t.no_calibration);
    }
    let (x0, x1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.0), a.1.max(p.0))
    });
    let (y0, y1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.1), a.1.max(p.1))
    });
    let (dx0, dx1) = (x0 - 3.0, x1 + 3.0);
    let mut f = Frame::new(title, 170.0, (dx0, dx1), (y0, y1))
        .x_ticks(run_ticks(pts.iter().map(|p| p.0)))
        .desc(desc);
    for (s, class, label) in series {
        let line: Vec<_> = s.iter().map(|p| (p.0, Some(p.1))).collect();
        f = f
            .line(&line, class)
            .dots(s, 3.0, class)
            .legend(class, *label);
    }
    f.build()
}

/// Test information of the bank the θs come from, with the cohort's mean θ marked,
/// and where it peaks.
fn test_information(t: &Labels, d: &WeekData, mean_theta: Option<f64>) -> (Chart, String) {
    let items: Vec<models::irt::ItemParams> = d
        .items
        .iter()
        .filter(|i| i.excluded_reason.is_none())
        .filter_map(|i| match (i.a, i.b) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some(models::irt::ItemParams {
                a,
                b,
                c: i.c.filter(|c| c.is_finite()).unwrap_or(0.0),
            }),
            _ => None,
        })
        .collect();
    if items.is_empty() {
        return (
            empty_chart(t.test_information, t.no_calibration),
            String::new(),
        );
    }
    let grid: Vec<f64> = (0..=80).map(|k| -4.0 + 0.1 * f64::from(k)).collect();
    let info: Vec<f64> = grid
        .iter()
        .map(|&th| models::irt::test_information(&items, th))
        .collect();
    let (k, peak) = info
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |a, (k, v)| if v > a.1 { (k, v) } else { a },
        );
    let pts: Vec<_> = grid
        .iter()
        .zip(&info)
        .map(|(&x, &y)| (x, Some(y)))
        .collect();
    let mut f = Frame::new(t.test_information, charts::HEIGHT, (-4.0, 4.0), (0.0, peak))
        .numeric_x_ticks(8)
        .desc(format!(
            "{} {} items.",
            t.test_information_desc,
            items.len()
        ))
        .line(&pts, "theta")
        .legend("theta", t.information);
    if let Some(m) = mean_theta {
        f = f.vrule(m, "you", format!("{} {}", t.cohort_mean, num(Some(m), 2)));
    }
    let note = fill(
        t.info_peak,
        &[
            ("theta", &num(Some(grid[k]), 1)),
            ("info", &num(Some(peak), 1)),
            ("se", &num(Some(1.0 / peak.sqrt()), 2)),
        ],
    );
    (f.build(), note)
}

/// The week's KPI distributions, in [`COHORT_KPIS`] order.
fn kpi_distributions(t: &Labels, d: &WeekData) -> Vec<Distribution> {
    COHORT_KPIS
        .iter()
        .map(|(key, bins)| {
            let name = match *key {
                "i_t" => t.kpi_improvement,
                "a_t" => t.kpi_activity,
                "e_t" => t.kpi_efficiency,
                "r_t" => t.kpi_recovery,
                "s" => t.kpi_churn,
                _ => t.kpi_goal,
            };
            let empty = DistStats::default();
            let stats = d.cohort.kpis.get(*key).unwrap_or(&empty);
            distribution(t, name, stats, *bins)
        })
        .collect()
}

/// The Kaplan–Meier curve with its 95% band, and its summary sentences.
fn kaplan_meier(t: &Labels, d: &WeekData) -> (Chart, Vec<String>) {
    if d.km.is_empty() {
        return (
            empty_chart(t.churn_km, t.km_none),
            vec![t.km_none.to_string()],
        );
    }
    let mut km_lines = Vec::new();
    let mut steps = vec![(0.0, 1.0)];
    steps.extend(d.km.iter().map(|k| (k.time_days, k.surv)));
    let tmax = d.km.last().map(|k| k.time_days).unwrap_or(1.0).max(1.0);
    // 95% pointwise band (Greenwood), stepped like the curve.
    let mut band: Vec<(f64, f64, f64)> = vec![(0.0, 1.0, 1.0)];
    let mut prev = (1.0, 1.0);
    for k in &d.km {
        let se = k.se.unwrap_or(0.0);
        let cur = ((k.surv - 1.96 * se).max(0.0), (k.surv + 1.96 * se).min(1.0));
        band.push((k.time_days, prev.0, prev.1));
        band.push((k.time_days, cur.0, cur.1));
        prev = cur;
    }
    band.push((tmax * 1.05, prev.0, prev.1));
    let ymin = band.iter().map(|b| b.1).fold(1.0, f64::min);
    let dots: Vec<_> =
        d.km.iter()
            .map(|k| {
                (
                    k.time_days,
                    k.surv,
                    format!(
                        "{} {}: {} {} (n = {})",
                        num(Some(k.time_days), 0),
                        t.days,
                        pct(Some(k.surv)),
                        t.retained,
                        k.n_risk.map(|n| n.to_string()).unwrap_or_default()
                    ),
                )
            })
            .collect();
    let diag = |k: &str| d.churn_diag.get(k).copied();
    km_lines.push(fill(
        t.km_summary,
        &[
            ("n", &num(diag("n"), 0)),
            ("events", &num(diag("events"), 0)),
            ("c", &num(diag("concordance"), 3)),
        ],
    ));
    // Students seen on one day only churn at day 0: say so, or the first step looks
    // like a drawing error.
    if let (Some(first), Some(n)) = (d.km.first(), diag("n")) {
        let lost = ((1.0 - first.surv) * n).round();
        if first.time_days == 0.0 && lost >= 1.0 {
            km_lines.push(fill(
                t.km_day0,
                &[
                    ("n", &num(Some(lost), 0)),
                    ("share", &pct(Some(1.0 - first.surv))),
                ],
            ));
        }
    }
    if let Some(m) = d.km.iter().find(|k| k.surv <= 0.5) {
        km_lines.push(fill(t.km_median, &[("d", &num(Some(m.time_days), 0))]));
    }
    let chart = Frame::new(
        t.churn_km,
        charts::HEIGHT,
        (0.0, tmax * 1.05),
        (ymin.min(0.5), 1.0),
    )
    .numeric_x_ticks(6)
    .x_label(t.km_axis)
    .desc(t.churn_km_desc)
    .band(&band, "band")
    .steps(&steps, tmax * 1.05, "theta")
    .dots(&dots, 2.0, "theta")
    .legend("theta", t.retained)
    .build();
    (chart, km_lines)
}

/// Segment sizes, largest first (ties by code), and their bar chart.
fn segment_sizes(t: &Labels, d: &WeekData) -> (Vec<SegmentRow>, HBars) {
    let counts = &d.cohort.segments;
    let total: usize = counts.values().sum();
    let mut segments: Vec<SegmentRow> = counts
        .iter()
        .map(|(code, n)| {
            let (name, meaning) = segment_text(t, code);
            SegmentRow {
                code: code.to_string(),
                name,
                n: *n,
                share: pct(Some(*n as f64 / total.max(1) as f64)),
                meaning,
            }
        })
        .collect();
    segments.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.code.cmp(&b.code)));
    let chart = hbars(
        &segments
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.n as f64,
                    format!("{} ({})", s.n, s.share),
                    format!("{}: {} ({})", s.name, s.n, s.share),
                )
            })
            .collect::<Vec<_>>(),
        t.segment_sizes_desc.to_string(),
    );
    (segments, chart)
}

/// The forecast charts by subject, with their anomaly counts.
fn forecast_groups(t: &Labels, d: &WeekData) -> Vec<ForecastGroup> {
    let mut groups: BTreeMap<String, Vec<Distribution>> = BTreeMap::new();
    for series in d.forecasts.keys() {
        let (subject, kind) = series.rsplit_once(':').unwrap_or((series.as_str(), ""));
        let kind_label = match kind {
            "active_students" => t.series_active_students,
            "mean_theta" => t.series_mean_theta,
            "mean_i_t" => t.series_mean_i_t,
            other => other,
        };
        let title = format!("{subject}: {kind_label}");
        if let Some(chart) = forecast_chart(t, d, series, &title, kind_label, None) {
            let n = d.anomalies.get(series).map_or(0, Vec::len);
            groups
                .entry(subject.to_string())
                .or_default()
                .push(Distribution {
                    chart,
                    summary: if n == 1 {
                        t.anomalies_1.to_string()
                    } else {
                        fill(t.anomalies_n, &[("n", &n.to_string())])
                    },
                });
        }
    }
    groups
        .into_iter()
        .map(|(subject, charts)| ForecastGroup { subject, charts })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run-chart ticks sit on the runs: one run gets its own date (a 2026-02-01 run was
    /// labelled with the date three days before it, at the plot's left edge), many runs
    /// at most six ticks, the last run always among them.
    /// The θ-by-week axis spans the weeks with a θ (and the goal's week), not the
    /// weeks of history before the first θ: with θ in the last two of nine history weeks,
    /// the first tick is the first θ week and the first point sits at the plot's left
    /// edge (3 days of margin out of the 13 the axis spans).
    #[test]
    fn theta_trend_axis_starts_at_the_first_theta() {
        let week = |s: &str| -> NaiveDate { s.parse().expect("date") };
        let d = WeekData {
            week: week("2026-03-02"),
            history_weeks: (0..9u64)
                .rev()
                .map(|k| week("2026-03-02") - Days::new(7 * k))
                .collect(),
            ..WeekData::default()
        };
        let weekly = [
            (week("2026-02-23"), 0.2, 0.3),
            (week("2026-03-02"), 0.5, 0.3),
        ];
        let (chart, _) = theta_trend(&crate::labels::EN, &d, &weekly, None);
        assert_eq!(
            chart.x_ticks.first().map(|t| t.label.as_str()),
            Some("02-23")
        );
        let first_dot = chart.dots.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
        let p = chart.plot;
        assert!(
            (first_dot - p.x - 3.0 / 13.0 * p.w).abs() < 1.0,
            "first θ at {first_dot}, plot {p:?}"
        );
    }

    /// A KPI missing this week says why under its card, in both languages.
    #[test]
    fn missing_kpis_say_why() {
        let d = WeekData::default();
        let k = KpiRow {
            a_t: Some(0.4),
            e_t: Some(0.5),
            ..KpiRow::default()
        };
        for t in [&crate::labels::EN, &crate::labels::KO] {
            let cards = kpi_cards(t, &d, "s1", &k);
            let note = |key: &str| {
                cards
                    .iter()
                    .find(|c| c.key == key)
                    .and_then(|c| c.note.clone())
            };
            assert_eq!(note("i_t").as_deref(), Some(t.missing_i_t));
            assert_eq!(note("r_t").as_deref(), Some(t.missing_r_t));
            assert_eq!(note("s").as_deref(), Some(t.missing_s));
            assert_eq!(note("p").as_deref(), Some(t.missing_p));
            assert_eq!(note("a_t"), None);
        }
    }

    #[test]
    fn run_ticks_are_the_runs_dates() {
        let day = |s: &str| dnum(s.parse().expect("date"));
        assert_eq!(
            run_ticks([day("2026-02-01")]),
            [(day("2026-02-01"), "02-01".into())]
        );
        let weekly: Vec<f64> = (0..9)
            .map(|w| day("2026-01-08") + 7.0 * f64::from(w))
            .collect();
        let t = run_ticks(weekly.iter().copied());
        assert!(t.len() <= 6, "{t:?}");
        assert_eq!(t.first().map(|x| x.1.as_str()), Some("01-08"));
        assert_eq!(t.last().map(|x| x.1.as_str()), Some("03-05"));
        assert!(t.windows(2).all(|w| w[1].0 - w[0].0 >= 7.0), "{t:?}");
        assert!(run_ticks([f64::NAN]).is_empty());
    }

    #[test]
    fn formats_numbers_percentiles_and_levels() {
        assert_eq!(num(Some(-0.123), 2), "\u{2212}0.12");
        assert_eq!(num(Some(-0.001), 2), "0.00");
        assert_eq!(num(None, 2), "\u{2014}");
        assert_eq!(signed(Some(0.25), 2), "+0.25");
        assert_eq!(signed(Some(0.001), 2), "0.00");
        assert_eq!(pct(Some(0.634)), "63%");
        assert_eq!(pct(Some(0.001)), "<1%");
        assert_eq!(pct(Some(0.0)), "0%");
        let sorted = [-1.0, 0.0, 0.0, 1.0];
        assert_eq!(percentile(&sorted, 0.0), Some(50.0));
        assert_eq!(percentile(&sorted, 2.0), Some(100.0));
        assert_eq!(percentile(&[], 0.0), None);
        assert_eq!(level_of(-2.0), 0);
        assert_eq!(level_of(-0.5), 2);
        assert_eq!(level_of(0.49), 2);
        assert_eq!(level_of(3.0), 4);
    }
}
