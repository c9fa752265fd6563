//! Writing `churn_fit` (shard 0 only) and the shard's `s` in `weekly_kpi`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::StringArray;
use chrono::NaiveDate;
use lake::Lake;
use lake::catalog::{CHURN_FIT, WEEKLY_KPI};
use lake::columns::TableBatch;
use lake::runs::{StageError, day_str};
use lake::shard::Shard;
use models::survival::{CoxFit, KaplanMeier};

use crate::{COVARIATES, ChurnOutput};

/// Rows of `churn_fit` under construction.
#[derive(Default)]
pub(crate) struct FitRows {
    kind: Vec<&'static str>,
    term: Vec<String>,
    time_days: Vec<Option<f64>>,
    estimate: Vec<Option<f64>>,
    se: Vec<Option<f64>>,
    z: Vec<Option<f64>>,
    p_value: Vec<Option<f64>>,
    n_risk: Vec<Option<i64>>,
    events: Vec<Option<i64>>,
}

impl FitRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: &'static str,
        term: impl Into<String>,
        time_days: Option<f64>,
        estimate: Option<f64>,
        se: Option<f64>,
        z: Option<f64>,
        p_value: Option<f64>,
        n_risk: Option<i64>,
        events: Option<i64>,
    ) {
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        self.kind.push(kind);
        self.term.push(term.into());
        self.time_days.push(time_days);
        self.estimate.push(finite(estimate));
        self.se.push(finite(se));
        self.z.push(finite(z));
        self.p_value.push(finite(p_value));
        self.n_risk.push(n_risk);
        self.events.push(events);
    }

    pub(crate) fn diag(&mut self, term: impl Into<String>, value: f64) {
        self.push(
            "diagnostic",
            term,
            None,
            Some(value),
            None,
            None,
            None,
            None,
            None,
        );
    }

    fn len(&self) -> usize {
        self.kind.len()
    }
}

pub(crate) fn fit_rows(
    rows: &mut FitRows,
    fit: &CoxFit,
    km: &KaplanMeier,
    used: &[usize],
    out: &ChurnOutput,
    t_cap: f64,
) {
    for (k, &j) in used.iter().enumerate() {
        rows.push(
            "coef",
            COVARIATES[j],
            None,
            Some(fit.coefficients[k]),
            Some(fit.se[k]),
            Some(fit.z[k]),
            Some(fit.p_values[k]),
            None,
            None,
        );
    }
    for r in &km.rows {
        rows.push(
            "km",
            "survival",
            Some(r.time),
            Some(r.surv),
            Some(r.se),
            None,
            None,
            Some(r.n_risk as i64),
            Some(r.events as i64),
        );
    }
    for (t, h) in fit.baseline.times.iter().zip(&fit.baseline.cumhaz_centered) {
        rows.push(
            "baseline",
            "cumhaz",
            Some(*t),
            Some(*h),
            None,
            None,
            None,
            None,
            None,
        );
    }
    rows.diag("concordance", fit.concordance.value);
    rows.diag("loglik", fit.loglik);
    rows.diag("loglik_null", fit.loglik_null);
    rows.push(
        "diagnostic",
        "lr_statistic",
        None,
        Some(fit.lr_statistic()),
        None,
        None,
        Some(fit.lr_p_value()),
        None,
        None,
    );
    rows.diag("n", fit.n as f64);
    rows.diag("events", fit.events as f64);
    rows.diag("iterations", fit.iterations as f64);
    rows.diag("converged", f64::from(u8::from(fit.converged)));
    rows.diag("possibly_infinite", fit.possibly_infinite.len() as f64);
    rows.diag("fitted", 1.0);
    rows.diag("theta_imputed", out.theta_imputed as f64);
    rows.diag("it_missing", out.it_missing as f64);
    rows.diag("t_cap_days", t_cap);
    for (k, &j) in used.iter().enumerate() {
        rows.diag(format!("mean:{}", COVARIATES[j]), fit.means[k]);
        rows.diag(format!("scale:{}", COVARIATES[j]), fit.scales[k]);
    }
}

/// Replaces the `churn_fit` partition of the run date; returns the rows written.
pub(crate) async fn write_fit(
    lake: &Lake,
    run_id: &str,
    fitted_at: i64,
    run_date: NaiveDate,
    rows: FitRows,
) -> Result<usize, StageError> {
    let n = rows.len();
    let batch = TableBatch::new(CHURN_FIT, n)?
        .text("run_id", run_id)?
        .set("kind", Arc::new(StringArray::from(rows.kind)))?
        .set("term", Arc::new(StringArray::from(rows.term)))?
        .f64s("time_days", rows.time_days)?
        .f64s("estimate", rows.estimate)?
        .f64s("se", rows.se)?
        .f64s("z", rows.z)?
        .f64s("p_value", rows.p_value)?
        .i64s("n_risk", rows.n_risk)?
        .i64s("events", rows.events)?
        .timestamp("fitted_at", fitted_at)?
        .finish()?;
    lake.write_partition(CHURN_FIT, &[("run_date", &day_str(run_date))], &[batch])
        .await?;
    Ok(n)
}

/// Puts `s` into the week's `weekly_kpi` rows of `shard`'s object, keeping every other
/// column; returns the rows that got a value. Writes nothing when the shard has no
/// object in that partition.
pub(crate) async fn write_scores(
    lake: &Lake,
    week: NaiveDate,
    shard: Shard,
    scores: &HashMap<String, f64>,
) -> Result<usize, StageError> {
    let values: HashMap<String, Vec<Option<f64>>> = scores
        .iter()
        .map(|(k, v)| (k.clone(), vec![Some(*v)]))
        .collect();
    let week_s = day_str(week);
    Ok(lake
        .set_float_columns(
            WEEKLY_KPI,
            &[("week_start", &week_s)],
            shard,
            "student_id",
            &["s"],
            &values,
        )
        .await?)
}
