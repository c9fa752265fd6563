//! The Kaplan–Meier estimator with Greenwood standard errors.

use serde::{Deserialize, Serialize};

use super::{Result, validate_times};

/// One step of the Kaplan–Meier curve, at a time with at least one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KmRow {
    /// The event time (caller's unit, days for churn).
    pub time: f64,
    /// Subjects at risk just before `time`: those with observed time ≥ `time`
    /// (including the ones censored at `time`, R's `n.risk`).
    pub n_risk: usize,
    /// Events at `time` (R's `n.event`).
    pub events: usize,
    /// Censorings at exactly `time`, counted after the events (R's `n.censor` at this
    /// time). Censorings at times without an event have no row of their own; they show
    /// as the drop of `n_risk` between rows:
    /// `n_risk − events − censored − n_risk(next row)` subjects were censored strictly
    /// between this event time and the next.
    pub censored: usize,
    /// Kaplan–Meier survival Ŝ(t) = Π_{tⱼ ≤ t} (1 − dⱼ/nⱼ), just after `time`.
    pub surv: f64,
    /// Greenwood standard error of Ŝ(t): Ŝ(t) · √(Σ_{tⱼ ≤ t} dⱼ / (nⱼ(nⱼ − dⱼ))), as the
    /// `std.err` column of R's `summary(survfit(...))` (the `std.err` component of the
    /// survfit object itself is the SE of the cumulative hazard, without the Ŝ factor).
    /// Once Ŝ reaches 0 (every subject still at risk has the event) the Greenwood term
    /// is infinite and R prints NaN; this row reports 0.
    pub se: f64,
}

/// A Kaplan–Meier curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KaplanMeier {
    /// Number of subjects.
    pub n: usize,
    /// Total number of events.
    pub events: usize,
    /// Total number of censored subjects.
    pub censored: usize,
    /// One row per distinct event time, ascending. Empty when there are no events
    /// (the curve is then 1 throughout).
    pub rows: Vec<KmRow>,
}

impl KaplanMeier {
    /// Ŝ(t) as a right-continuous step function: 1 before the first event time, the
    /// value of the last row with `time ≤ t` after it, constant after the last event
    /// time (as R's `summary(fit, times = t, extend = TRUE)`; callers extrapolating past
    /// the largest observed time should know that nothing was observed there).
    pub fn surv_at(&self, t: f64) -> f64 {
        let k = self.rows.partition_point(|r| r.time <= t);
        if k == 0 { 1.0 } else { self.rows[k - 1].surv }
    }

    /// Median survival time as R's `survival` reports it: the first event time at which
    /// Ŝ ≤ 0.5; when Ŝ equals 0.5 (within √ε) on a whole interval, the midpoint of
    /// that time and the next event time. `None` when Ŝ never reaches 0.5.
    pub fn median(&self) -> Option<f64> {
        let tol = f64::EPSILON.sqrt();
        let first = self.rows.iter().position(|r| r.surv < 0.5 + tol)?;
        let r = &self.rows[first];
        if (r.surv - 0.5).abs() < tol
            && let Some(next) = self.rows[first + 1..].iter().find(|n| n.surv < r.surv)
        {
            return Some(0.5 * (r.time + next.time));
        }
        Some(r.time)
    }
}

/// The Kaplan–Meier estimate of the survival function with Greenwood standard errors.
///
/// `time[i]` ≥ 0 is subject i's event or censoring time, `event[i]` whether it was an
/// event. At a time with both events and censorings the events come first (the
/// censored subjects are at risk for them), as R's `survfit`. Output: one [`KmRow`]
/// per distinct event time, ascending.
///
/// Errors: [`super::SurvivalError::LengthMismatch`], [`super::SurvivalError::Empty`],
/// [`super::SurvivalError::NonFinite`], [`super::SurvivalError::NegativeTime`]. No
/// events is not an error (empty `rows`).
pub fn kaplan_meier(time: &[f64], event: &[bool]) -> Result<KaplanMeier> {
    validate_times(time, event)?;
    let n = time.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| time[a].total_cmp(&time[b]));
    let mut rows = Vec::new();
    let mut at_risk = n;
    let mut surv = 1.0;
    let mut greenwood = 0.0;
    let mut i = 0;
    while i < n {
        let t = time[order[i]];
        let (mut d, mut c) = (0usize, 0usize);
        let mut j = i;
        while j < n && time[order[j]] == t {
            if event[order[j]] {
                d += 1;
            } else {
                c += 1;
            }
            j += 1;
        }
        if d > 0 {
            let (nr, df) = (at_risk as f64, d as f64);
            surv *= 1.0 - df / nr;
            if at_risk > d {
                greenwood += df / (nr * (nr - df));
            }
            let se = if at_risk > d {
                surv * greenwood.sqrt()
            } else {
                0.0
            };
            rows.push(KmRow {
                time: t,
                n_risk: at_risk,
                events: d,
                censored: c,
                surv,
                se,
            });
        }
        at_risk -= d + c;
        i = j;
    }
    let events = event.iter().filter(|&&e| e).count();
    Ok(KaplanMeier {
        n,
        events,
        censored: n - events,
        rows,
    })
}
