//! Ability scoring with fixed item parameters: EAP, MAP and ML.
//!
//! * **EAP** (Bock & Mislevy, 1982, *Applied Psychological Measurement* 6(4)):
//!   θ̂ = Σ_k θ_k L(θ_k) π(θ_k) / Σ_k L(θ_k) π(θ_k) over the quadrature nodes θ_k, with
//!   the posterior SD √(Σ_k (θ_k − θ̂)² L π / Σ_k L π) as its standard error. This is
//!   what R `mirt::fscores(method = "EAP")` computes.
//! * **MAP** (Bayes modal; Baker & Kim, *Item Response Theory*, 2004, §7.3): the mode of
//!   ln L(θ) + ln π(θ), found by safeguarded Newton; SE = 1/√(−∂²/∂θ² [ln L + ln π]),
//!   i.e. observed information plus the prior's 1/σ².
//! * **ML** (Lord, 1980, ch. 5): the maximum of ln L(θ) by safeguarded Newton,
//!   SE = 1/√I(θ̂) with I the test (Fisher) information.
//!
//! The prior π is N(`prior_mean`, `prior_sd`²). MAP and ML are confined to
//! `theta_bounds`; see [`ScoringConfig`] for how patterns without a finite maximum
//! (all right, all wrong) are handled.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::estep::add_rows;
use super::information::{item_information, logistic_pair};
use super::params::{IrtError, ItemParams, Quadrature, ResponseMatrix, Result};

/// How a student's ability is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMethod {
    /// Expected a posteriori (posterior mean over the quadrature), SE = posterior SD. Default.
    #[default]
    Eap,
    /// Maximum a posteriori (posterior mode), SE from the observed information plus the prior's.
    Map,
    /// Maximum likelihood, SE from the test information; confined to `theta_bounds`.
    Ml,
}

impl ScoreMethod {
    /// The name used in tables and on the command line: `eap`, `map`, `ml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreMethod::Eap => "eap",
            ScoreMethod::Map => "map",
            ScoreMethod::Ml => "ml",
        }
    }
}

impl std::str::FromStr for ScoreMethod {
    type Err = IrtError;
    /// Parses `eap`, `map` or `ml` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "eap" => Ok(ScoreMethod::Eap),
            "map" => Ok(ScoreMethod::Map),
            "ml" => Ok(ScoreMethod::Ml),
            other => Err(IrtError::InvalidConfig(format!(
                "unknown scoring method '{other}' (expected eap, map or ml)"
            ))),
        }
    }
}

impl std::fmt::Display for ScoreMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One student's ability estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Ability estimate on the θ scale of the item parameters.
    pub theta: f64,
    /// Standard error of `theta` (θ units): posterior SD for EAP, 1/√information for MAP/ML.
    pub se: f64,
    /// Number of responses that entered the estimate (responses to excluded items do not count).
    pub n_responses: usize,
}

/// Settings of ability scoring.
///
/// Defaults (`ScoringConfig::default()`): EAP, 61 equally spaced nodes on [-6, 6],
/// prior N(0, 1), bounds (-6, 6) — the `mirt` conventions.
///
/// * `quadrature` supplies the **nodes** of the EAP integral; its weights are not used.
///   The EAP prior is N(`prior_mean`, `prior_sd`²) evaluated at those nodes, so that EAP
///   and MAP share one prior (with the defaults this equals the default quadrature's
///   weights).
/// * `theta_bounds` confine MAP and ML (EAP stays inside the node range by construction).
///   **ML rule for patterns without a finite maximum** (all right, all wrong, or a 3PL
///   pattern whose likelihood keeps rising towards ±∞): the estimate is clamped at the
///   bound the likelihood rises towards (`theta_bounds.1` for all right, `theta_bounds.0`
///   for all wrong) and its SE is 1/√I(bound) — large but finite for any item with
///   a·|bound − b| below ~700. No half-response (Haberman) adjustment is made.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringConfig {
    /// Scoring method. Default EAP.
    pub method: ScoreMethod,
    /// Nodes for EAP. Default 61 equally spaced on [-6, 6].
    pub quadrature: Quadrature,
    /// Mean of the normal prior (EAP, MAP), θ units. Default 0.
    pub prior_mean: f64,
    /// SD of the normal prior (EAP, MAP), θ units, > 0. Default 1.
    pub prior_sd: f64,
    /// Lower and upper bound of MAP/ML estimates, θ units. Default (-6, 6).
    pub theta_bounds: (f64, f64),
}

