//! Binomial longitudinal data for the GLMM: rows (group, successes, trials, fixed-effect
//! covariates, time), validated and stored group by group.

use std::hash::Hash;

use super::super::data::dense_groups;
use super::super::{GrowthError, Result};
use super::dense::first_dependent_column;
use super::family::ln_choose;

/// Name of the intercept column of the fixed effects (as R prints it).
pub const INTERCEPT: &str = "(Intercept)";

/// Collinearity tolerance of the fixed-effect design: a column whose 1 − R² on the
/// columns before it (after scaling every column to unit length) is at most this is
/// refused. lme4 drops such columns (QR rank with tolerance 1e-7); we refuse them and
/// name the column, so the caller decides.
pub const COLLINEARITY_TOL: f64 = 1e-9;

/// The rows of a binomial GLMM, column by column (all slices of the same length).
///
/// The fixed-effect design X is the intercept followed by `covariates` in order (a
/// categorical variable enters as its dummy columns, built by the caller). `time` is the
/// covariate of the random slope in `(time | group)`; like lme4's formula, it is *not*
/// added to the fixed effects by itself: pass it in `covariates` too for
/// `y ~ time + (time | group)`.
#[derive(Debug, Clone, Copy)]
pub struct GlmmRows<'a, K> {
    /// Group of each row (dense indices for [`GlmmData::new`], any key for
    /// [`GlmmData::from_ids`]).
    pub group: &'a [K],
    /// Successes kᵣ of each row: a whole number in 0..=mᵣ (0 or 1 without `trials`).
    pub successes: &'a [f64],
    /// Trials mᵣ of each row, whole numbers ≥ 1; `None`: every row is one Bernoulli
    /// trial (mᵣ = 1), as `glmer(y ~ …, family = binomial)` with a 0/1 response.
    pub trials: Option<&'a [f64]>,
    /// Fixed-effect covariates after the intercept: (name, values).
    pub covariates: &'a [(&'a str, &'a [f64])],
    /// Covariate of the random slope; required by
    /// [`RandomEffects::InterceptSlope`](super::RandomEffects::InterceptSlope).
    pub time: Option<&'a [f64]>,
}

/// Validated GLMM data, rows stored contiguously by group (in their input order within
/// a group).
#[derive(Debug, Clone, PartialEq)]
pub struct GlmmData {
    /// Fixed-effect term names, the intercept first.
    pub(crate) terms: Vec<String>,
    /// Number of fixed effects p.
    pub(crate) p: usize,
    /// X, n × p row-major, rows in group order.
    pub(crate) x: Vec<f64>,
    /// Time per row (0 when there is no time column).
    pub(crate) t: Vec<f64>,
    /// Successes per row.
    pub(crate) k: Vec<f64>,
    /// Trials per row.
    pub(crate) m: Vec<f64>,
    /// Rows of group i are `starts[i]..starts[i + 1]`.
    pub(crate) starts: Vec<usize>,
    /// Σᵣ log C(mᵣ, kᵣ), the constant of the binomial log-likelihood.
    pub(crate) ln_choose_sum: f64,
    /// Whether a time column was given.
    pub(crate) has_time: bool,
    /// Groups observed at two or more distinct times.
    pub(crate) groups_with_slope_info: usize,
}

fn invalid(msg: String) -> GrowthError {
    GrowthError::InvalidInput(msg)
}

fn whole(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0
}

impl GlmmData {
    /// Builds the data from dense group indices: `group[r]` in `0..n_groups` with
    /// `n_groups = max + 1`, every index with at least one row.
    ///
    /// Errors ([`GrowthError::InvalidInput`], rows counted from 0): columns of different
    /// lengths, no rows, successes or trials that are not whole numbers, trials < 1,
    /// successes outside 0..=trials (0/1 without trials), a non-finite covariate or
    /// time, a duplicated or reserved covariate name, a response with no successes or
    /// no failures at all (nothing to estimate; lme4's `check.response.not.const`), a
    /// fixed-effect column collinear with the ones before it ([`COLLINEARITY_TOL`]), a
    /// group index without rows.
    pub fn new(rows: &GlmmRows<'_, usize>) -> Result<Self> {
        Self::build(rows.group, rows)
    }

