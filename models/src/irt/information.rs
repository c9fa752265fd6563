//! Item and test (Fisher) information of the 3PL family.
//!
//! Birnbaum (1968), in Lord & Novick, *Statistical Theories of Mental Test Scores*,
//! ch. 17–20; see also Baker & Kim, *Item Response Theory* (2004), §3.4:
//!
//! I_j(θ) = a² · (Q/P) · ((P − c)/(1 − c))²,
//!
//! which for c = 0 (2PL, Rasch) reduces to a² · P · Q, maximal (a²/4) at θ = b.
//! Information is in units of 1/θ²: the standard error of an ML ability estimate is
//! approximately 1/√I(θ).

use super::params::ItemParams;

/// Logistic σ(z) and 1 − σ(z), each computed without cancellation.
#[inline]
pub(crate) fn logistic_pair(z: f64) -> (f64, f64) {
    if z >= 0.0 {
        let e = (-z).exp();
        (1.0 / (1.0 + e), e / (1.0 + e))
    } else {
        let e = z.exp();
        (e / (1.0 + e), 1.0 / (1.0 + e))
    }
}

/// Fisher information of one item at ability `theta` (units: 1/θ²).
///
/// Birnbaum's 3PL formula a² · (Q/P) · ((P − c)/(1 − c))², written with the logistic
/// σ = (P − c)/(1 − c) as a² (1 − c) σ (1 − σ) · σ / (c + (1 − c) σ) so that it stays finite
/// (tending to 0) far from `b`; for c = 0 it is exactly a² P Q. Parameters are not
/// validated here (see [`ItemParams::validate`]).
#[inline]
pub fn item_information(item: &ItemParams, theta: f64) -> f64 {
    let (s, one_minus_s) = logistic_pair(item.a * (theta - item.b));
    let base = item.a * item.a * s * one_minus_s;
    if item.c == 0.0 {
        base
    } else {
        // P = c + (1 − c) σ ≥ c > 0, so the ratio is well defined.
        let p = item.c + (1.0 - item.c) * s;
        base * (1.0 - item.c) * s / p
    }
}

/// Test information: the sum of the item informations at `theta` (units: 1/θ²).
///
/// Lord (1980), *Applications of Item Response Theory*, eq. 5-6: I(θ) = Σ_j I_j(θ).
pub fn test_information(items: &[ItemParams], theta: f64) -> f64 {
    items.iter().map(|it| item_information(it, theta)).sum()
}