impl Default for ScoringConfig {
    /// EAP, 61 nodes on [-6, 6], prior N(0, 1), bounds (-6, 6).
    fn default() -> Self {
        Self {
            method: ScoreMethod::Eap,
            quadrature: Quadrature::default(),
            prior_mean: 0.0,
            prior_sd: 1.0,
            theta_bounds: (-6.0, 6.0),
        }
    }
}

impl ScoringConfig {
    /// A default configuration with the given method.
    pub fn with_method(method: ScoreMethod) -> Self {
        Self {
            method,
            ..Self::default()
        }
    }

    /// Checks the prior (finite mean, finite SD > 0), the bounds (finite, lo < hi) and the
    /// quadrature (at least one node, all finite).
    pub fn validate(&self) -> Result<()> {
        if !(self.prior_mean.is_finite() && self.prior_sd.is_finite() && self.prior_sd > 0.0) {
            return Err(IrtError::InvalidConfig(format!(
                "scoring prior needs a finite mean and sd > 0, got N({}, {}^2)",
                self.prior_mean, self.prior_sd
            )));
        }
        let (lo, hi) = self.theta_bounds;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(IrtError::InvalidConfig(format!(
                "theta_bounds must be finite with lo < hi, got ({lo}, {hi})"
            )));
        }
        if self.quadrature.nodes.is_empty() || !self.quadrature.nodes.iter().all(|x| x.is_finite())
        {
            return Err(IrtError::InvalidConfig(
                "scoring quadrature needs at least one node, all finite".to_string(),
            ));
        }
        Ok(())
    }
}

use crate::numeric::softplus;

/// Log-likelihood of one response at `theta`.
#[inline]
fn log_lik(item: &ItemParams, y: bool, theta: f64) -> f64 {
    let z = item.a * (theta - item.b);
    if item.c == 0.0 {
        // ln σ(z) = −softplus(−z); ln(1 − σ(z)) = −softplus(z)
        if y { -softplus(-z) } else { -softplus(z) }
    } else if y {
        let (s, _) = logistic_pair(z);
        (item.c + (1.0 - item.c) * s).ln()
    } else {
        (1.0 - item.c).ln() - softplus(z)
    }
}

/// Log-likelihood of one response and its first two θ-derivatives.
///
/// With P = c + (1 − c)σ, P′ = a(1 − c)σ(1 − σ):
/// right: ∂ = P′/P, ∂² = a²(1 − c)σ(1 − σ)(1 − 2σ)/P − (P′/P)²; wrong: ∂ = −aσ, ∂² = −a²σ(1 − σ).
#[inline]
fn log_lik_derivs(item: &ItemParams, y: bool, theta: f64) -> (f64, f64, f64) {
    let (a, c) = (item.a, item.c);
    let z = a * (theta - item.b);
    let (s, t) = logistic_pair(z);
    if !y {
        let ll = if c == 0.0 {
            -softplus(z)
        } else {
            (1.0 - c).ln() - softplus(z)
        };
        return (ll, -a * s, -a * a * s * t);
    }
    if c == 0.0 {
        (-softplus(-z), a * t, -a * a * s * t)
    } else {
        let p = c + (1.0 - c) * s;
        let g = a * (1.0 - c) * s * t / p;
        let h = a * a * (1.0 - c) * s * t * (1.0 - 2.0 * s) / p - g * g;
        (p.ln(), g, h)
    }
}

