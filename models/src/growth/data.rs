//! Growth data: rows (group, time, y) reduced to per-group sufficient statistics and
//! to *design patterns* (groups sharing the same XᵢᵀXᵢ).
//!
//! With Xᵢ = [1, tᵢ] (nᵢ × 2), everything the linear growth model needs from group i is
//! nᵢ, Σt, Σt², Σy, Σty and Σy² (Gaussian likelihood, 2 × 2 random-effect blocks). Groups
//! whose Aᵢ = XᵢᵀXᵢ are bit-identical (same number of rows and the same Σt, Σt² — e.g.
//! students observed in the same weeks) share every hyperparameter-dependent 2 × 2
//! matrix, so the likelihood is accumulated once per pattern from pooled cross-products
//! of cᵢ = Xᵢᵀyᵢ: its cost is O(#patterns), not O(#groups) — a few dozen patterns for
//! weekly data on a common calendar, one per group at worst (continuous times).
//!
//! The responses are stored shifted by their overall mean (`y − ȳ`) to keep the pooled
//! sums of squares well conditioned; only the intercept depends on the shift and the
//! models undo it.

use std::collections::HashMap;
use std::hash::Hash;

use super::{GrowthError, Result};

/// Fewest groups either model accepts: a 2 × 2 random-effect covariance has 3
/// parameters, and fewer than 3 groups cannot inform them.
pub const MIN_GROUPS: usize = 3;

/// Sufficient statistics of one group (responses shifted by the overall mean).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct GroupStats {
    /// Number of rows nᵢ.
    pub n: f64,
    /// Σ t.
    pub st: f64,
    /// Σ t².
    pub stt: f64,
    /// Σ y (shifted).
    pub sy: f64,
    /// Σ t·y (shifted).
    pub sty: f64,
    /// Σ y² (shifted).
    pub syy: f64,
}

impl GroupStats {
    /// Aᵢ = XᵢᵀXᵢ as (a00, a01, a11).
    #[inline]
    pub fn a(&self) -> [f64; 3] {
        [self.n, self.st, self.stt]
    }
    /// cᵢ = Xᵢᵀyᵢ.
    #[inline]
    pub fn c(&self) -> [f64; 2] {
        [self.sy, self.sty]
    }
}

/// Groups sharing one XᵢᵀXᵢ, with pooled statistics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    /// A = XᵢᵀXᵢ (a00, a01, a11), common to the members.
    pub a: [f64; 3],
    /// Number of member groups m.
    pub m: f64,
    /// Number of rows over the members (m · nᵢ).
    pub n_obs: f64,
    /// Σᵢ cᵢ.
    pub g: [f64; 2],
    /// Σᵢ cᵢcᵢᵀ as (00, 01, 11).
    pub cc: [f64; 3],
    /// Σᵢ yᵢᵀyᵢ.
    pub yy: f64,
    /// Member group indices, ascending.
    pub members: Vec<usize>,
}

/// Longitudinal data for the growth models: one row per (group, time, y).
///
/// Built by [`GrowthData::new`] (dense group indices) or [`GrowthData::from_ids`]
/// (arbitrary keys). Rows may come in any order; groups may have any number of rows
/// (≥ 1) at any, possibly repeated, times. `time` is in the caller's unit (weeks in
/// irtlake) and is not centred: the intercept is the level at time 0, as in
/// `lmer(y ~ time + (time | group))`.
#[derive(Debug, Clone, PartialEq)]
pub struct GrowthData {
    pub(crate) groups: Vec<GroupStats>,
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) group_pattern: Vec<usize>,
    pub(crate) n_obs: usize,
    /// ȳ, subtracted from every response.
    pub(crate) y_shift: f64,
    /// Whether time takes at least two distinct values overall.
    pub(crate) times_vary: bool,
    /// Number of groups with at least two distinct time values.
    pub(crate) groups_with_slope_info: usize,
}

