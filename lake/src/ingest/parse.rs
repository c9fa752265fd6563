//! Parsers of input cells: `correct` flags, timestamps, non-negative integers and tags.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Parses 0/1/true/false (also t/f, yes/no are refused: they are not in the contract).
pub fn parse_correct(s: &str) -> Option<bool> {
    let s = s.trim();
    let is = |words: [&str; 4]| words.iter().any(|w| s.eq_ignore_ascii_case(w));
    if is(["1", "true", "t", "1.0"]) {
        Some(true)
    } else if is(["0", "false", "f", "0.0"]) {
        Some(false)
    } else {
        None
    }
}

/// Parses a timestamp to UTC (see the module docs for the accepted forms).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

/// Parses a non-negative integer (`12`, also `12.0`); `None` for anything else,
/// negative values included.
pub fn parse_nonneg_int(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>()
        .ok()
        .or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.is_finite())
                .map(|f| f as i64)
        })
        .filter(|v| *v >= 0)
}

/// Splits a tags cell: a JSON array (`["anchor","algebra"]`) or a list separated by
/// `|`, `;` or `,`.
pub fn parse_tags(s: &str) -> Vec<String> {
    let s = s.trim();
    if s.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(s)
    {
        return v
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }
    s.split(['|', ';', ','])
        .map(|t| t.trim().trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_correct_timestamps_and_tags() {
        assert_eq!(parse_correct("1"), Some(true));
        assert_eq!(parse_correct("FALSE"), Some(false));
        assert_eq!(parse_correct("2"), None);
        assert_eq!(parse_correct("yes"), None);
        let t = parse_timestamp("2026-03-01T09:30:00Z").unwrap();
        assert_eq!(parse_timestamp("2026-03-01 09:30:00+00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-03-01 11:30:00+02:00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-03-01 09:30:00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-03-01T09:30:00.000").unwrap(), t);
        assert!(parse_timestamp("01/03/2026").is_none());
        assert_eq!(parse_tags("[\"anchor\", \"alg\"]"), vec!["anchor", "alg"]);
        assert_eq!(parse_tags("anchor|alg"), vec!["anchor", "alg"]);
        assert!(parse_tags("").is_empty());
    }
}
