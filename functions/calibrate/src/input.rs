//! Stage input: the event the state machine (or the CLI) passes, with its defaults.

use chrono::{DateTime, Days, NaiveDate, Utc};
use models::calibration::parse_prior_c;
use models::irt::{BetaPrior, Model};
use models::linking::LinkingMethod;
use serde::{Deserialize, Serialize};

use crate::{CalibrateError, Result};

/// A bank of items calibrated together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Bank {
    /// Every question.
    All,
    /// The questions of one subject.
    Subject(String),
    /// The questions of one topic.
    Topic(String),
}

impl Bank {
    /// `(kind, id)` as bound into the stage SQL.
    pub fn sql_params(&self) -> (&'static str, &str) {
        match self {
            Bank::All => ("all", ""),
            Bank::Subject(s) => ("subject", s),
            Bank::Topic(t) => ("topic", t),
        }
    }
}

impl std::str::FromStr for Bank {
    type Err = CalibrateError;
    /// `all`, `subject:<id>` or `topic:<id>`.
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            None if s == "all" => Ok(Bank::All),
            Some(("subject", id)) if !id.is_empty() => Ok(Bank::Subject(id.to_string())),
            Some(("topic", id)) if !id.is_empty() => Ok(Bank::Topic(id.to_string())),
            _ => Err(CalibrateError::InvalidInput(format!(
                "bank '{s}': expected all, subject:<id> or topic:<id>"
            ))),
        }
    }
}

impl TryFrom<String> for Bank {
    type Error = CalibrateError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Bank> for String {
    fn from(b: Bank) -> String {
        b.to_string()
    }
}

impl std::fmt::Display for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bank::All => f.write_str("all"),
            Bank::Subject(s) => write!(f, "subject:{s}"),
            Bank::Topic(t) => write!(f, "topic:{t}"),
        }
    }
}

/// Most observations a calibration keeps (`max_obs`).
pub const MAX_OBS: usize = 50_000_000;
/// Most quadrature points (`quadpts`): the E-step holds students × points.
pub const MAX_QUADPTS: usize = 301;
/// `theta_min` and `theta_max` lie in ±this.
pub const THETA_LIMIT: f64 = 20.0;
/// Most EM cycles (`max_iter`).
pub const MAX_ITER: usize = 100_000;
/// Largest `min_responses`.
pub const MAX_MIN_RESPONSES: usize = 10_000_000;

/// The stage event. Unknown fields are refused. Defaults and ranges are given per
/// field; a value out of range is `Fatal.InvalidInput` naming the field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrateInput {
    /// Last day of the window (UTC), `YYYY-MM-DD`, 2000-01-01 to 2099-12-31. Required.
    #[serde(deserialize_with = "lake::bounds::date")]
    pub run_date: NaiveDate,
    /// Id written on every output row. Default `calibrate-<run_date>-<bank>`.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Time written on every output row (`computed_at`, `updated_at`), RFC 3339 UTC.
    /// Default: now. The state machine passes its execution's start, so a re-run of the
    /// same execution input writes the same bytes.
    #[serde(default)]
    pub run_ts: Option<DateTime<Utc>>,
    /// `rasch`, `2pl` (default) or `3pl`.
    #[serde(default)]
    pub model: Option<String>,
    /// `all` (default), `subject:<id>` or `topic:<id>`.
    #[serde(default)]
    pub bank: Option<Bank>,
    /// Days in the window, ending on `run_date`, 1 to 3660. Default 60.
    #[serde(default)]
    pub lookback_days: Option<u32>,
    /// Attempts in the window at most in the fit sample, 1 to [`MAX_OBS`]: a seeded random
    /// sample of students with all their first attempts (see the crate docs); every
    /// student is scored whatever its size. Default 500,000.
    #[serde(default)]
    pub max_obs: Option<usize>,
    /// Seed of the fit sample (`student_bucket(student_id, seed)`). Default 0: the same
    /// students every day, so day-to-day changes of the estimates are not sampling noise.
    #[serde(default)]
    pub sample_seed: Option<u64>,
    /// `none`, `mean-mean`, `mean-sigma`, `stocking-lord`, `haebara`, `fixed`. Default:
    /// `stocking-lord` with ≥ 5 anchors with known parameters in the bank, else `none`.
    #[serde(default)]
    pub link: Option<String>,
    /// Quadrature points, 5 to [`MAX_QUADPTS`]. Default 61.
    #[serde(default)]
    pub quadpts: Option<usize>,
    /// Quadrature range lower end (θ), within ±[`THETA_LIMIT`]. Default −6.
    #[serde(default)]
    pub theta_min: Option<f64>,
    /// Quadrature range upper end (θ), within ±[`THETA_LIMIT`], above `theta_min`. Default 6.
    #[serde(default)]
    pub theta_max: Option<f64>,
    /// EM convergence tolerance (largest parameter change), 1e-12 to 1. Default 1e-4.
    #[serde(default)]
    pub tol: Option<f64>,
    /// EM cycles at most, 1 to [`MAX_ITER`]. Default 2000.
    #[serde(default)]
    pub max_iter: Option<usize>,
    /// Items with fewer responses are excluded, 1 to [`MAX_MIN_RESPONSES`]. Default 20.
    #[serde(default)]
    pub min_responses: Option<usize>,
    /// Prior on c (3PL): `none` or `beta:A,B`. Default `beta:5,17`.
    #[serde(default)]
    pub prior_c: Option<String>,
    /// Who scores the students: `inline` (default: this invocation scores every student
    /// of the window) or `shards` (this invocation fits and writes `item_params` and
    /// `fit_meta`; the stage `score_abilities`, one invocation per student shard, writes
    /// `abilities` — what the state machine does).
    #[serde(default)]
    pub scoring: Option<Scoring>,
    /// Days of the drift screen's recent period, ending on `run_date`, 0 to
    /// `lookback_days` − 1 (0: no time-split test). Each anchor's b on the first attempts
    /// of these days is compared with its b on the window's earlier ones
    /// (`models::linking::recent_shifts`). Default 7 (at most `lookback_days` − 1): a
    /// weekly calibration reads the week since the last one.
    #[serde(default)]
    pub drift_recent_days: Option<u32>,
}

