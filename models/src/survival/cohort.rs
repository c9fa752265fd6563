//! The churn cohort as survival data (DESIGN §4): from each student's activity in the
//! churn window, the event, the time at risk and the covariates of the Cox model. Pure
//! decisions only; the churn stage reads the activity and writes the scores.
//!
//! * **Event.** A student **churned** when the last active day is at least
//!   `gap_days` before the run date (no activity for that long).
//! * **Time** (days). From the first active day to the last one when churned, else to
//!   the run date (censored): `end − first`, at least 0.
//! * **Covariates**, in this order: sessions per week of follow-up (follow-up =
//!   `end − first + 1` days, at least 7, so a student seen on one day is not given seven
//!   sessions a week), accuracy, hints per item, θ, and the latest weekly I_t.
//! * **Missing values.** A student without θ gets the mean θ of the students that have
//!   one (0 when none does); a student without I_t gets 0 (no measured improvement).
//!   Both are counted.

/// A student's activity in the churn window; days are day numbers (e.g. days since the
/// Unix epoch), comparable with the run date's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChurnActivity {
    /// First active day.
    pub first_day: i64,
    /// Last active day.
    pub last_day: i64,
    /// Sessions in the window.
    pub sessions: f64,
    /// Share of right answers.
    pub accuracy: f64,
    /// Hints per item answered.
    pub hints_per_item: f64,
}

/// Covariates of the churn model per student, in [`ChurnCohort::x`]'s order.
pub const CHURN_COVARIATES: [&str; 5] = [
    "sessions_per_week",
    "accuracy",
    "hints_per_item",
    "theta",
    "i_t",
];

/// The survival data of a set of students (same order as the activity given).
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnCohort {
    /// Days at risk (see the module docs).
    pub time: Vec<f64>,
    /// Whether the student churned.
    pub event: Vec<bool>,
    /// Covariate rows in [`CHURN_COVARIATES`] order.
    pub x: Vec<[f64; 5]>,
    /// Students given the mean θ.
    pub theta_imputed: usize,
    /// Students given I_t = 0.
    pub it_missing: usize,
}

/// Mean of the known values (0 when none is known): the θ given to the students
/// without one.
pub fn mean_of_known(values: impl Iterator<Item = Option<f64>>) -> f64 {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Event, time and covariates of each student of `activity` at `run_day` (see the
/// module docs); `theta[i]` and `it[i]` are student `i`'s θ and I_t when known, and
/// `theta_mean` the θ of the students without one.
pub fn churn_cohort(
    activity: &[ChurnActivity],
    run_day: i64,
    gap_days: i64,
    theta: impl Fn(usize) -> Option<f64>,
    it: impl Fn(usize) -> Option<f64>,
    theta_mean: f64,
) -> ChurnCohort {
    let n = activity.len();
    let mut c = ChurnCohort {
        time: Vec::with_capacity(n),
        event: Vec::with_capacity(n),
        x: Vec::with_capacity(n),
        theta_imputed: 0,
        it_missing: 0,
    };
    for (i, s) in activity.iter().enumerate() {
        let churned = run_day - s.last_day >= gap_days;
        let end = if churned { s.last_day } else { run_day };
        let t = (end - s.first_day).max(0) as f64;
        let weeks = (end - s.first_day + 1).max(7) as f64 / 7.0;
        let theta = theta(i).unwrap_or_else(|| {
            c.theta_imputed += 1;
            theta_mean
        });
        let it = it(i).unwrap_or_else(|| {
            c.it_missing += 1;
            0.0
        });
        c.time.push(t);
        c.event.push(churned);
        c.x.push([s.sessions / weeks, s.accuracy, s.hints_per_item, theta, it]);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn student(first: i64, last: i64, sessions: f64) -> ChurnActivity {
        ChurnActivity {
            first_day: first,
            last_day: last,
            sessions,
            accuracy: 0.5,
            hints_per_item: 0.1,
        }
    }

    #[test]
    fn events_times_and_imputation_follow_the_docs() {
        // run date: day 27 of a window starting on day 0
        let students = [
            // last active 14 days before the run date: churned, time = last − first
            student(0, 13, 4.0),
            // last active 13 days before: censored at run − first
            student(0, 14, 4.0),
            // single day, 3 days ago: censored at 3, follow-up floored at one week
            student(24, 24, 1.0),
        ];
        let thetas = [Some(1.0), Some(2.0), None];
        let its = [None, Some(0.3), None];
        let mean = mean_of_known(thetas.iter().copied());
        assert_eq!(mean, 1.5);
        assert_eq!(mean_of_known([None, None].into_iter()), 0.0);
        let c = churn_cohort(&students, 27, 14, |i| thetas[i], |i| its[i], mean);
        assert_eq!(c.event, vec![true, false, false]);
        assert_eq!(c.time, vec![13.0, 27.0, 3.0]);
        // a: 4 sessions over 14 days of follow-up; b: over 28 days; c: floored at 7 days
        assert_eq!(c.x[0][0], 2.0);
        assert_eq!(c.x[1][0], 1.0);
        assert_eq!(c.x[2][0], 1.0);
        assert_eq!((c.x[2][3], c.theta_imputed), (1.5, 1));
        assert_eq!((c.x[0][4], c.x[1][4], c.it_missing), (0.0, 0.3, 2));
    }
}
