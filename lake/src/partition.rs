//! Hive partition paths with escaped values.
//!
//! A partition value is data, never a path: every byte outside `[A-Za-z0-9_-]` is
//! percent-encoded (so `/`, `.`, `..`, `=`, `%` and non-ASCII cannot form a path
//! segment of their own). DataFusion percent-decodes Hive partition values when it
//! lists a table, so the value read back through SQL equals the value written.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Bytes kept as they are: ASCII letters, digits, `-` and `_`. Everything else is encoded.
const PARTITION_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Escapes a partition value (or an id used in an object key) into one safe path segment.
/// Callers reject empty values before escaping (an empty segment is not a path).
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

/// The folder segment `column=escaped(value)`.
pub fn segment(column: &str, value: &str) -> String {
    format!("{column}={}", escape_value(value))
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
}
