//! `growth_fit` rows (written by shard 0 only) and the shard's `p`, `sigma` in
//! `weekly_kpi`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::StringArray;
use chrono::NaiveDate;
use lake::catalog::{GROWTH_FIT, WEEKLY_KPI};
use lake::columns::TableBatch;
use lake::runs::{StageError, day_str};
use lake::shard::Shard;
use lake::{CellValue, Lake};
use models::growth::{BayesConfig, BayesFit, DEFAULT_MAX_RHAT, LmmFit};

use crate::{GrowthOutput, PValue, TARGET_WEEKS};

/// Rows of `growth_fit` under construction.
#[derive(Default)]
pub(crate) struct FitRows {
    model: Vec<&'static str>,
    kind: Vec<&'static str>,
    term: Vec<String>,
    group_id: Vec<Option<String>>,
    estimate: Vec<Option<f64>>,
    se: Vec<Option<f64>>,
    rhat: Vec<Option<f64>>,
    ess: Vec<Option<f64>>,
}

impl FitRows {
    /// No rows yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.model.is_empty()
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        model: &'static str,
        kind: &'static str,
        term: impl Into<String>,
        group_id: Option<&str>,
        estimate: f64,
        se: Option<f64>,
        rhat: Option<f64>,
        ess: Option<f64>,
    ) {
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        self.model.push(model);
        self.kind.push(kind);
        self.term.push(term.into());
        self.group_id.push(group_id.map(str::to_string));
        self.estimate.push(finite(Some(estimate)));
        self.se.push(finite(se));
        self.rhat.push(finite(rhat));
        self.ess.push(finite(ess));
    }

    pub(crate) fn diag(&mut self, model: &'static str, term: &str, value: f64) {
        self.push(model, "diagnostic", term, None, value, None, None, None);
    }
}

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