/// EAP over an iterator of (item, outcome) pairs; `None` when the iterator is empty.
fn eap_core<'a, I>(responses: I, config: &ScoringConfig) -> Option<Score>
where
    I: Iterator<Item = (&'a ItemParams, bool)> + Clone,
{
    let n = responses.clone().count();
    if n == 0 {
        return None;
    }
    eap_from_loglik(config, n, |_, x| {
        responses
            .clone()
            .map(|(it, y)| log_lik(it, y, x))
            .sum::<f64>()
    })
}

/// EAP of a pattern of `n` responses whose log-likelihood at node `k` (θ = `x`) is
/// `loglik(k, x)`.
///
/// Single pass over the nodes with a running log-sum-exp (no allocation): the weights
/// L(θ_k)π(θ_k) are rescaled whenever a larger log-weight appears.
#[inline]
fn eap_from_loglik(
    config: &ScoringConfig,
    n: usize,
    mut loglik: impl FnMut(usize, f64) -> f64,
) -> Option<Score> {
    let (mu, sd) = (config.prior_mean, config.prior_sd);
    let mut max_l = f64::NEG_INFINITY;
    let (mut s0, mut s1, mut s2) = (0.0f64, 0.0f64, 0.0f64);
    for (k, &x) in config.quadrature.nodes.iter().enumerate() {
        let zp = (x - mu) / sd;
        let l = -0.5 * zp * zp + loglik(k, x);
        // centre on the prior mean to limit cancellation in s2/s0 − (s1/s0)²
        let d = x - mu;
        if l > max_l {
            let scale = (max_l - l).exp();
            s0 = s0 * scale + 1.0;
            s1 = s1 * scale + d;
            s2 = s2 * scale + d * d;
            max_l = l;
        } else {
            let w = (l - max_l).exp();
            s0 += w;
            s1 += w * d;
            s2 += w * d * d;
        }
    }
    if !(s0 > 0.0 && s0.is_finite()) {
        return None;
    }
    let m = s1 / s0;
    let var = (s2 / s0 - m * m).max(0.0);
    let theta = mu + m;
    theta.is_finite().then_some(Score {
        theta,
        se: var.sqrt(),
        n_responses: n,
    })
}

/// [`log_lik`] of every item × outcome × node, laid out `[(item * 2 + y) * q + k]` (rows of
/// items without parameters are unused). Scoring a bank of students from it adds the
/// same numbers in the same order as computing them per response, so EAP scores are
/// bit-for-bit those of [`eap_core`] at a fraction of the cost when items are answered by
/// many students.
fn log_lik_table(items: &[Option<ItemParams>], nodes: &[f64]) -> Vec<f64> {
    let q = nodes.len();
    let mut t = vec![0.0; items.len() * 2 * q];
    for (it, rows) in items.iter().zip(t.chunks_exact_mut(2 * q)) {
        let Some(it) = it else { continue };
        let (wrong, right) = rows.split_at_mut(q);
        for (k, &x) in nodes.iter().enumerate() {
            wrong[k] = log_lik(it, false, x);
            right[k] = log_lik(it, true, x);
        }
    }
    t
}

/// Maximises ln L(θ) (+ the normal prior when `prior` is given) on [lo, hi].
///
/// Start: the best of the EAP nodes inside the bounds and the two bounds (guards against
/// the local maxima a 3PL likelihood can have). Then Newton steps where the objective is
/// locally concave, unit gradient steps where it is not, each capped at 1 θ unit and
/// halved until the objective does not decrease; projected onto [lo, hi]. Stops when the
/// step is below 1e-10 or after 200 iterations. Returns (θ̂, −∂² at θ̂).
fn mode_core<'a, I>(
    responses: I,
    prior: Option<(f64, f64)>,
    nodes: &[f64],
    (lo, hi): (f64, f64),
) -> (f64, f64)
where
    I: Iterator<Item = (&'a ItemParams, bool)> + Clone,
{
    let value = |t: f64| -> f64 {
        let lp = prior.map_or(0.0, |(m, s)| -0.5 * ((t - m) / s).powi(2));
        lp + responses
            .clone()
            .map(|(it, y)| log_lik(it, y, t))
            .sum::<f64>()
    };
    let derivs = |t: f64| -> (f64, f64, f64) {
        let (mut f, mut g, mut h) = prior.map_or((0.0, 0.0, 0.0), |(m, s)| {
            let v = s * s;
            (-0.5 * (t - m).powi(2) / v, -(t - m) / v, -1.0 / v)
        });
        for (it, y) in responses.clone() {
            let (lf, lg, lh) = log_lik_derivs(it, y, t);
            f += lf;
            g += lg;
            h += lh;
        }
        (f, g, h)
    };

    let mut theta = lo;
    let mut best = value(lo);
    for t in nodes
        .iter()
        .copied()
        .filter(|t| *t > lo && *t < hi)
        .chain(std::iter::once(hi))
    {
        let v = value(t);
        if v > best {
            best = v;
            theta = t;
        }
    }

    let (mut f, mut g, mut h) = derivs(theta);
    for _ in 0..200 {
        let mut step = if h < 0.0 { -g / h } else { g.signum() };
        if !step.is_finite() || step == 0.0 {
            break;
        }
        step = step.clamp(-1.0, 1.0);
        let mut accepted = None;
        for _ in 0..60 {
            let cand = (theta + step).clamp(lo, hi);
            if cand == theta {
                break;
            }
            let (cf, cg, ch) = derivs(cand);
            if cf >= f {
                accepted = Some((cand, cf, cg, ch));
                break;
            }
            step *= 0.5;
        }
        let Some((cand, cf, cg, ch)) = accepted else {
            break;
        };
        let moved = (cand - theta).abs();
        (theta, f, g, h) = (cand, cf, cg, ch);
        if moved < 1e-10 {
            break;
        }
    }
    (theta, -h)
}

/// Scores one pattern with the configured method (config already validated).
fn score_iter<'a, I>(responses: I, config: &ScoringConfig) -> Option<Score>
where
    I: Iterator<Item = (&'a ItemParams, bool)> + Clone,
{
    match config.method {
        ScoreMethod::Eap => eap_core(responses, config),
        ScoreMethod::Map => {
            let n = responses.clone().count();
            if n == 0 {
                return None;
            }
            let (theta, obs_info) = mode_core(
                responses.clone(),
                Some((config.prior_mean, config.prior_sd)),
                &config.quadrature.nodes,
                config.theta_bounds,
            );
            let prior_info = 1.0 / (config.prior_sd * config.prior_sd);
            // At an interior mode the observed information is positive; at a bound (or in a
            // non-concave 3PL region) fall back to the expected information plus the prior's.
            let info = if obs_info > 0.0 && obs_info.is_finite() {
                obs_info
            } else {
                responses
                    .map(|(it, _)| item_information(it, theta))
                    .sum::<f64>()
                    + prior_info
            };
            Some(Score {
                theta,
                se: 1.0 / info.sqrt(),
                n_responses: n,
            })
        }
        ScoreMethod::Ml => {
            let n = responses.clone().count();
            if n == 0 {
                return None;
            }
            let (theta, _) = mode_core(
                responses.clone(),
                None,
                &config.quadrature.nodes,
                config.theta_bounds,
            );
            let info: f64 = responses.map(|(it, _)| item_information(it, theta)).sum();
            Some(Score {
                theta,
                se: 1.0 / info.sqrt(),
                n_responses: n,
            })
        }
    }
}

/// Scores every student of `responses` with **fixed** item parameters (students outside
/// the calibration too), using `config.method`.
///
/// `items[i]` are the parameters of item `i` (IRT metric, see [`ItemParams`]); `None`
/// means item `i` is not usable (excluded from the calibration): its responses are
/// ignored and not counted in [`Score::n_responses`]. The result has one entry per
/// student, `None` for a student with no usable response. Students are scored in
/// parallel (rayon); no allocation is made per student or response.
///
/// Errors: `items.len() != responses.n_items`, an invalid item ([`ItemParams::validate`]),
/// an inconsistent response matrix, or an invalid `config` ([`ScoringConfig::validate`]).
pub fn score_students(
    responses: &ResponseMatrix,
    items: &[Option<ItemParams>],
    config: &ScoringConfig,
) -> Result<Vec<Option<Score>>> {
    config.validate()?;
    if items.len() != responses.n_items {
        return Err(IrtError::InvalidConfig(format!(
            "{} item parameter slots given for a response matrix with {} items",
            items.len(),
            responses.n_items
        )));
    }
    for (i, it) in items.iter().enumerate() {
        if let Some(p) = it {
            p.validate(i)?;
        }
    }
    let n_resp = responses.items.len();
    if responses.correct.len() != n_resp {
        return Err(IrtError::InvalidResponses(format!(
            "{} item indices but {} outcomes",
            n_resp,
            responses.correct.len()
        )));
    }
    if responses.row_ptr.first().is_some_and(|&p| p != 0)
        || responses.row_ptr.last().is_some_and(|&p| p != n_resp)
        || responses.row_ptr.windows(2).any(|w| w[0] > w[1])
    {
        return Err(IrtError::InvalidResponses(
            "row_ptr must start at 0, be non-decreasing and end at the number of responses"
                .to_string(),
        ));
    }
    if let Some(&bad) = responses.items.iter().find(|&&i| i as usize >= items.len()) {
        return Err(IrtError::InvalidResponses(format!(
            "item index {bad} out of range ({} items)",
            items.len()
        )));
    }

    let n_usable = items.iter().filter(|p| p.is_some()).count();
    if config.method == ScoreMethod::Eap && n_resp >= 2 * n_usable {
        // Every item is answered twice on average or more: tabulate its log-likelihood
        // over the nodes once instead of once per response.
        let eap = EapTable::new(items, config)?;
        return Ok((0..responses.n_students())
            .into_par_iter()
            .map_init(Vec::new, |buf, s| {
                let (its, ys) = responses.row(s);
                eap.score(its.iter().copied().zip(ys.iter().copied()), buf)
            })
            .collect());
    }
    Ok((0..responses.n_students())
        .into_par_iter()
        .map(|s| {
            let (its, ys) = responses.row(s);
            let usable = its.iter().zip(ys.iter()).filter_map(|(&i, &y)| {
                items
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .map(|p| (p, y))
            });
            score_iter(usable, config)
        })
        .collect())
}

/// EAP scoring of many response patterns over one set of fixed items (a student's
/// topics, weeks, or students): each item's log-likelihood is tabulated over the
/// quadrature nodes once, so a pattern costs one addition per response and node instead
/// of a logistic and a log. The log-likelihoods are the same numbers summed in the same
/// order as [`eap_score`]'s, so the scores are bit-identical
/// (`eap_table_scores_are_eap_score_bit_for_bit`).
pub struct EapTable<'c> {
    config: &'c ScoringConfig,
    /// `[(2·item + y)·Q + node]`: ln P(y | θ_node) of the usable items.
    table: Vec<f64>,
    /// Whether item `i` has parameters.
    usable: Vec<bool>,
    zeros: Vec<f64>,
}

impl<'c> EapTable<'c> {
    /// Tables of `items` (`None`: item not usable, its responses are ignored) on the
    /// nodes of `config`. Errors: an invalid item or an invalid config.
    pub fn new(items: &[Option<ItemParams>], config: &'c ScoringConfig) -> Result<Self> {
        config.validate()?;
        for (i, it) in items.iter().enumerate() {
            if let Some(p) = it {
                p.validate(i)?;
            }
        }
        let q = config.quadrature.nodes.len();
        Ok(Self {
            config,
            table: log_lik_table(items, &config.quadrature.nodes),
            usable: items.iter().map(Option::is_some).collect(),
            zeros: vec![0.0; q],
        })
    }

    /// EAP of the responses `(item index, correct)`, in the order given; responses to
    /// unusable or unknown items are ignored (not counted in [`Score::n_responses`]).
    /// `None` without a usable response. `buf` is scratch space, reused across calls.
    pub fn score<I>(&self, responses: I, buf: &mut Vec<f64>) -> Option<Score>
    where
        I: Iterator<Item = (u32, bool)> + Clone,
    {
        let q = self.zeros.len();
        let rows = responses
            .filter(|&(i, _)| self.usable.get(i as usize).copied().unwrap_or(false))
            .map(move |(i, y)| (i as usize * 2 + usize::from(y)) * q);
        let n = rows.clone().count();
        if n == 0 {
            return None;
        }
        buf.resize(q, 0.0);
        add_rows(&self.table, rows, &self.zeros, buf);
        eap_from_loglik(self.config, n, |k, _| buf[k])
    }
}

/// [`EapTable`] over items named by id (question ids): for stages that score many
/// subsets of students' responses (topics, weeks) against one calibration.
pub struct NamedEapTable<'a> {
    index: HashMap<&'a str, u32>,
    table: EapTable<'a>,
}

