//! Moment methods: mean/mean and mean/sigma (Kolen & Brennan, 2014, ch. 6).

use super::{LinkingConstants, checked, validate_anchors};
use crate::irt::{IrtError, ItemParams, Result};

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (n, s) = xs.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    s / n as f64
}

/// Population standard deviation (the n − 1 factor cancels in the ratio A anyway).
fn sd(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = mean(xs.clone());
    mean(xs.map(|x| (x - m) * (x - m))).sqrt()
}

/// Mean/mean linking (Loyd & Hoover, 1980; Kolen & Brennan, 2014, ch. 6):
/// A = mean(a_new)/mean(a_base), B = mean(b_base) − A·mean(b_new).
///
/// `new`: anchors as estimated on the new scale; `base`: the same anchors on the base
/// scale (same order). Errors: different lengths, fewer than 2 anchors, an invalid
/// parameter, or non-finite constants.
pub fn mean_mean(new: &[ItemParams], base: &[ItemParams]) -> Result<LinkingConstants> {
    validate_anchors(new, base)?;
    let a = mean(new.iter().map(|p| p.a)) / mean(base.iter().map(|p| p.a));
    let b = mean(base.iter().map(|p| p.b)) - a * mean(new.iter().map(|p| p.b));
    checked("mean/mean", LinkingConstants { a, b })
}

/// Mean/sigma linking (Marco, 1977; Kolen & Brennan, 2014, ch. 6):
/// A = sd(b_base)/sd(b_new), B = mean(b_base) − A·mean(b_new).
///
/// `new`: anchors as estimated on the new scale; `base`: the same anchors on the base
/// scale (same order). Errors as [`mean_mean`], plus zero spread of b on either scale.
pub fn mean_sigma(new: &[ItemParams], base: &[ItemParams]) -> Result<LinkingConstants> {
    validate_anchors(new, base)?;
    let sd_new = sd(new.iter().map(|p| p.b));
    let sd_base = sd(base.iter().map(|p| p.b));
    for (which, s) in [("new", sd_new), ("base", sd_base)] {
        if !(s > 0.0 && s.is_finite()) {
            return Err(IrtError::InvalidConfig(format!(
                "mean/sigma linking needs anchor difficulties that vary: sd(b) on the {which} \
                 scale is {s}"
            )));
        }
    }
    let a = sd_base / sd_new;
    let b = mean(base.iter().map(|p| p.b)) - a * mean(new.iter().map(|p| p.b));
    checked("mean/sigma", LinkingConstants { a, b })
}