impl GrowthData {
    /// Builds the data from dense group indices: `group[r]` in `0..n_groups` where
    /// `n_groups = max(group) + 1`, and every index in that range must have a row.
    ///
    /// Errors ([`GrowthError::InvalidInput`]): slices of different lengths, no rows,
    /// a non-finite time or response (the row is named), a group index without rows.
    pub fn new(group: &[usize], time: &[f64], y: &[f64]) -> Result<Self> {
        Self::build(group, time, y, None)
    }

    /// Like [`GrowthData::new`], but the responses are shifted by `y_shift` instead of
    /// their own mean. Results do not depend on the shift mathematically; a group's
    /// statistics do bit for bit. Data that a fit of *other* data is applied to (e.g.
    /// [`BayesFit::forecast_data`](super::BayesFit::forecast_data) on one shard of the
    /// students, with the fit's [`GrowthData::y_shift`]) therefore give every group
    /// exactly the numbers it gets inside the fitted data. Errors as
    /// [`GrowthData::new`], and a non-finite `y_shift`.
    pub fn with_shift(group: &[usize], time: &[f64], y: &[f64], y_shift: f64) -> Result<Self> {
        if !y_shift.is_finite() {
            return Err(GrowthError::InvalidInput(format!(
                "y_shift is not finite ({y_shift})"
            )));
        }
        Self::build(group, time, y, Some(y_shift))
    }

    fn build(group: &[usize], time: &[f64], y: &[f64], shift: Option<f64>) -> Result<Self> {
        if group.len() != time.len() || group.len() != y.len() {
            return Err(GrowthError::InvalidInput(format!(
                "group, time and y must have the same length, got {}, {}, {}",
                group.len(),
                time.len(),
                y.len()
            )));
        }
        if group.is_empty() {
            return Err(GrowthError::InvalidInput("no rows".into()));
        }
        for (r, (&t, &v)) in time.iter().zip(y).enumerate() {
            if !t.is_finite() {
                return Err(GrowthError::InvalidInput(format!(
                    "row {r}: time is not finite ({t})"
                )));
            }
            if !v.is_finite() {
                return Err(GrowthError::InvalidInput(format!(
                    "row {r}: y is not finite ({v})"
                )));
            }
        }
        let n_groups = group.iter().max().map_or(0, |g| g + 1);
        let n_obs = y.len();
        let y_shift = shift.unwrap_or_else(|| y.iter().sum::<f64>() / n_obs as f64);
        let mut groups = vec![GroupStats::default(); n_groups];
        let mut first_time = vec![f64::NAN; n_groups];
        let mut varies = vec![false; n_groups];
        for ((&g, &t), &v) in group.iter().zip(time).zip(y) {
            let s = &mut groups[g];
            let v = v - y_shift;
            s.n += 1.0;
            s.st += t;
            s.stt += t * t;
            s.sy += v;
            s.sty += t * v;
            s.syy += v * v;
            if first_time[g].is_nan() {
                first_time[g] = t;
            } else if t != first_time[g] {
                varies[g] = true;
            }
        }
        if let Some(empty) = groups.iter().position(|s| s.n == 0.0) {
            return Err(GrowthError::InvalidInput(format!(
                "group index {empty} has no rows (indices must be dense in 0..{n_groups})"
            )));
        }
        let t0 = time[0];
        let times_vary = time.iter().any(|&t| t != t0);
        let groups_with_slope_info = varies.iter().filter(|&&v| v).count();

        let mut index: HashMap<[u64; 3], usize> = HashMap::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut group_pattern = Vec::with_capacity(n_groups);
        for (i, s) in groups.iter().enumerate() {
            let a = s.a();
            let key = [a[0].to_bits(), a[1].to_bits(), a[2].to_bits()];
            let k = *index.entry(key).or_insert_with(|| {
                patterns.push(Pattern {
                    a,
                    m: 0.0,
                    n_obs: 0.0,
                    g: [0.0; 2],
                    cc: [0.0; 3],
                    yy: 0.0,
                    members: Vec::new(),
                });
                patterns.len() - 1
            });
            let p = &mut patterns[k];
            let c = s.c();
            p.m += 1.0;
            p.n_obs += s.n;
            p.g[0] += c[0];
            p.g[1] += c[1];
            p.cc[0] += c[0] * c[0];
            p.cc[1] += c[0] * c[1];
            p.cc[2] += c[1] * c[1];
            p.yy += s.syy;
            p.members.push(i);
            group_pattern.push(k);
        }
        Ok(Self {
            groups,
            patterns,
            group_pattern,
            n_obs,
            y_shift,
            times_vary,
            groups_with_slope_info,
        })
    }

