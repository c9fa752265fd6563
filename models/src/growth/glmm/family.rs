//! The binomial family with the logit link (private): stable log-likelihood terms and
//! the log binomial coefficient.
//!
//! With η the linear predictor and μ = 1/(1 + e^−η), a row of k successes out of m
//! trials contributes log C(m, k) + k·log μ + (m − k)·log(1 − μ) = log C(m, k) + kη − m·s(η)
//! to the log-likelihood, s(η) = log(1 + e^η) (softplus), computed without overflow.

pub(crate) use crate::numeric::logistic;

/// Lanczos coefficients (g = 7, n = 9; Godfrey's set, relative error below 1e-15 for
/// x ≥ 1/2).
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// log Γ(x) for x ≥ 1/2 (Lanczos approximation).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    let x = x - 1.0;
    let mut a = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * std::f64::consts::TAU.ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// log C(m, k) for whole numbers 0 ≤ k ≤ m: an exact sum of logs when min(k, m − k) is
/// at most 50, else from [`ln_gamma`].
pub(crate) fn ln_choose(m: f64, k: f64) -> f64 {
    let s = k.min(m - k);
    if s <= 0.0 {
        return 0.0;
    }
    if s <= 50.0 {
        let base = m - s;
        (1..=s as u32)
            .map(|j| ((base + f64::from(j)) / f64::from(j)).ln())
            .sum()
    } else {
        ln_gamma(m + 1.0) - ln_gamma(k + 1.0) - ln_gamma(m - k + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::softplus;

    #[test]
    fn ln_gamma_matches_log_factorials() {
        let mut ln_fact = 0.0_f64;
        for n in 1..=200u32 {
            ln_fact += f64::from(n).ln();
            let got = ln_gamma(f64::from(n) + 1.0);
            assert!(
                (got - ln_fact).abs() <= 1e-12 * ln_fact.max(1.0),
                "ln {n}! = {ln_fact}, got {got}"
            );
        }
        // Γ(1/2) = √π.
        assert!((ln_gamma(0.5) - 0.5 * std::f64::consts::PI.ln()).abs() < 1e-14);
    }

    #[test]
    fn ln_choose_agrees_on_both_branches() {
        assert_eq!(ln_choose(10.0, 0.0), 0.0);
        assert!((ln_choose(10.0, 3.0) - 120f64.ln()).abs() < 1e-14);
        // 200 choose 100 by the sum and by Γ.
        let by_gamma = ln_gamma(201.0) - 2.0 * ln_gamma(101.0);
        assert!((ln_choose(200.0, 100.0) - by_gamma).abs() < 1e-10);
        let mut sum = 0.0;
        for j in 1..=50u32 {
            sum += ((150.0 + f64::from(j)) / f64::from(j)).ln();
        }
        assert!((ln_choose(200.0, 50.0) - sum).abs() < 1e-12);
    }

    #[test]
    fn softplus_and_logistic_are_stable() {
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(softplus(800.0), 800.0);
        assert!(softplus(-800.0) >= 0.0 && softplus(-800.0) < 1e-300);
        assert_eq!(logistic(-800.0), 0.0);
        assert_eq!(logistic(800.0), 1.0);
        assert!((logistic(1.0) + logistic(-1.0) - 1.0).abs() < 1e-15);
    }
}
