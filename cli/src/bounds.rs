//! Ranges of the numeric and date flags of the CLI, as clap value parsers: a value out
//! of range is refused before anything runs, and clap's message names the flag
//! (`invalid value '1e300' for '--retry-delay-scale <…>': must be between 0 and 100`).
//! Every range is also in the flag's help text. Stage events are checked by the
//! stages themselves (see `lake::bounds`).

use chrono::NaiveDate;
use clap::builder::RangedU64ValueParser;

/// A finite `f64` in `lo..=hi` (NaN and infinities refused).
pub fn f64_in(
    lo: f64,
    hi: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    finite_f64(
        move |v| (lo..=hi).contains(&v),
        format!("must be between {lo} and {hi}"),
    )
}

/// A finite `f64` strictly between `lo` and `hi`.
pub fn f64_between(
    lo: f64,
    hi: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    finite_f64(
        move |v| v > lo && v < hi,
        format!("must be strictly between {lo} and {hi}"),
    )
}

/// A finite `f64` for which `ok` holds, else `refusal`.
fn finite_f64(
    ok: impl Fn(f64) -> bool + Clone + Send + Sync + 'static,
    refusal: String,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number"))?;
        if v.is_finite() && ok(v) {
            Ok(v)
        } else {
            Err(refusal.clone())
        }
    }
}

/// A `usize` in `lo..=hi`.
pub fn usize_in(lo: u64, hi: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(lo..=hi)
}

/// A `u32` in `lo..=hi`.
pub fn u32_in(lo: u64, hi: u64) -> RangedU64ValueParser<u32> {
    RangedU64ValueParser::<u32>::new().range(lo..=hi)
}

/// A `YYYY-MM-DD` date in `lake::bounds::MIN_DATE ..= MAX_DATE` (2000-01-01 to 2099-12-31).
pub fn date(s: &str) -> Result<NaiveDate, String> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD)"))?;
    lake::bounds::check_date("date", d).map_err(|_| {
        format!(
            "must be between {} and {}",
            lake::bounds::MIN_DATE,
            lake::bounds::MAX_DATE
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parsers_refuse_nan_infinity_and_out_of_range() {
        let p = f64_in(0.0, 100.0);
        assert_eq!(p("2.5"), Ok(2.5));
        for bad in ["NaN", "inf", "1e300", "-1", "x"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert!(f64_between(0.0, 1.0)("1").is_err());
        assert!(date("2026-02-30").unwrap_err().contains("not a date"));
        assert!(date("0001-01-01").is_err());
        assert!(date("2026-03-05").is_ok());
    }
}