impl<'a> NamedEapTable<'a> {
    /// Tables of the `(id, parameters)` items. Errors: an invalid parameter (the message
    /// names the id) or an invalid config.
    pub fn new<I>(items: I, config: &'a ScoringConfig) -> Result<Self>
    where
        I: IntoIterator<Item = (&'a str, ItemParams)>,
    {
        let mut index = HashMap::new();
        let mut params = Vec::new();
        for (id, p) in items {
            p.validate(params.len())
                .map_err(|e| IrtError::InvalidConfig(format!("item parameters of '{id}': {e}")))?;
            index.insert(id, params.len() as u32);
            params.push(Some(p));
        }
        Ok(Self {
            index,
            table: EapTable::new(&params, config)?,
        })
    }

    /// The table index of item `id`, `None` if it has no parameters.
    pub fn index(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// [`EapTable::score`] of `(index, correct)` responses (indices from [`Self::index`]);
    /// `buf` is scratch space, reused across calls.
    pub fn score<I>(&self, responses: I, buf: &mut Vec<f64>) -> Option<Score>
    where
        I: Iterator<Item = (u32, bool)> + Clone,
    {
        self.table.score(responses, buf)
    }
}

/// EAP score of one response pattern: `outcomes[j]` is the response to `items[j]`.
///
/// Always EAP (`config.method` is ignored); uses `config.quadrature` nodes and the
/// N(`prior_mean`, `prior_sd`²) prior. Meant for downstream stages that score subsets
/// (topic θ, weekly θ) in a loop; allocation-free.
///
/// Returns `None` when there is nothing to score (no responses) **or** the input is
/// unusable: lengths differ, an item is invalid, or the config is invalid. Use
/// [`score_pattern`] to get these as errors.
pub fn eap_score(items: &[ItemParams], outcomes: &[bool], config: &ScoringConfig) -> Option<Score> {
    if items.len() != outcomes.len()
        || config.validate().is_err()
        || items
            .iter()
            .enumerate()
            .any(|(i, p)| p.validate(i).is_err())
    {
        return None;
    }
    eap_core(items.iter().zip(outcomes.iter().copied()), config)
}

/// Scores one response pattern with `config.method` (EAP, MAP or ML).
///
/// `outcomes[j]` is the response to `items[j]`. `Ok(None)` when there are no responses.
/// Errors: lengths differ, an invalid item, or an invalid config.
pub fn score_pattern(
    items: &[ItemParams],
    outcomes: &[bool],
    config: &ScoringConfig,
) -> Result<Option<Score>> {
    config.validate()?;
    if items.len() != outcomes.len() {
        return Err(IrtError::InvalidResponses(format!(
            "{} items but {} outcomes",
            items.len(),
            outcomes.len()
        )));
    }
    for (i, p) in items.iter().enumerate() {
        p.validate(i)?;
    }
    Ok(score_iter(
        items.iter().zip(outcomes.iter().copied()),
        config,
    ))
}
