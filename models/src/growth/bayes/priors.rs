//! Priors of the Bayesian growth model ([`BayesPriors`], [`CorrelationPrior`]) and
//! their range checks.

use serde::{Deserialize, Serialize};

use crate::growth::lmm::VarianceComponents;
use crate::growth::{GrowthError, Result};

/// Prior on the correlation of random intercept and slope.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorrelationPrior {
    /// ρ = 0: independent random intercepts and slopes (5 sampled parameters).
    Independent,
    /// LKJ(η) on the 2 × 2 correlation matrix: density ∝ (1 − ρ²)^(η−1); η = 2 (the
    /// default) is weakly informative, η = 1 uniform.
    Lkj {
        /// Shape η > 0.
        eta: f64,
    },
}

/// Priors of the Bayesian growth model (defaults are DESIGN.md §4's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesPriors {
    /// Prior mean of the intercept β₀ (default 0, θ units).
    pub intercept_mean: f64,
    /// Prior SD of β₀ (default 1).
    pub intercept_sd: f64,
    /// Prior mean of the slope β₁ (default 0, θ per week).
    pub slope_mean: f64,
    /// Prior SD of β₁ (default 0.5).
    pub slope_sd: f64,
    /// Half-Cauchy scale of τ₀ (default 1).
    pub sd_intercept_scale: f64,
    /// Half-Cauchy scale of τ₁ (default 1).
    pub sd_slope_scale: f64,
    /// Half-Cauchy scale of σ (default 1).
    pub sigma_scale: f64,
    /// Prior on ρ (default LKJ(2)).
    pub correlation: CorrelationPrior,
    /// Known variance components: when set, τ₀, τ₁, ρ and σ are held at these values
    /// and only β is sampled (the scale priors and `correlation` are then unused). For
    /// validation against the conjugate closed form and for sensitivity analyses.
    pub fixed_variances: Option<VarianceComponents>,
}

impl Default for BayesPriors {
    fn default() -> Self {
        Self {
            intercept_mean: 0.0,
            intercept_sd: 1.0,
            slope_mean: 0.0,
            slope_sd: 0.5,
            sd_intercept_scale: 1.0,
            sd_slope_scale: 1.0,
            sigma_scale: 1.0,
            correlation: CorrelationPrior::Lkj { eta: 2.0 },
            fixed_variances: None,
        }
    }
}

impl BayesPriors {
    pub(super) fn validate(&self) -> Result<()> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        let ok = self.intercept_mean.is_finite()
            && self.slope_mean.is_finite()
            && pos(self.intercept_sd)
            && pos(self.slope_sd)
            && pos(self.sd_intercept_scale)
            && pos(self.sd_slope_scale)
            && pos(self.sigma_scale)
            && match self.correlation {
                CorrelationPrior::Independent => true,
                CorrelationPrior::Lkj { eta } => pos(eta),
            };
        if !ok {
            return Err(GrowthError::InvalidConfig(format!(
                "priors need finite means and positive SDs, scales and LKJ eta; got {self:?}"
            )));
        }
        if let Some(v) = &self.fixed_variances {
            v.validate()?;
        }
        Ok(())
    }
}
