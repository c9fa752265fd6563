//! Weekly KPI formulas (DESIGN.md §4). Every function is pure and documented with its
//! units; the `kpis` stage feeds them one student-week at a time.
//!
//! - I_t (improvement, unitless in [−1, 1]) = clamp((x_recent − x_prev) · exposure_adj ·
//!   penalty_from_se, −1, 1), where x is an EAP θ (`theta_delta`) or, when either week
//!   has no θ, the accuracy (`accuracy_delta`, with the binomial SE √(p(1−p)/n));
//!   exposure_adj = min(1, n_recent / 20); penalty_from_se = 1 / (1 + se_recent² + se_prev²).
//! - A_t (activity, [0, 1]) = min(1, sessions_in_week / 5).
//! - E_t (efficiency, [0, 1]) = accuracy · min(1, t_ref / t_mean), t_ref the bank's median
//!   time per item and t_mean the student's mean time per item in the week (same unit).
//! - R_t (recovery, [0, 1] or none) = share of wrong answers followed, within the week and
//!   the same topic, by a right answer on the student's next attempt in that topic.

use serde::{Deserialize, Serialize};

/// Responses at which the exposure adjustment of I_t reaches 1.
pub const FULL_EXPOSURE_RESPONSES: f64 = 20.0;
/// Sessions in a week at which A_t reaches 1.
pub const FULL_ACTIVITY_SESSIONS: f64 = 5.0;

/// A weekly measurement of a student: a value (θ in logits, or accuracy in [0, 1]), its
/// standard error in the same unit, and the number of responses it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// θ (logits) or accuracy (proportion).
    pub value: f64,
    /// Standard error of `value`.
    pub se: f64,
    /// Responses behind it.
    pub n: usize,
}

/// How I_t was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImprovementMethod {
    /// From θ of this and the previous week.
    ThetaDelta,
    /// From accuracy of this and the previous week (no θ in one of them).
    AccuracyDelta,
}

impl ImprovementMethod {
    /// `theta_delta` or `accuracy_delta` (the `weekly_kpi.method` values).
    pub fn as_str(self) -> &'static str {
        match self {
            ImprovementMethod::ThetaDelta => "theta_delta",
            ImprovementMethod::AccuracyDelta => "accuracy_delta",
        }
    }
}

/// min(1, n_recent / 20): a week with few responses moves I_t less.
pub fn exposure_adj(n_recent: usize) -> f64 {
    (n_recent as f64 / FULL_EXPOSURE_RESPONSES).min(1.0)
}

/// 1 / (1 + se_recent² + se_prev²): uncertain measurements move I_t less.
pub fn penalty_from_se(se_recent: f64, se_prev: f64) -> f64 {
    1.0 / (1.0 + se_recent * se_recent + se_prev * se_prev)
}

/// clamp((recent − prev) · exposure_adj(n_recent) · penalty_from_se, −1, 1).
pub fn improvement(recent: &Measure, prev: &Measure) -> f64 {
    let raw =
        (recent.value - prev.value) * exposure_adj(recent.n) * penalty_from_se(recent.se, prev.se);
    raw.clamp(-1.0, 1.0)
}

/// Binomial standard error of an accuracy `p` over `n` responses, √(p(1−p)/n); 0 for n = 0.
pub fn accuracy_se(p: f64, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        (p * (1.0 - p) / n as f64).sqrt()
    }
}

/// An accuracy as a [`Measure`] (`correct` of `n`); `None` when `n` = 0.
pub fn accuracy_measure(correct: usize, n: usize) -> Option<Measure> {
    (n > 0).then(|| {
        let p = correct as f64 / n as f64;
        Measure {
            value: p,
            se: accuracy_se(p, n),
            n,
        }
    })
}

/// I_t with its method: θ delta when both weeks have θ, else accuracy delta when both
/// weeks have responses, else `None` (no previous week).
pub fn improvement_index(
    theta_recent: Option<&Measure>,
    theta_prev: Option<&Measure>,
    acc_recent: Option<&Measure>,
    acc_prev: Option<&Measure>,
) -> Option<(f64, ImprovementMethod)> {
    match (theta_recent, theta_prev, acc_recent, acc_prev) {
        (Some(r), Some(p), _, _) => Some((improvement(r, p), ImprovementMethod::ThetaDelta)),
        (_, _, Some(r), Some(p)) => Some((improvement(r, p), ImprovementMethod::AccuracyDelta)),
        _ => None,
    }
}

/// A_t = min(1, sessions / 5).
pub fn activity(sessions: usize) -> f64 {
    (sessions as f64 / FULL_ACTIVITY_SESSIONS).min(1.0)
}