pub(crate) fn lmm_rows(
    rows: &mut FitRows,
    model: &'static str,
    fit: &LmmFit,
    keys: &[String],
    nobs_off: bool,
) {
    rows.push(
        model,
        "fixed",
        "intercept",
        None,
        fit.intercept.estimate,
        Some(fit.intercept.se),
        None,
        None,
    );
    rows.push(
        model,
        "fixed",
        "slope",
        None,
        fit.slope.estimate,
        Some(fit.slope.se),
        None,
        None,
    );
    let v = &fit.variance;
    for (term, value) in [
        ("sd_intercept", v.sd_intercept),
        ("sd_slope", v.sd_slope),
        ("corr", v.corr),
        ("sd_residual", v.sd_residual),
    ] {
        rows.push(model, "varcomp", term, None, value, None, None, None);
    }
    rows.diag(model, "criterion", fit.criterion);
    rows.diag(model, "loglik", fit.log_likelihood);
    rows.diag(model, "n_obs", fit.n_obs as f64);
    rows.diag(model, "n_groups", fit.n_groups as f64);
    rows.diag(model, "evaluations", fit.evaluations as f64);
    rows.diag(model, "converged", flag(fit.converged));
    rows.diag(model, "singular", flag(fit.singular));
    rows.diag(model, "nobs_check_disabled", flag(nobs_off));
    for (k, b) in keys.iter().zip(&fit.blups) {
        rows.push(
            model,
            "blup",
            "u0",
            Some(k),
            b.u0,
            Some(b.sd_u0),
            None,
            None,
        );
        rows.push(
            model,
            "blup",
            "u1",
            Some(k),
            b.u1,
            Some(b.sd_u1),
            None,
            None,
        );
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn bayes_rows(
    rows: &mut FitRows,
    fit: &BayesFit,
    forecasts: &[models::growth::GroupForecast],
    keys: &[String],
    cfg: &BayesConfig,
    out: &GrowthOutput,
    goal: f64,
    from_intercept: bool,
) {
    for p in &fit.params {
        let (kind, term) = match p.name.as_str() {
            "beta0" => ("fixed", "intercept"),
            "beta1" => ("fixed", "slope"),
            "sigma" => ("varcomp", "sd_residual"),
            other => ("varcomp", other),
        };
        rows.push(
            "bayes",
            kind,
            term,
            None,
            p.mean,
            Some(p.sd),
            Some(p.rhat),
            Some(p.ess_bulk),
        );
    }
    rows.diag("bayes", "max_rhat", fit.max_rhat());
    rows.diag("bayes", "rhat_threshold", DEFAULT_MAX_RHAT);
    rows.diag("bayes", "p_published", flag(out.p_published));
    rows.diag("bayes", "divergences", fit.divergences as f64);
    rows.diag("bayes", "chains", cfg.chains as f64);
    rows.diag("bayes", "warmup", cfg.warmup as f64);
    rows.diag("bayes", "draws", cfg.draws as f64);
    rows.diag("bayes", "goal", goal);
    if let Some(m) = out.cohort_current_mean {
        rows.diag("bayes", "cohort_current_mean", m);
    }
    rows.diag("bayes", "goal_from_intercept", flag(from_intercept));
    rows.diag("bayes", "target_week", TARGET_WEEKS);
    rows.diag("bayes", "n_obs", out.observations as f64);
    rows.diag("bayes", "n_groups", keys.len() as f64);
    for (k, f) in keys.iter().zip(forecasts) {
        rows.push(
            "bayes",
            "blup",
            "u0",
            Some(k),
            f.u0,
            Some(f.sd_u0),
            None,
            None,
        );
        rows.push(
            "bayes",
            "blup",
            "u1",
            Some(k),
            f.u1,
            Some(f.sd_u1),
            None,
            None,
        );
    }
}

/// Replaces the `growth_fit` partition of the run date; returns the rows written.
pub(crate) async fn write_fit(
    lake: &Lake,
    run_id: &str,
    fitted_at: i64,
    run_date: NaiveDate,
    rows: FitRows,
) -> Result<usize, StageError> {
    let n = rows.model.len();
    let batch = TableBatch::new(GROWTH_FIT, n)?
        .text("run_id", run_id)?
        .set("model", Arc::new(StringArray::from(rows.model)))?
        .set("kind", Arc::new(StringArray::from(rows.kind)))?
        .set("term", Arc::new(StringArray::from(rows.term)))?
        .set("group_id", Arc::new(StringArray::from(rows.group_id)))?
        .f64s("estimate", rows.estimate)?
        .f64s("se", rows.se)?
        .f64s("rhat", rows.rhat)?
        .f64s("ess", rows.ess)?
        .timestamp("fitted_at", fitted_at)?
        .finish()?;
    lake.write_partition(GROWTH_FIT, &[("run_date", &day_str(run_date))], &[batch])
        .await?;
    Ok(n)
}

/// Puts `p`, `sigma`, `p_model` into the week's `weekly_kpi` rows of `shard`'s object
/// (null for students not in `values`), keeping every other column; returns the rows
/// that got a non-null `p`. Writes nothing when the shard has no object in that
/// partition.
pub(crate) async fn write_p(
    lake: &Lake,
    week: NaiveDate,
    shard: Shard,
    values: &HashMap<String, PValue>,
) -> Result<usize, StageError> {
    let values: HashMap<String, Vec<CellValue>> = values
        .iter()
        .map(|(k, v)| {
            let cells = vec![
                CellValue::Float(v.p),
                CellValue::Float(v.sigma),
                CellValue::Text(v.model.map(str::to_string)),
            ];
            (k.clone(), cells)
        })
        .collect();
    let week_s = day_str(week);
    Ok(lake
        .set_columns(
            WEEKLY_KPI,
            &[("week_start", &week_s)],
            shard,
            "student_id",
            &["p", "sigma", "p_model"],
            &values,
        )
        .await?)
}
