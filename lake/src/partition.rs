//! Hive partition paths with escaped, bounded values.
//!
//! A partition value is data, never a path: every byte outside `[A-Za-z0-9_-]` is
//! percent-encoded (so `/`, `.`, `..`, `=`, `%` and non-ASCII cannot form a path
//! segment of their own). DataFusion percent-decodes Hive partition values when it
//! lists a table, so the value read back through SQL equals the value written.
//!
//! # Long values
//!
//! File systems limit one path segment to 255 bytes (and S3 a key to 1,024), and an id
//! is unbounded: a 38-character Korean topic name is already ~300 bytes once escaped.
//! So a value whose escaped form is longer than [`MAX_VALUE_BYTES`] (120) is written as
//! a **shortened value**: the escaped form of its longest prefix (whole characters) that
//! fits in [`PREFIX_BYTES`] (96), then `~` and the first 16 hex digits of the SHA-256 of
//! the whole value — at most 113 bytes, so `column=value` stays far below 255 whatever
//! the id. The mapping is deterministic (a re-run replaces the same object) and still
//! readable in a listing. `~` is escaped in every value (`%7E`), so a shortened segment
//! can never be the escaped form of another value on disk.
//!
//! Decision — what SQL sees: the partition column comes from the path (that is how
//! Hive-partitioned listing tables work, in DataFusion as in other engines), so for a
//! long value it reads as the shortened value ([`sql_value`]), e.g. `bank` =
//! `topic:고등수학 II 미적~3f2a…`. Short values — every date, `all`,
//! `subject:<id>` and `topic:<id>` of ordinary length — are unchanged, so existing lakes
//! and queries keep working. The full value is kept in the data wherever a value can be
//! long:
//! - banks: `fit_meta.bank_id` holds the full bank id (`item_params` and `abilities`
//!   join to it on `(run_date, bank)`), e.g.
//!   `SELECT p.* FROM item_params p JOIN fit_meta f USING (run_date, bank)
//!   WHERE f.bank_id = 'topic:…'`;
//! - reports: `report_artifacts.student_id` holds the full student id beside the
//!   object `key`.
//!
//! Code that filters on a partition column with a value it did not read from the lake
//! filters on [`sql_value`] of it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Bytes kept as they are: ASCII letters, digits, `-` and `_`. Everything else is encoded.
const PARTITION_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Longest escaped value written as it is (bytes); longer values are shortened.
pub const MAX_VALUE_BYTES: usize = 120;

/// Longest escaped readable prefix of a shortened value (bytes).
pub const PREFIX_BYTES: usize = 96;

/// Escapes a partition value (or an id used in an object key) into one safe path segment,
/// without bounding its length (see [`path_value`]). Callers reject empty values before
/// escaping (an empty segment is not a path).
pub fn escape_value(value: &str) -> String {
    utf8_percent_encode(value, PARTITION_VALUE).to_string()
}

/// Inverse of [`escape_value`]; `None` if the segment is not valid percent-encoded UTF-8.
pub fn unescape_value(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The value as written in a path: [`escape_value`] of it, shortened when longer than
/// [`MAX_VALUE_BYTES`] (see the module docs). Never longer than [`MAX_VALUE_BYTES`].
pub fn path_value(value: &str) -> String {
    let escaped = escape_value(value);
    if escaped.len() <= MAX_VALUE_BYTES {
        return escaped;
    }
    let mut prefix = String::new();
    let mut buf = [0u8; 4];
    for ch in value.chars() {
        let e = escape_value(ch.encode_utf8(&mut buf));
        if prefix.len() + e.len() > PREFIX_BYTES {
            break;
        }
        prefix.push_str(&e);
    }
    let digest = Sha256::digest(value.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}~{hash}")
}

/// The value SQL reads in the partition column for `value`: `value` itself unless it is
/// shortened, else the shortened value, decoded.
pub fn sql_value(value: &str) -> String {
    let p = path_value(value);
    unescape_value(&p).unwrap_or(p)
}

/// The folder segment `column=path_value(value)`.
pub fn segment(column: &str, value: &str) -> String {
    format!("{column}={}", path_value(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_never_makes_path_segments() {
        for v in [
            "2026-01-05",
            "../x",
            "a/b",
            "k=v",
            "..",
            ".",
            "수학",
            "subject:alg-1",
            "%2F",
            " ",
        ] {
            let e = escape_value(v);
            assert!(
                !e.contains('/') && !e.contains('=') && !e.contains('.'),
                "{v} -> {e}"
            );
            assert_ne!(e, "..");
            assert_eq!(unescape_value(&e).as_deref(), Some(v));
        }
        assert_eq!(escape_value("2026-01-05"), "2026-01-05");
        assert_eq!(segment("bank", "subject:s1"), "bank=subject%3As1");
    }

    #[test]
    fn long_values_are_bounded_readable_and_distinct() {
        let korean = "topic:고등수학 II 미적분 단원: 극한과 연속, 도함수의 정의와 활용 문제";
        let long_ascii = format!("topic:{}", "x".repeat(5000));
        let other_ascii = format!("topic:{}y", "x".repeat(4999));
        let mut seen = std::collections::HashSet::new();
        for v in [korean, &long_ascii, &other_ascii, &korean.repeat(20)] {
            let p = path_value(v);
            assert!(p.len() <= MAX_VALUE_BYTES, "{} bytes", p.len());
            assert!(segment("student_id", v).len() < 255);
            assert!(!p.contains('/') && !p.contains('=') && !p.contains('.'));
            assert_eq!(p, path_value(v), "deterministic");
            assert!(seen.insert(p.clone()), "distinct");
            let sql = sql_value(v);
            assert!(v.starts_with(sql.split('~').next().unwrap()), "{sql}");
            assert_eq!(unescape_value(&p).as_deref(), Some(sql.as_str()));
        }
        assert!(sql_value(korean).starts_with("topic:고등수학"));
        // short values are unchanged, `~` in a value is escaped
        assert_eq!(path_value("topic:algebra"), "topic%3Aalgebra");
        assert_eq!(sql_value("topic:algebra"), "topic:algebra");
        assert_eq!(path_value("a~b"), "a%7Eb");
        let edge = "a".repeat(MAX_VALUE_BYTES);
        assert_eq!(path_value(&edge), edge);
        assert!(path_value(&format!("{edge}a")).contains('~'));
    }
}
