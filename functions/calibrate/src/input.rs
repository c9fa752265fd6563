//! Stage input: the event the state machine (or the CLI) passes, with its defaults.

use chrono::{Days, NaiveDate};
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

/// The stage event. Unknown fields are refused. Defaults are given per field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrateInput {
    /// Last day of the window (UTC), `YYYY-MM-DD`. Required.
    pub run_date: NaiveDate,
    /// Id written on every output row. Default `calibrate-<run_date>-<bank>`.
    #[serde(default)]
    pub run_id: Option<String>,
    /// `rasch`, `2pl` (default) or `3pl`.
    #[serde(default)]
    pub model: Option<String>,
    /// `all` (default), `subject:<id>` or `topic:<id>`.
    #[serde(default)]
    pub bank: Option<Bank>,
    /// Days in the window, ending on `run_date`. Default 60.
    #[serde(default)]
    pub lookback_days: Option<u32>,
    /// Attempts in the window at most in the fit sample, a seeded random sample of
    /// students with all their first attempts (see the crate docs); every student is
    /// scored whatever its size. Default 500,000.
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
    /// Quadrature points. Default 61.
    #[serde(default)]
    pub quadpts: Option<usize>,
    /// Quadrature range lower end (θ). Default −6.
    #[serde(default)]
    pub theta_min: Option<f64>,
    /// Quadrature range upper end (θ). Default 6.
    #[serde(default)]
    pub theta_max: Option<f64>,
    /// EM convergence tolerance (largest parameter change). Default 1e-4.
    #[serde(default)]
    pub tol: Option<f64>,
    /// EM cycles at most. Default 2000.
    #[serde(default)]
    pub max_iter: Option<usize>,
    /// Items with fewer responses are excluded. Default 20.
    #[serde(default)]
    pub min_responses: Option<usize>,
    /// Prior on c (3PL): `none` or `beta:A,B`. Default `beta:5,17`.
    #[serde(default)]
    pub prior_c: Option<String>,
}

impl CalibrateInput {
    /// An input for `run_date` with every default.
    pub fn new(run_date: NaiveDate) -> Self {
        Self {
            run_date,
            run_id: None,
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
        let lookback_days = self.lookback_days.unwrap_or(60);
        if lookback_days == 0 {
            return Err(bad("lookback_days must be at least 1".into()));
        }
        let max_obs = self.max_obs.unwrap_or(500_000);
        if max_obs == 0 {
            return Err(bad("max_obs must be at least 1".into()));
        }
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
        let v = ValidInput {
            run_date: self.run_date,
            run_id,
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
        };
        if v.quadpts < 5 {
            return Err(bad(format!(
                "quadpts must be at least 5, got {}",
                v.quadpts
            )));
        }
        if !(v.theta_min.is_finite() && v.theta_max.is_finite() && v.theta_min < v.theta_max) {
            return Err(bad(format!(
                "theta range [{}, {}] must be finite and increasing",
                v.theta_min, v.theta_max
            )));
        }
        if !(v.tol.is_finite() && v.tol > 0.0) {
            return Err(bad(format!("tol must be > 0, got {}", v.tol)));
        }
        if v.max_iter == 0 {
            return Err(bad("max_iter must be at least 1".into()));
        }
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
}
