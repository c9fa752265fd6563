//! The growth goal: the level a student should reach by the target week, from which the
//! stage's P (the probability of reaching it) is computed.
//!
//! Goal = the cohort's current level + [`GOAL_OFFSET`] logits. The current level is the
//! mean θ of the students with a θ in the current week; when nobody has one, the fitted
//! intercept of the growth model (the typical student's level at week 0) stands in. For
//! the accuracy GLMM the level is a log-odds of a right answer, and 0.5 logits more θ is
//! exactly 0.5 logits more log-odds for a Rasch item, so both goals ask for the same gain.

/// The goal's gain over the current level, in logits (θ, or log-odds of a right answer).
pub const GOAL_OFFSET: f64 = 0.5;

/// The target of the goal: this many weeks after the current week.
pub const TARGET_WEEKS: f64 = 4.0;

/// What the goal's base level is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalBasis {
    /// The mean θ of the students with a θ in the current week.
    CurrentWeekMean,
    /// The model's fitted intercept (nobody has a θ in the current week).
    FittedIntercept,
}

impl GoalBasis {
    /// The name recorded in the stage summary and `growth_fit`.
    pub fn as_str(self) -> &'static str {
        match self {
            GoalBasis::CurrentWeekMean => "current_week_mean",
            GoalBasis::FittedIntercept => "fitted_intercept",
        }
    }
}

/// A growth goal: the level to reach by [`TARGET_WEEKS`], and where its base came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    /// The level to reach, logits.
    pub level: f64,
    /// Its base.
    pub basis: GoalBasis,
}

/// The goal from the cohort's current mean θ (`None` when nobody has a θ in the current
/// week), else from the model's fitted intercept: base + [`GOAL_OFFSET`].
pub fn growth_goal(current_mean: Option<f64>, fitted_intercept: f64) -> Goal {
    match current_mean {
        Some(m) => Goal {
            level: m + GOAL_OFFSET,
            basis: GoalBasis::CurrentWeekMean,
        },
        None => Goal {
            level: fitted_intercept + GOAL_OFFSET,
            basis: GoalBasis::FittedIntercept,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_goal_is_half_a_logit_above_the_current_level() {
        let g = growth_goal(Some(0.2), -1.0);
        assert_eq!(g.level, 0.7);
        assert_eq!(g.basis.as_str(), "current_week_mean");
        let g = growth_goal(None, -1.0);
        assert_eq!(g.level, -0.5);
        assert_eq!(g.basis.as_str(), "fitted_intercept");
    }
}