    /// Like [`GlmmData::new`] from arbitrary group keys; returns the data and the keys in
    /// group-index order (order of first appearance): group `i` of every result is
    /// `keys[i]`.
    pub fn from_ids<K: Eq + Hash + Clone>(rows: &GlmmRows<'_, K>) -> Result<(Self, Vec<K>)> {
        let (group, keys) = dense_groups(rows.group);
        Ok((Self::build(&group, rows)?, keys))
    }

    /// Like [`GlmmData::from_ids`] for data that is only *predicted from* a fit
    /// ([`GlmmFit::growth_forecasts`](super::GlmmFit::growth_forecasts)), not fitted: the
    /// checks that concern estimation — a response with both outcomes, a full-rank
    /// fixed-effect design — are skipped, so a single group, a group observed once, or
    /// a group with every answer right is accepted. Every per-row check still applies.
    pub fn for_prediction_from_ids<K: Eq + Hash + Clone>(
        rows: &GlmmRows<'_, K>,
    ) -> Result<(Self, Vec<K>)> {
        let (group, keys) = dense_groups(rows.group);
        Ok((Self::build_with(&group, rows, false)?, keys))
    }

    fn build<K>(group: &[usize], rows: &GlmmRows<'_, K>) -> Result<Self> {
        Self::build_with(group, rows, true)
    }

    /// `estimable`: also refuse a constant response and a rank-deficient design.
    fn build_with<K>(group: &[usize], rows: &GlmmRows<'_, K>, estimable: bool) -> Result<Self> {
        check_rows(group, rows)?;
        let n = group.len();
        let total_k: f64 = rows.successes.iter().sum();
        let total_m: f64 = rows.trials.map_or(n as f64, |m| m.iter().sum());
        if estimable && (total_k == 0.0 || total_k == total_m) {
            return Err(invalid(format!(
                "the response is constant: {} of {total_m} trials are successes; a binomial model needs both outcomes",
                total_k
            )));
        }

        let (starts, order) = rows_by_group(group)?;
        let n_groups = starts.len() - 1;

        let p = 1 + rows.covariates.len();
        let mut terms = vec![INTERCEPT.to_string()];
        terms.extend(rows.covariates.iter().map(|(name, _)| name.to_string()));
        let mut x = Vec::with_capacity(n * p);
        let (mut t, mut k, mut m) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for &r in &order {
            x.push(1.0);
            x.extend(rows.covariates.iter().map(|(_, col)| col[r]));
            t.push(rows.time.map_or(0.0, |c| c[r]));
            k.push(rows.successes[r]);
            m.push(rows.trials.map_or(1.0, |c| c[r]));
        }

        if estimable {
            check_full_rank(&x, &terms)?;
        }

        let groups_with_slope_info = (0..n_groups)
            .filter(|&g| {
                let ts = &t[starts[g]..starts[g + 1]];
                ts.iter().any(|&v| v != ts[0])
            })
            .count();
        let ln_choose_sum = k.iter().zip(&m).map(|(&k, &m)| ln_choose(m, k)).sum();
        Ok(Self {
            terms,
            p,
            x,
            t,
            k,
            m,
            starts,
            ln_choose_sum,
            has_time: rows.time.is_some(),
            groups_with_slope_info,
        })
    }

    /// Number of rows.
    pub fn n_obs(&self) -> usize {
        self.k.len()
    }

    /// Number of groups.
    pub fn n_groups(&self) -> usize {
        self.starts.len() - 1
    }

    /// Fixed-effect term names, `(Intercept)` first, then the covariates in order.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Σ log C(mᵣ, kᵣ): the part of the log-likelihood that no parameter changes (0 for
    /// 0/1 rows).
    pub fn ln_choose_sum(&self) -> f64 {
        self.ln_choose_sum
    }
}