/// Who scores the students of a calibration (`scoring` of the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// The calibrate invocation scores every student of the window.
    #[default]
    Inline,
    /// `score_abilities` scores the students shard by shard (see [`crate::score_abilities`]).
    Shards,
}

impl Scoring {
    /// Who scores when the fit sample is (`whole_window`) or is not the whole window: a
    /// whole-window sample's scores come with the fit, so it is always `Inline`.
    pub fn unless_whole_window(self, whole_window: bool) -> Scoring {
        if whole_window { Scoring::Inline } else { self }
    }

    /// `inline` or `shards`, as in the input and in `fit_meta.model_spec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scoring::Inline => "inline",
            Scoring::Shards => "shards",
        }
    }
}

impl CalibrateInput {
    /// An input for `run_date` with every default.
    pub fn new(run_date: NaiveDate) -> Self {
        Self {
            run_date,
            run_id: None,
            run_ts: None,
            model: None,
            bank: None,
            lookback_days: None,
            max_obs: None,
            sample_seed: None,
            link: None,
            quadpts: None,
            theta_min: None,
            theta_max: None,
            tol: None,
            max_iter: None,
            min_responses: None,
            prior_c: None,
            scoring: None,
            drift_recent_days: None,
        }
    }

    /// Applies defaults and checks every value; errors name the field.
    pub fn validate(&self) -> Result<ValidInput> {
        let bad = |m: String| CalibrateError::InvalidInput(m);
        let model: Model = match &self.model {
            None => Model::TwoPl,
            Some(m) => m.parse().map_err(|e| bad(format!("model: {e}")))?,
        };
        let link = match &self.link {
            None => None,
            Some(l) => Some(
                l.parse::<LinkingMethod>()
                    .map_err(|e| bad(format!("link: {e}")))?,
            ),
        };
        use lake::bounds::check_range;
        lake::bounds::check_date("run_date", self.run_date).map_err(bad)?;
        let lookback_days = check_range(
            "lookback_days",
            self.lookback_days.unwrap_or(60),
            1..=lake::bounds::MAX_LOOKBACK_DAYS,
        )
        .map_err(bad)?;
        let max_obs =
            check_range("max_obs", self.max_obs.unwrap_or(500_000), 1..=MAX_OBS).map_err(bad)?;
        let prior_c = match self.prior_c.as_deref() {
            None => None,
            Some(p) => Some(parse_prior_c(p).map_err(|e| bad(format!("prior_c: {e}")))?),
        };
        let bank = self.bank.clone().unwrap_or(Bank::All);
        let run_id = self
            .run_id
            .clone()
            .unwrap_or_else(|| format!("calibrate-{}-{}", self.run_date.format("%Y-%m-%d"), bank));
        if run_id.is_empty() {
            return Err(bad("run_id may not be empty".into()));
        }
        if let Some(t) = self.run_ts {
            lake::bounds::check_event_time("run_ts", t).map_err(bad)?;
        }
        let v = ValidInput {
            run_date: self.run_date,
            run_id,
            run_ts: self.run_ts.unwrap_or_else(Utc::now).timestamp_micros(),
            model,
            bank,
            lookback_days,
            max_obs,
            sample_seed: self.sample_seed.unwrap_or(0),
            link,
            quadpts: self.quadpts.unwrap_or(61),
            theta_min: self.theta_min.unwrap_or(-6.0),
            theta_max: self.theta_max.unwrap_or(6.0),
            tol: self.tol.unwrap_or(1e-4),
            max_iter: self.max_iter.unwrap_or(2000),
            min_responses: self.min_responses.unwrap_or(20),
            prior_c,
            scoring: self.scoring.unwrap_or_default(),
            drift_recent_days: self.drift_recent_days.unwrap_or(7.min(lookback_days - 1)),
        };
        check_range("quadpts", v.quadpts, 5..=MAX_QUADPTS).map_err(bad)?;
        check_range("theta_min", v.theta_min, -THETA_LIMIT..=THETA_LIMIT).map_err(bad)?;
        check_range("theta_max", v.theta_max, -THETA_LIMIT..=THETA_LIMIT).map_err(bad)?;
        if v.theta_min >= v.theta_max {
            return Err(bad(format!(
                "theta range [{}, {}] must be increasing (theta_min < theta_max)",
                v.theta_min, v.theta_max
            )));
        }
        check_range("tol", v.tol, 1e-12..=1.0).map_err(bad)?;
        check_range("max_iter", v.max_iter, 1..=MAX_ITER).map_err(bad)?;
        check_range("min_responses", v.min_responses, 1..=MAX_MIN_RESPONSES).map_err(bad)?;
        check_range(
            "drift_recent_days",
            v.drift_recent_days,
            0..=v.lookback_days.saturating_sub(1),
        )
        .map_err(bad)?;
        if v.window_start_checked().is_none() {
            return Err(bad("lookback_days reaches before the calendar".into()));
        }
        Ok(v)
    }
}

