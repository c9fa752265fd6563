//! The Cox fit on the sample's cohort and the score `s` of a shard's students.

use std::collections::HashMap;

use lake::runs::StageError;
use models::survival::{Covariates, CoxConfig, CoxFit, SurvivalError, Ties, cox_ph};

use crate::cohort::Cohort;
use crate::{
    CHURN_GAP_DAYS, COVARIATES, HORIZON_DAYS, MIN_EVENTS, MIN_STUDENTS, T_CAP_BELOW_LAST_EVENT,
};

/// Why the model was not fitted: a status and a message.
pub(crate) type Refusal = (&'static str, String);

/// Indices (in [`COVARIATES`]) of the covariates that vary over the cohort.
pub(crate) fn usable_covariates(cohort: &Cohort) -> Vec<usize> {
    (0..COVARIATES.len())
        .filter(|&j| !is_constant(cohort.x.iter().map(|r| r[j])))
        .collect()
}

/// Whether the values are all (numerically) equal.
pub(crate) fn is_constant(values: impl Iterator<Item = f64>) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    // Covariates are finite; with no values at all, hi − lo = −∞ counts as constant.
    hi - lo <= 1e-12 * (1.0 + lo.abs().max(hi.abs()))
}

/// The Cox model of the cohort on the `used` covariates, or why it cannot be fitted
/// (degenerate input, see the crate docs). Errors only for a failure that is not about
/// the data.
pub(crate) fn fit(cohort: &Cohort, used: &[usize]) -> Result<Result<CoxFit, Refusal>, StageError> {
    let students = cohort.students.len();
    let events = cohort.event.iter().filter(|&&e| e).count();
    if students < MIN_STUDENTS {
        return Ok(Err((
            "too_few_students",
            format!("{students} students: the Cox model needs at least {MIN_STUDENTS}"),
        )));
    }
    if events < MIN_EVENTS {
        return Ok(Err((
            "too_few_events",
            format!(
                "{events} churn events (no activity for {CHURN_GAP_DAYS} days): the Cox model needs at least {MIN_EVENTS}"
            ),
        )));
    }
    if used.is_empty() {
        return Ok(Err((
            "no_usable_covariates",
            "every covariate is constant over the cohort".to_string(),
        )));
    }
    let rows: Vec<Vec<f64>> = cohort.x.iter().map(|r| pick(r, used)).collect();
    let x = Covariates::from_rows(&rows).map_err(StageError::model)?;
    let config = CoxConfig {
        ties: Ties::Efron,
        standardize: true,
        ..CoxConfig::default()
    };
    match cox_ph(&cohort.time, &cohort.event, &x, &config) {
        Ok(f) => Ok(Ok(f)),
        Err(
            e @ (SurvivalError::SingularInformation { .. }
            | SurvivalError::ConstantCovariate { .. }
            | SurvivalError::TooFewSubjects { .. }
            | SurvivalError::NoEvents),
        ) => Ok(Err(("model_refused", e.to_string()))),
        Err(e) => Err(StageError::model(e)),
    }
}

fn pick(row: &[f64; 5], used: &[usize]) -> Vec<f64> {
    used.iter().map(|&j| row[j]).collect()
}

/// The tenure cap of the scores: just below the fit's last event time.
pub(crate) fn t_cap(fit: &CoxFit) -> f64 {
    fit.baseline.last_event_time().unwrap_or(0.0) - T_CAP_BELOW_LAST_EVENT
}

/// `s` of every student of `scored` (the shard's students active in the run date's
/// week): `event_probability(x, min(t, t_cap), 14)` with tenure `t = run_date − first`
/// (the `time` of a non-churned student). Returns the scores and how many tenures were
/// capped. Each score depends only on the fit and the student's own row.
pub(crate) fn score(
    fit: &CoxFit,
    used: &[usize],
    scored: &Cohort,
) -> Result<(HashMap<String, f64>, usize), StageError> {
    let cap = t_cap(fit);
    let mut scores = HashMap::with_capacity(scored.students.len());
    let mut capped = 0;
    for ((s, x), &t) in scored.students.iter().zip(&scored.x).zip(&scored.time) {
        if t > cap {
            capped += 1;
        }
        let p = fit
            .event_probability(&pick(x, used), t.min(cap), HORIZON_DAYS)
            .map_err(StageError::model)?;
        scores.insert(s.id.clone(), p);
    }
    Ok((scores, capped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_covariates_are_recognised() {
        assert!(is_constant([1.0, 1.0, 1.0].into_iter()));
        assert!(!is_constant([1.0, 1.0 + 1e-6].into_iter()));
        assert!(is_constant(std::iter::empty()));
    }
}
