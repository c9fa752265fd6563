//! The cohort (operations) report: its view model ([`CohortView`] and its rows) and
//! how it is built from the cohort aggregates of [`WeekData`] — calibration health,
//! misfit and anchor drift, test information, linking over time, KPI distributions,
//! Kaplan–Meier retention, segment sizes and forecasts.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::charts::{self, Chart, Frame, HBars, empty_chart, hbars};
use crate::data::{Bins, COHORT_KPIS, DistStats, FitRow, THETA_BINS, WeekData};
use crate::labels::{Labels, fill, segment_text};

use super::format::{dnum, num, pct, raw, run_ticks};
use super::{Field, Page, RunInfo, field, forecast_chart, linking_fields, page};

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
    /// Δb by run, `MM-DD Δb` with `*` where flagged and the recent period's shift where
    /// the time-split test flagged it, oldest first.
    pub history: String,
}

/// Anchors flagged at least once, by bank and anchor, with their screen history.
fn drift_views(t: &Labels, d: &WeekData) -> Vec<DriftView> {
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
                    let recent = r
                        .recent_shift_b
                        .map(|s| format!(" ({} {})", t.recent, num(Some(s), 2)))
                        .unwrap_or_default();
                    format!(
                        "{} {}{}{recent}",
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
        drift: drift_views(t, d),
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
    let runs: Vec<&str> = d
        .fit_history
        .iter()
        .filter(|f| f.bank == "all")
        .map(|f| f.run_date.as_str())
        .collect();
    // one point per run of bank `all`: (day, count, tooltip)
    let per_run = |count_of: &dyn Fn(&str) -> usize| -> Vec<(f64, f64, String)> {
        runs.iter()
            .filter_map(|&run| {
                let day: NaiveDate = run.parse().ok()?;
                let n = count_of(run);
                Some((dnum(day), n as f64, format!("{run}: {n}")))
            })
            .collect()
    };
    let misfit = per_run(&|run| {
        d.misfit
            .iter()
            .filter(|m| m.bank == "all" && m.run_date == run)
            .count()
    });
    let drift = per_run(&|run| {
        d.anchor_drift
            .iter()
            .filter(|a| a.bank == "all" && a.run_date == run && a.flagged)
            .count()
    });
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