/// The input with defaults applied and values checked.
#[derive(Debug, Clone)]
pub struct ValidInput {
    /// Last day of the window.
    pub run_date: NaiveDate,
    /// Id on every output row.
    pub run_id: String,
    /// Time on every output row, µs since the epoch (UTC).
    pub run_ts: i64,
    /// IRT model.
    pub model: Model,
    /// Bank calibrated.
    pub bank: Bank,
    /// Window length in days.
    pub lookback_days: u32,
    /// Attempts at most in the fit sample.
    pub max_obs: usize,
    /// Seed of the fit sample.
    pub sample_seed: u64,
    /// Requested linking (`None` = automatic).
    pub link: Option<LinkingMethod>,
    /// Quadrature points.
    pub quadpts: usize,
    /// Quadrature lower end.
    pub theta_min: f64,
    /// Quadrature upper end.
    pub theta_max: f64,
    /// EM tolerance.
    pub tol: f64,
    /// EM cycles at most.
    pub max_iter: usize,
    /// Minimum responses per item.
    pub min_responses: usize,
    /// Prior on c when given (`Some(None)` = no prior); `None` = the model's default.
    pub prior_c: Option<Option<BetaPrior>>,
    /// Who scores the students.
    pub scoring: Scoring,
    /// Days of the drift screen's recent period (0: no time-split test).
    pub drift_recent_days: u32,
}

impl ValidInput {
    fn window_start_checked(&self) -> Option<NaiveDate> {
        self.run_date
            .checked_sub_days(Days::new(u64::from(self.lookback_days) - 1))
    }

    /// First day of the window (inclusive).
    pub fn window_start(&self) -> NaiveDate {
        self.window_start_checked().unwrap_or(NaiveDate::MIN)
    }

    /// Start of the drift screen's recent period, µs since the epoch (UTC midnight of
    /// `run_date` − (`drift_recent_days` − 1)); `None` when the test is off.
    pub fn recent_since_micros(&self) -> Option<i64> {
        let days = self.drift_recent_days.checked_sub(1)?;
        let first = self.run_date.checked_sub_days(Days::new(u64::from(days)))?;
        Some(first.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refused(event: serde_json::Value) -> String {
        let input: CalibrateInput = serde_json::from_value(event).unwrap();
        match input.validate() {
            Err(CalibrateError::InvalidInput(m)) => m,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn every_numeric_field_out_of_range_is_refused_naming_it() {
        let d = "2026-03-05";
        for (field, value) in [
            ("quadpts", serde_json::json!(100_000_000)),
            ("quadpts", serde_json::json!(4)),
            ("min_responses", serde_json::json!(0)),
            ("max_iter", serde_json::json!(0)),
            ("max_obs", serde_json::json!(0)),
            ("lookback_days", serde_json::json!(0)),
            ("lookback_days", serde_json::json!(100_000)),
            ("tol", serde_json::json!(0.0)),
            ("tol", serde_json::json!(1e300)),
            ("theta_min", serde_json::json!(-1e300)),
            ("theta_max", serde_json::json!(1e300)),
            ("drift_recent_days", serde_json::json!(60)),
        ] {
            let m = refused(serde_json::json!({"run_date": d, field: value}));
            assert!(m.starts_with(field), "{field}={value}: {m}");
        }
        let m = refused(serde_json::json!({"run_date": "1999-12-31"}));
        assert!(m.starts_with("run_date 1999-12-31 is out of range"), "{m}");
        let e =
            serde_json::from_value::<CalibrateInput>(serde_json::json!({"run_date": "2026-02-30"}))
                .unwrap_err();
        assert!(
            e.to_string().contains("\"2026-02-30\" is not a date"),
            "{e}"
        );
        assert!(
            CalibrateInput::new(NaiveDate::from_ymd_opt(2026, 3, 5).unwrap())
                .validate()
                .is_ok()
        );
    }
}