/// Checks the columns' lengths, names and every row's values (see [`GlmmData`]'s
/// builders).
fn check_rows<K>(group: &[usize], rows: &GlmmRows<'_, K>) -> Result<()> {
    let n = group.len();
    let check_len = |what: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(invalid(format!(
                "every column needs one value per row: group has {n}, {what} has {len}"
            )))
        }
    };
    check_len("successes", rows.successes.len())?;
    if let Some(m) = rows.trials {
        check_len("trials", m.len())?;
    }
    if let Some(t) = rows.time {
        check_len("time", t.len())?;
    }
    for (i, (name, col)) in rows.covariates.iter().enumerate() {
        check_len(&format!("covariate '{name}'"), col.len())?;
        if *name == INTERCEPT || rows.covariates[..i].iter().any(|(o, _)| o == name) {
            return Err(invalid(format!(
                "covariate name '{name}' is reserved or given twice"
            )));
        }
    }
    if n == 0 {
        return Err(invalid("no rows".into()));
    }
    for r in 0..n {
        let k = rows.successes[r];
        let m = rows.trials.map_or(1.0, |m| m[r]);
        if rows.trials.is_some() && !(whole(m) && m >= 1.0) {
            return Err(invalid(format!(
                "row {r}: trials must be a whole number >= 1, got {m}"
            )));
        }
        if !(whole(k) && (0.0..=m).contains(&k)) {
            return Err(invalid(if rows.trials.is_some() {
                format!(
                    "row {r}: successes must be a whole number in 0..={m} (its trials), got {k}"
                )
            } else {
                format!("row {r}: the response must be 0 or 1 without trials, got {k}")
            }));
        }
        if let Some(t) = rows.time
            && !t[r].is_finite()
        {
            return Err(invalid(format!("row {r}: time is not finite ({})", t[r])));
        }
        for (name, col) in rows.covariates {
            if !col[r].is_finite() {
                return Err(invalid(format!(
                    "row {r}: covariate '{name}' is not finite ({})",
                    col[r]
                )));
            }
        }
    }
    Ok(())
}

/// Rows by group (counting sort, stable): each group's start in the sorted order (and
/// the end), and the sorted order of the rows. Group indices must be dense.
fn rows_by_group(group: &[usize]) -> Result<(Vec<usize>, Vec<usize>)> {
    let n = group.len();
    let n_groups = group.iter().max().map_or(0, |g| g + 1);
    let mut starts = vec![0usize; n_groups + 1];
    for &g in group {
        starts[g + 1] += 1;
    }
    if let Some(empty) = (0..n_groups).find(|&g| starts[g + 1] == 0) {
        return Err(invalid(format!(
            "group index {empty} has no rows (indices must be dense in 0..{n_groups})"
        )));
    }
    for g in 0..n_groups {
        starts[g + 1] += starts[g];
    }
    let mut next = starts.clone();
    let mut order = vec![0usize; n];
    for (r, &g) in group.iter().enumerate() {
        order[next[g]] = r;
        next[g] += 1;
    }
    Ok((starts, order))
}

/// Refuses a fixed-effect design `x` (rows of `terms.len()` columns) without full
/// column rank, naming the first dependent column.
fn check_full_rank(x: &[f64], terms: &[String]) -> Result<()> {
    let p = terms.len();
    let mut gram = vec![0.0; p * p];
    for row in x.chunks_exact(p) {
        for i in 0..p {
            for j in 0..=i {
                gram[i * p + j] += row[i] * row[j];
            }
        }
    }
    for i in 0..p {
        for j in 0..i {
            gram[j * p + i] = gram[i * p + j];
        }
    }
    if let Some(j) = first_dependent_column(&gram, p, COLLINEARITY_TOL) {
        return Err(invalid(format!(
            "the fixed effects are not estimable: column '{}' is {} (the design needs full column rank)",
            terms[j],
            if j == 0 {
                "zero".to_string()
            } else {
                format!(
                    "constant or a linear combination of {}",
                    terms[..j].join(", ")
                )
            }
        )));
    }
    Ok(())
}
