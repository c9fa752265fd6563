//! Bounds on every input: dates and timestamps of events and ingested rows, and the
//! numeric fields of stage events. A value outside its range is bad input
//! (`Fatal.InvalidInput` in a stage), and the message names the field.
//!
//! | what | range |
//! |---|---|
//! | event dates (`run_date`, `from`, `to`, `week_start`) | [`MIN_DATE`] ..= [`MAX_DATE`] |
//! | event timestamps (`run_ts`) | [`MIN_DATE`] 00:00 UTC ..= [`MAX_DATE`] 23:59:59 UTC |
//! | a row's time (`attempts.completed_at`, at ingest and export) | [`MIN_DATE`] 00:00 UTC ..= now + 1 day ([`row_time_window`]) |
//! | `lookback_days` | 1 ..= [`MAX_LOOKBACK_DAYS`] |
//! | `from ..= to` of a downstream stage | at most [`MAX_RANGE_DAYS`] days |
//!
//! Dates in events are parsed by [`opt_date`] / [`date`] (serde `deserialize_with`),
//! whose error says which text is not a date.

use std::fmt::Display;
use std::ops::RangeInclusive;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Deserializer};

use crate::error::{LakeError, Result};
use crate::runs::StageInput;

/// Earliest date an event or an ingested row may carry: 2000-01-01.
pub const MIN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// Latest date an event may name: 2099-12-31.
pub const MAX_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// Longest look-back window of a stage, in days (about 10 years).
pub const MAX_LOOKBACK_DAYS: u32 = 3660;

/// Longest `from ..= to` range of a downstream stage event, in days (about 10 years).
pub const MAX_RANGE_DAYS: i64 = 3660;

/// `Err("field must be between lo and hi, got v")` unless `v` lies in `range`
/// (NaN lies in no range).
pub fn check_range<T: PartialOrd + Display>(
    field: &str,
    v: T,
    range: RangeInclusive<T>,
) -> std::result::Result<T, String> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{field} must be between {} and {}, got {v}",
            range.start(),
            range.end()
        ))
    }
}

/// `Err` naming `field` unless `d` lies in [`MIN_DATE`] ..= [`MAX_DATE`].
pub fn check_date(field: &str, d: NaiveDate) -> std::result::Result<NaiveDate, String> {
    if (MIN_DATE..=MAX_DATE).contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "{field} {d} is out of range: dates run from {MIN_DATE} to {MAX_DATE}"
        ))
    }
}

/// `Err` naming `field` unless `t` falls on a day in [`MIN_DATE`] ..= [`MAX_DATE`].
pub fn check_event_time(field: &str, t: DateTime<Utc>) -> std::result::Result<(), String> {
    check_date(field, t.date_naive()).map(|_| ()).map_err(|_| {
        format!(
            "{field} {} is out of range: times run from {MIN_DATE} to {MAX_DATE}",
            t.to_rfc3339()
        )
    })
}

/// The times a row may carry (e.g. `completed_at`): from [`MIN_DATE`] 00:00 UTC to
/// `now` + 1 day (clocks of client devices run a little ahead; a year 0001 or 2999 is a
/// bug upstream, not an attempt).
pub fn row_time_window(now: DateTime<Utc>) -> RangeInclusive<DateTime<Utc>> {
    let start = MIN_DATE.and_time(NaiveTime::MIN).and_utc();
    let end = now.checked_add_days(Days::new(1)).unwrap_or(now);
    start..=end
}

/// Deserializes an optional `YYYY-MM-DD` date; the error quotes the text that is not
/// a date (serde adds the field name through the caller's path).
pub fn opt_date<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<NaiveDate>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_date(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Deserializes a required `YYYY-MM-DD` date (see [`opt_date`]).
pub fn date<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<NaiveDate, D::Error> {
    let s = String::deserialize(d)?;
    parse_date(&s).map_err(serde::de::Error::custom)
}

fn parse_date(s: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

impl StageInput {
    /// Checks every field against its documented range; the error names the field.
    /// (The length of `from ..= to` is checked once defaults apply, in
    /// [`StageInput::context`].)
    pub fn check_bounds(&self) -> Result<()> {
        let bad = LakeError::InvalidInput;
        for (field, d) in [
            ("run_date", self.run_date),
            ("from", self.from),
            ("to", self.to),
        ] {
            if let Some(d) = d {
                check_date(field, d).map_err(bad)?;
            }
        }
        if let Some(t) = self.run_ts {
            check_event_time("run_ts", t).map_err(bad)?;
        }
        if let Some(n) = self.lookback_days {
            check_range("lookback_days", n, 1..=MAX_LOOKBACK_DAYS).map_err(bad)?;
        }
        if self.run_id.as_deref() == Some("") {
            return Err(bad("run_id may not be empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_refuse_nan_and_name_the_field() {
        assert_eq!(check_range("tol", 1e-4, 1e-12..=1.0), Ok(1e-4));
        let e = check_range("tol", f64::NAN, 1e-12..=1.0).unwrap_err();
        assert!(e.starts_with("tol must be between"), "{e}");
        assert!(check_range("quadpts", 100_000_000usize, 5..=301).is_err());
    }

    #[test]
    fn event_dates_are_parsed_with_the_text_in_the_error_and_bounded() {
        #[derive(Debug, serde::Deserialize)]
        struct E {
            #[serde(default, deserialize_with = "opt_date")]
            #[allow(dead_code)]
            run_date: Option<NaiveDate>,
        }
        let e = serde_json::from_str::<E>(r#"{"run_date":"2026-02-30"}"#).unwrap_err();
        assert!(
            e.to_string().contains("\"2026-02-30\" is not a date"),
            "{e}"
        );
        assert!(
            serde_json::from_str::<E>(r#"{}"#)
                .unwrap()
                .run_date
                .is_none()
        );
        let e = check_date("run_date", NaiveDate::from_ymd_opt(1, 1, 1).unwrap()).unwrap_err();
        assert!(e.starts_with("run_date 0001-01-01 is out of range"), "{e}");
    }

    #[test]
    fn stage_inputs_out_of_range_are_refused_naming_the_field() {
        let cases: [(StageInput, &str); 4] = [
            (
                StageInput {
                    lookback_days: Some(0),
                    ..StageInput::default()
                },
                "lookback_days",
            ),
            (
                StageInput {
                    lookback_days: Some(u32::MAX),
                    ..StageInput::default()
                },
                "lookback_days",
            ),
            (
                StageInput {
                    from: NaiveDate::from_ymd_opt(1900, 1, 1),
                    ..StageInput::default()
                },
                "from",
            ),
            (
                StageInput {
                    run_ts: DateTime::from_timestamp(-62_000_000_000, 0),
                    ..StageInput::default()
                },
                "run_ts",
            ),
        ];
        for (input, field) in cases {
            let e = input.check_bounds().unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
        assert!(StageInput::default().check_bounds().is_ok());
    }

    #[test]
    fn the_row_time_window_ends_a_day_after_now() {
        let now = DateTime::parse_from_rfc3339("2026-03-05T10:00:00Z")
            .unwrap()
            .to_utc();
        let w = row_time_window(now);
        assert!(w.contains(&now));
        assert!(
            !w.contains(
                &DateTime::parse_from_rfc3339("2026-03-06T10:00:01Z")
                    .unwrap()
                    .to_utc()
            )
        );
        assert!(
            !w.contains(
                &DateTime::parse_from_rfc3339("1999-12-31T23:59:59Z")
                    .unwrap()
                    .to_utc()
            )
        );
    }
}