/// E_t = accuracy · min(1, t_ref / t_mean); a non-positive or non-finite t_mean gives
/// the plain accuracy (no time information).
pub fn efficiency(accuracy: f64, t_ref: f64, t_mean: f64) -> f64 {
    if t_mean > 0.0 && t_mean.is_finite() && t_ref.is_finite() && t_ref >= 0.0 {
        accuracy * (t_ref / t_mean).min(1.0)
    } else {
        accuracy
    }
}

/// R_t over one student's attempts of one week in time order, as `(topic, correct)`:
/// the share of wrong answers whose next attempt in the same topic (within the slice) is
/// right. A wrong answer with no later attempt in its topic counts as not recovered.
/// `None` when there is no wrong answer.
pub fn recovery_rate<T: PartialEq>(attempts: &[(T, bool)]) -> Option<f64> {
    let mut wrong = 0usize;
    let mut recovered = 0usize;
    for (i, (topic, correct)) in attempts.iter().enumerate() {
        if *correct {
            continue;
        }
        wrong += 1;
        let next = attempts[i + 1..].iter().find(|(t, _)| t == topic);
        if next.is_some_and(|(_, right)| *right) {
            recovered += 1;
        }
    }
    (wrong > 0).then(|| recovered as f64 / wrong as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(value: f64, se: f64, n: usize) -> Measure {
        Measure { value, se, n }
    }

    #[test]
    fn improvement_by_hand() {
        // (0.8 − 0.2) · min(1, 10/20) · 1/(1 + 0.3² + 0.4²) = 0.6 · 0.5 / 1.25 = 0.24
        let v = improvement(&m(0.8, 0.3, 10), &m(0.2, 0.4, 12));
        assert!((v - 0.24).abs() < 1e-12, "{v}");
        // full exposure at 20 and above
        assert_eq!(exposure_adj(20), 1.0);
        assert_eq!(exposure_adj(40), 1.0);
        assert_eq!(exposure_adj(5), 0.25);
    }

    #[test]
    fn improvement_is_clamped() {
        assert_eq!(improvement(&m(4.0, 0.0, 30), &m(-2.0, 0.0, 30)), 1.0);
        assert_eq!(improvement(&m(-4.0, 0.0, 30), &m(2.0, 0.0, 30)), -1.0);
    }

    #[test]
    fn method_falls_back_to_accuracy_then_to_none() {
        let t = m(0.5, 0.3, 20);
        let a = accuracy_measure(15, 20).unwrap();
        let a0 = accuracy_measure(10, 20).unwrap();
        assert_eq!(
            improvement_index(Some(&t), Some(&t), Some(&a), Some(&a0))
                .unwrap()
                .1,
            ImprovementMethod::ThetaDelta
        );
        let (v, method) = improvement_index(Some(&t), None, Some(&a), Some(&a0)).unwrap();
        assert_eq!(method, ImprovementMethod::AccuracyDelta);
        // (0.75 − 0.5) · 1 / (1 + 0.75·0.25/20 + 0.5·0.5/20)
        let expected = 0.25 / (1.0 + 0.1875 / 20.0 + 0.25 / 20.0);
        assert!((v - expected).abs() < 1e-12);
        // no previous week at all
        assert!(improvement_index(Some(&t), None, Some(&a), None).is_none());
        assert!(accuracy_measure(0, 0).is_none());
    }

    #[test]
    fn activity_and_efficiency() {
        assert_eq!(activity(1), 0.2);
        assert_eq!(activity(5), 1.0);
        assert_eq!(activity(9), 1.0);
        assert_eq!(activity(0), 0.0);
        // slower than the reference: penalised; faster: not rewarded beyond accuracy
        assert!((efficiency(0.8, 30.0, 60.0) - 0.4).abs() < 1e-12);
        assert_eq!(efficiency(0.8, 30.0, 15.0), 0.8);
        assert_eq!(efficiency(0.8, 30.0, 0.0), 0.8);
    }

    #[test]
    fn recovery_by_hand() {
        // topics a, b: a✗ b✗ a✓ b✗ b✓ a✗  → wrong: a✗(→a✓ yes), b✗(→b✗ no), b✗(→b✓ yes), a✗(none)
        let seq = [
            ("a", false),
            ("b", false),
            ("a", true),
            ("b", false),
            ("b", true),
            ("a", false),
        ];
        assert_eq!(recovery_rate(&seq), Some(0.5));
        assert_eq!(recovery_rate(&[("a", true), ("a", true)]), None);
        assert_eq!(recovery_rate::<&str>(&[]), None);
        assert_eq!(recovery_rate(&[("a", false)]), Some(0.0));
    }
}
