//! Linking a calibration to an anchor scale.
//!
//! A calibration identifies θ only up to a linear transformation (its latent
//! distribution is fixed at N(0, 1)). Anchor items with known parameters on the base
//! (anchor) scale give the constants A, B of θ* = Aθ + B that carry the new scale onto
//! the base scale; items then transform as a* = a/A, b* = A·b + B, c* = c
//! (Kolen & Brennan, *Test Equating, Scaling, and Linking*, 3rd ed., 2014, ch. 6).
//!
//! Methods: moment methods [`mean_mean`] (Loyd & Hoover, 1980) and [`mean_sigma`]
//! (Marco, 1977); characteristic-curve methods [`stocking_lord`] (Stocking & Lord, 1983)
//! and [`haebara`] (Haebara, 1980). Fixed-anchor linking (anchor parameters held fixed
//! during EM) is not a post-hoc transformation and happens inside calibration.

mod curves;
mod drift;
mod moments;
mod recent;

pub use curves::{
    CurveLink, CurveSettings, haebara, haebara_with, stocking_lord, stocking_lord_with,
};
pub use drift::{AnchorDrift, DriftRules, ScreenAnchors, ScreenedLink, screen_and_link};
pub use moments::{mean_mean, mean_sigma};
pub use recent::{RecentShift, recent_shifts};

use serde::{Deserialize, Serialize};

use crate::irt::{IrtError, ItemParams, Quadrature, Result};

/// Linear transformation from the new scale to the base scale: θ* = A·θ + B.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkingConstants {
    /// Slope A (> 0): base-scale units per new-scale unit.
    pub a: f64,
    /// Intercept B, base-scale θ units.
    pub b: f64,
}

impl LinkingConstants {
    /// The identity transformation (A = 1, B = 0).
    pub const IDENTITY: LinkingConstants = LinkingConstants { a: 1.0, b: 0.0 };

    /// Ability on the base scale: θ* = A·θ + B.
    #[inline]
    pub fn theta(&self, t: f64) -> f64 {
        self.a * t + self.b
    }

    /// Standard error of θ on the base scale: se* = A·se (A > 0).
    #[inline]
    pub fn se(&self, se: f64) -> f64 {
        self.a * se
    }

    /// Item parameters on the base scale: a* = a/A, b* = A·b + B, c* = c
    ///. P(θ; item) = P(A·θ + B; transformed item).
    #[inline]
    pub fn item(&self, p: &ItemParams) -> ItemParams {
        ItemParams {
            a: p.a / self.a,
            b: self.a * p.b + self.b,
            c: p.c,
        }
    }
}

/// How a calibration is put on the anchor scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkingMethod {
    /// No linking: the calibration's own scale (identity constants). Default.
    #[default]
    None,
    /// Mean/mean: A = mean(a_new)/mean(a_base), B = mean(b_base) − A·mean(b_new).
    MeanMean,
    /// Mean/sigma: A = sd(b_base)/sd(b_new), B = mean(b_base) − A·mean(b_new).
    MeanSigma,
    /// Stocking–Lord test characteristic curve criterion.
    StockingLord,
    /// Haebara item characteristic curve criterion.
    Haebara,
    /// Fixed anchors: anchor parameters held fixed during calibration (no constants).
    Fixed,
}

impl LinkingMethod {
    /// The name used in configs and on the command line: `none`, `mean-mean`,
    /// `mean-sigma`, `stocking-lord`, `haebara`, `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkingMethod::None => "none",
            LinkingMethod::MeanMean => "mean-mean",
            LinkingMethod::MeanSigma => "mean-sigma",
            LinkingMethod::StockingLord => "stocking-lord",
            LinkingMethod::Haebara => "haebara",
            LinkingMethod::Fixed => "fixed",
        }
    }
}

impl std::str::FromStr for LinkingMethod {
    type Err = IrtError;
    /// Parses the names of [`LinkingMethod::as_str`] (case-insensitive; `_` accepted for `-`).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "none" => Ok(LinkingMethod::None),
            "mean-mean" => Ok(LinkingMethod::MeanMean),
            "mean-sigma" => Ok(LinkingMethod::MeanSigma),
            "stocking-lord" => Ok(LinkingMethod::StockingLord),
            "haebara" => Ok(LinkingMethod::Haebara),
            "fixed" => Ok(LinkingMethod::Fixed),
            other => Err(IrtError::InvalidConfig(format!(
                "unknown linking method '{other}' (expected none, mean-mean, mean-sigma, \
                 stocking-lord, haebara or fixed)"
            ))),
        }
    }
}

impl std::fmt::Display for LinkingMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computes the constants that put the new scale onto the base scale with `method`.
///
/// `new`: the anchor items as estimated in the current calibration; `base`: the same
/// anchors' known parameters on the anchor scale, in the same order. `quad` is used by
/// the characteristic-curve methods only (θ grid and weights on the base scale).
///
/// `None` returns [`LinkingConstants::IDENTITY`] without looking at the inputs. `Fixed`
/// is an error: fixed-anchor linking happens inside calibration (pass the anchors'
/// parameters in `FitConfig.fixed`), and its result is already on the anchor scale.
pub fn link(
    method: LinkingMethod,
    new: &[ItemParams],
    base: &[ItemParams],
    quad: &Quadrature,
) -> Result<LinkingConstants> {
    match method {
        LinkingMethod::None => Ok(LinkingConstants::IDENTITY),
        LinkingMethod::MeanMean => mean_mean(new, base),
        LinkingMethod::MeanSigma => mean_sigma(new, base),
        LinkingMethod::StockingLord => stocking_lord(new, base, quad),
        LinkingMethod::Haebara => haebara(new, base, quad),
        LinkingMethod::Fixed => Err(IrtError::InvalidConfig(
            "fixed-anchor linking happens inside calibration: hold the anchors' base-scale \
             parameters fixed via FitConfig.fixed (the result is then already on the anchor \
             scale, constants are identity)"
                .to_string(),
        )),
    }
}

/// Checks a pair of anchor lists: same length, at least 2, every parameter valid.
fn validate_anchors(new: &[ItemParams], base: &[ItemParams]) -> Result<()> {
    if new.len() != base.len() {
        return Err(IrtError::InvalidConfig(format!(
            "linking needs the same anchors on both scales: {} new vs {} base parameter sets",
            new.len(),
            base.len()
        )));
    }
    if new.len() < 2 {
        return Err(IrtError::InvalidConfig(format!(
            "linking needs at least 2 anchor items, got {}",
            new.len()
        )));
    }
    for (which, list) in [("new", new), ("base", base)] {
        for (i, p) in list.iter().enumerate() {
            p.validate(i).map_err(|e| match e {
                IrtError::InvalidItem { item, reason } => IrtError::InvalidItem {
                    item,
                    reason: format!("{which}-scale anchor: {reason}"),
                },
                other => other,
            })?;
        }
    }
    Ok(())
}

/// Checks that the constants are usable (finite, A > 0); `method` names the source.
fn checked(method: &str, k: LinkingConstants) -> Result<LinkingConstants> {
    if k.a.is_finite() && k.a > 0.0 && k.b.is_finite() {
        Ok(k)
    } else {
        Err(IrtError::InvalidConfig(format!(
            "{method} linking gave unusable constants A = {}, B = {}",
            k.a, k.b
        )))
    }
}
