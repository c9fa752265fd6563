//! Formatting shared by both reports: numbers (typographic minus, percentages, raw
//! `data-value` text), dates and axis ticks, percentile ranks and the named θ levels.

use chrono::{Datelike, Days, NaiveDate};

use crate::labels::Labels;

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
pub(super) fn raw(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v}"))
        .unwrap_or_default()
}

/// Days since 1970-01-01 (the x coordinate of dates).
pub(super) fn dnum(d: NaiveDate) -> f64 {
    f64::from(d.num_days_from_ce() - 719_163)
}

fn mmdd(d: NaiveDate) -> String {
    d.format("%m-%d").to_string()
}

/// Date ticks: every `step` days from `start`, at most about six.
pub(super) fn date_ticks(start: NaiveDate, end: NaiveDate, step: u64) -> Vec<(f64, String)> {
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
pub(super) fn run_ticks(xs: impl IntoIterator<Item = f64>) -> Vec<(f64, String)> {
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

/// The smallest and largest finite values of `ys`: a chart's y range (`(∞, −∞)` when
/// none is finite).
pub fn finite_range(ys: &[f64]) -> (f64, f64) {
    ys.iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
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

pub(super) fn level_names(t: &Labels) -> Vec<String> {
    [t.level_0, t.level_1, t.level_2, t.level_3, t.level_4]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run-chart ticks sit on the runs: one run gets its own date (a 2026-02-01 run was
    /// labelled with the date three days before it, at the plot's left edge), many runs
    /// at most six ticks, the last run always among them.
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
