//! Harrell's concordance index for right-censored data, O(n log n).

use serde::{Deserialize, Serialize};

use super::{Result, SurvivalError, validate_times};

/// Pair counts and Harrell's C for a risk score (higher score = higher hazard =
/// shorter expected survival, the orientation of a Cox linear predictor; R's
/// `concordance(..., reverse = TRUE)`, which `concordance(coxph_fit)` selects itself).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Concordance {
    /// Comparable pairs in which the subject with the earlier event has the higher score.
    pub concordant: u64,
    /// Comparable pairs in which the subject with the earlier event has the lower score.
    pub discordant: u64,
    /// Comparable pairs with equal scores (R's `tied.x`).
    pub tied_risk: u64,
    /// C = (concordant + tied_risk/2) / (concordant + discordant + tied_risk);
    /// NaN when no pair is comparable (as R's 0/0).
    pub value: f64,
}

impl Concordance {
    /// Number of comparable pairs: concordant + discordant + tied_risk.
    pub fn comparable(&self) -> u64 {
        self.concordant + self.discordant + self.tied_risk
    }
}

/// Harrell's C between right-censored times and a risk score, with R's
/// `survival::concordance` conventions (default `timewt = "n"`):
///
/// * a pair (i, j) is comparable when i has an event and j was still under observation
///   after it: `time[j] > time[i]`, or `time[j] == time[i]` with j censored (a subject
///   censored at t outlived an event at t);
/// * pairs of events at the same time (R's `tied.y`) and pairs whose earlier time is
///   censored are not comparable;
/// * comparable pairs with exactly equal scores count 1/2 (R's `tied.x`).
///
/// Scores are compared exactly: pass the linear predictor, not a rounded copy.
/// Cost O(n log n) (a Fenwick tree over score ranks; subjects enter the tree in order of
/// decreasing time).
///
/// Errors: [`SurvivalError::LengthMismatch`], [`SurvivalError::Empty`],
/// [`SurvivalError::NonFinite`] (time or risk score), [`SurvivalError::NegativeTime`].
pub fn concordance(time: &[f64], event: &[bool], risk: &[f64]) -> Result<Concordance> {
    validate_times(time, event)?;
    if risk.len() != time.len() {
        return Err(SurvivalError::LengthMismatch {
            what: "risk".into(),
            expected: time.len(),
            got: risk.len(),
        });
    }
    if let Some(i) = risk.iter().position(|r| !r.is_finite()) {
        return Err(SurvivalError::NonFinite {
            what: "risk score",
            index: i,
        });
    }
    Ok(concordance_unchecked(time, event, risk))
}

/// [`concordance`] on validated input.
pub(crate) fn concordance_unchecked(time: &[f64], event: &[bool], risk: &[f64]) -> Concordance {
    let n = time.len();
    let mut levels: Vec<f64> = risk.to_vec();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let rank = |x: f64| levels.partition_point(|&l| l < x);
    let mut tree = Fenwick::new(levels.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| time[b].total_cmp(&time[a]));
    let (mut conc, mut disc, mut tied) = (0u64, 0u64, 0u64);
    let mut in_tree = 0u64;
    let mut i = 0;
    while i < n {
        let t = time[order[i]];
        let mut j = i;
        while j < n && time[order[j]] == t {
            j += 1;
        }
        let group = &order[i..j];
        // censored at t outlive the events at t: they enter first
        for &s in group.iter().filter(|&&s| !event[s]) {
            tree.add(rank(risk[s]));
            in_tree += 1;
        }
        for &s in group.iter().filter(|&&s| event[s]) {
            let k = rank(risk[s]);
            let below = tree.prefix(k); // scores < risk[s]
            let equal = tree.prefix(k + 1) - below;
            conc += below;
            tied += equal;
            disc += in_tree - below - equal;
        }
        for &s in group.iter().filter(|&&s| event[s]) {
            tree.add(rank(risk[s]));
            in_tree += 1;
        }
        i = j;
    }
    let total = conc + disc + tied;
    let value = if total == 0 {
        f64::NAN
    } else {
        (conc as f64 + 0.5 * tied as f64) / total as f64
    };
    Concordance {
        concordant: conc,
        discordant: disc,
        tied_risk: tied,
        value,
    }
}

/// Binary indexed tree of counts over ranks `0..len`.
struct Fenwick {
    counts: Vec<u64>,
}

impl Fenwick {
    fn new(len: usize) -> Self {
        Self {
            counts: vec![0; len + 1],
        }
    }

    fn add(&mut self, rank: usize) {
        let mut i = rank + 1;
        while i < self.counts.len() {
            self.counts[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// Count of entries with rank < `k`.
    fn prefix(&self, k: usize) -> u64 {
        let mut i = k;
        let mut s = 0;
        while i > 0 {
            s += self.counts[i];
            i -= i & i.wrapping_neg();
        }
        s
    }
}