    /// Builds the data from arbitrary group keys; returns the data and the keys in
    /// group-index order (order of first appearance), so that group `k` of every
    /// result is `keys[k]`. Errors as [`GrowthData::new`].
    pub fn from_ids<K: Eq + Hash + Clone>(
        ids: &[K],
        time: &[f64],
        y: &[f64],
    ) -> Result<(Self, Vec<K>)> {
        let (group, keys) = dense_groups(ids);
        Ok((Self::new(&group, time, y)?, keys))
    }

    /// [`GrowthData::from_ids`] with the responses shifted by `y_shift`
    /// ([`GrowthData::with_shift`]).
    pub fn from_ids_with_shift<K: Eq + Hash + Clone>(
        ids: &[K],
        time: &[f64],
        y: &[f64],
        y_shift: f64,
    ) -> Result<(Self, Vec<K>)> {
        let (group, keys) = dense_groups(ids);
        Ok((Self::with_shift(&group, time, y, y_shift)?, keys))
    }

    /// The shift subtracted from every response: the mean response for
    /// [`GrowthData::new`], the given value for [`GrowthData::with_shift`].
    pub fn y_shift(&self) -> f64 {
        self.y_shift
    }

    /// Number of groups.
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Number of rows.
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    /// Number of distinct design patterns (groups with the same XᵢᵀXᵢ); the per
    /// evaluation cost of both likelihoods is proportional to it.
    pub fn n_patterns(&self) -> usize {
        self.patterns.len()
    }

    /// Rows of group `g` (panics if `g >= n_groups()`).
    pub fn group_size(&self, g: usize) -> usize {
        self.groups[g].n as usize
    }

    /// Checks what both models need: at least [`MIN_GROUPS`] groups, at least two
    /// distinct time values (else the fixed slope is not estimable) and at least one
    /// group observed at two distinct times (else the random-slope variance cannot be
    /// told apart from the residual variance).
    pub fn check_identifiable(&self) -> Result<()> {
        if self.n_groups() < MIN_GROUPS {
            return Err(GrowthError::TooFewGroups {
                groups: self.n_groups(),
                min: MIN_GROUPS,
            });
        }
        if !self.times_vary {
            return Err(GrowthError::SlopeNotIdentifiable(
                "every row has the same time value: the slope is not estimable".into(),
            ));
        }
        if self.groups_with_slope_info == 0 {
            return Err(GrowthError::SlopeNotIdentifiable(
                "no group is observed at two distinct times: the random-slope variance is not identifiable".into(),
            ));
        }
        Ok(())
    }
}

/// Dense group indices of `ids` in order of first appearance, and the keys in index order.
pub(crate) fn dense_groups<K: Eq + Hash + Clone>(ids: &[K]) -> (Vec<usize>, Vec<K>) {
    let mut index: HashMap<&K, usize> = HashMap::new();
    let mut keys = Vec::new();
    let group: Vec<usize> = ids
        .iter()
        .map(|k| {
            *index.entry(k).or_insert_with(|| {
                keys.push(k.clone());
                keys.len() - 1
            })
        })
        .collect();
    (group, keys)
}
