//! The student report: its view model ([`StudentView`] and its sections) and how it
//! is built from [`WeekData`] — ability, KPI cards, topics, θ trend, difficulty of the
//! week's questions, segment and subject outlook.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::charts::{
    self, Bullet, Chart, Frame, LevelBand, Sparkline, bullet, empty_chart, histogram, level_band,
    sparkline,
};
use crate::data::{KpiRow, WeekData};
use crate::labels::{Labels, fill, segment_text};

use super::format::{
    LEVEL_CUTS, THETA_RANGE, date_ticks, dnum, finite_range, level_names, level_of, num, pct,
    percentile_rank, raw, signed,
};
use super::{Field, Page, RunInfo, field, forecast_chart, linking_fields, page};

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
    let (ymin, ymax) = finite_range(&ys);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::KpiRow;
    use chrono::{Days, NaiveDate};

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
}
