//! Parsing of the platform's `question.meta` (JSON) into tags, the anchor flag and
//! known IRT parameters.
//!
//! Malformed meta never fails the export: the question is exported with what could be
//! read, and every problem becomes a [`MetaWarning`] that the stage counts and reports.
//!
//! | meta | result |
//! |---|---|
//! | SQL NULL, JSON `null`, `{}` | no tags, no parameters, no warning |
//! | not valid JSON, or not an object (`[…]`, `"…"`, `3`) | no tags, no parameters, a warning |
//! | `tags`: array of strings | those tags, trimmed, empty ones dropped, source order |
//! | `tags`: not an array | no tags, a warning |
//! | `tags[i]` not a string | that element skipped, a warning |
//! | `"anchor"` among the tags (any case) | `is_anchor = true` |
//! | `irt`: `{a, b}` or `{a, b, c}`, numbers (or strings holding numbers) | known parameters |
//! | `irt`: not an object; `a`/`b` missing or not numbers; `a ≤ 0`; `c` outside `[0, 1)` | no parameters (all three), a warning |
//!
//! `c` may be absent or `null`: an anchor then gets `c = 0` (as ingest does), any other
//! question keeps `c` empty.

use serde_json::Value;

/// A problem found in one question's meta (the question is still exported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaWarning(pub String);

impl std::fmt::Display for MetaWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Known item parameters read from `meta.irt` (3PL metric; `c` optional).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownParams {
    /// Discrimination, `> 0`.
    pub a: f64,
    /// Difficulty, finite.
    pub b: f64,
    /// Guessing, `0 ≤ c < 1`, when given.
    pub c: Option<f64>,
}

/// What a question's meta says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuestionMeta {
    /// `meta.tags`, as given (trimmed, empty strings dropped).
    pub tags: Vec<String>,
    /// Whether the tags contain `anchor` (any case).
    pub is_anchor: bool,
    /// Valid known parameters from `meta.irt`, if any.
    pub irt: Option<KnownParams>,
    /// Problems found (each one is counted by the stage).
    pub warnings: Vec<MetaWarning>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Shortened JSON of a value, for messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Parses the text of `question.meta` (`None` for SQL NULL). Never fails; see the module
/// docs for what each shape gives.
pub fn parse_meta(text: Option<&str>) -> QuestionMeta {
    let mut out = QuestionMeta::default();
    let Some(text) = text else {
        return out;
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            out.warnings
                .push(MetaWarning(format!("meta is not valid JSON ({e})")));
            return out;
        }
    };
    let obj = match &value {
        Value::Null => return out,
        Value::Object(o) => o,
        other => {
            out.warnings.push(MetaWarning(format!(
                "meta is {}, not a JSON object",
                kind(other)
            )));
            return out;
        }
    };
    match obj.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, t) in items.iter().enumerate() {
                match t {
                    Value::String(s) => {
                        let s = s.trim();
                        if !s.is_empty() {
                            out.tags.push(s.to_string());
                        }
                    }
                    other => out.warnings.push(MetaWarning(format!(
                        "meta.tags[{i}] is {} ({}), not a string: skipped",
                        kind(other),
                        show(other)
                    ))),
                }
            }
        }
        Some(other) => out.warnings.push(MetaWarning(format!(
            "meta.tags is {} ({}), not an array: no tags",
            kind(other),
            show(other)
        ))),
    }
    out.is_anchor = out.tags.iter().any(|t| t.eq_ignore_ascii_case("anchor"));
    match obj.get("irt") {
        None | Some(Value::Null) => {}
        Some(Value::Object(irt)) if irt.is_empty() => {}
        Some(Value::Object(irt)) => match parse_irt(irt) {
            Ok(p) => out.irt = Some(p),
            Err(w) => out.warnings.push(w),
        },
        Some(other) => out.warnings.push(MetaWarning(format!(
            "meta.irt is {} ({}), not an object: no known parameters",
            kind(other),
            show(other)
        ))),
    }
    out
}

/// A number, or a string holding one; `Ok(None)` when absent or null.
fn number(
    irt: &serde_json::Map<String, Value>,
    key: &str,
) -> std::result::Result<Option<f64>, MetaWarning> {
    let bad = |v: &Value| {
        MetaWarning(format!(
            "meta.irt.{key} is {} ({}), not a number: no known parameters",
            kind(v),
            show(v)
        ))
    };
    match irt.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| bad(v)),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| bad(v)),
        Some(v) => Err(bad(v)),
    }
}

fn parse_irt(
    irt: &serde_json::Map<String, Value>,
) -> std::result::Result<KnownParams, MetaWarning> {
    let a = number(irt, "a")?;
    let b = number(irt, "b")?;
    let c = number(irt, "c")?;
    let (Some(a), Some(b)) = (a, b) else {
        let missing: Vec<&str> = [("a", a), ("b", b)]
            .into_iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k)
            .collect();
        return Err(MetaWarning(format!(
            "meta.irt has no {}: no known parameters",
            missing.join(" and ")
        )));
    };
    if a <= 0.0 {
        return Err(MetaWarning(format!(
            "meta.irt.a must be > 0, got {a}: no known parameters"
        )));
    }
    if let Some(c) = c
        && !(0.0..1.0).contains(&c)
    {
        return Err(MetaWarning(format!(
            "meta.irt.c must be in [0, 1), got {c}: no known parameters"
        )));
    }
    Ok(KnownParams { a, b, c })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> QuestionMeta {
        parse_meta(Some(s))
    }

    #[test]
    fn null_and_empty_meta_give_nothing_and_no_warning() {
        assert_eq!(parse_meta(None), QuestionMeta::default());
        assert_eq!(p("null"), QuestionMeta::default());
        assert_eq!(p("{}"), QuestionMeta::default());
        assert_eq!(p(r#"{"tags": null, "irt": null}"#), QuestionMeta::default());
        assert_eq!(p(r#"{"irt": {}}"#), QuestionMeta::default());
    }

    #[test]
    fn anchor_with_parameters() {
        let m =
            p(r#"{"tags": ["Anchor", " algebra ", ""], "irt": {"a": 1.2, "b": -0.5, "c": 0.2}}"#);
        assert_eq!(m.tags, vec!["Anchor", "algebra"]);
        assert!(m.is_anchor);
        assert_eq!(
            m.irt,
            Some(KnownParams {
                a: 1.2,
                b: -0.5,
                c: Some(0.2)
            })
        );
        assert!(m.warnings.is_empty());
        // c absent, numbers as strings
        let m = p(r#"{"tags": ["anchor"], "irt": {"a": "0.9", "b": "1"}}"#);
        assert_eq!(
            m.irt,
            Some(KnownParams {
                a: 0.9,
                b: 1.0,
                c: None
            })
        );
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn meta_that_is_not_an_object_or_not_json() {
        for (text, needle) in [
            ("[1, 2]", "meta is an array"),
            ("\"anchor\"", "meta is a string"),
            ("3", "meta is a number"),
            ("{not json", "not valid JSON"),
        ] {
            let m = p(text);
            assert!(
                m.tags.is_empty() && m.irt.is_none() && !m.is_anchor,
                "{text}"
            );
            assert_eq!(m.warnings.len(), 1, "{text}");
            assert!(m.warnings[0].0.contains(needle), "{text}: {:?}", m.warnings);
        }
    }

    #[test]
    fn irt_not_an_object() {
        let m = p(r#"{"tags": ["anchor"], "irt": [1.0, 0.0]}"#);
        assert!(m.is_anchor);
        assert_eq!(m.irt, None);
        assert_eq!(m.warnings.len(), 1);
        assert!(
            m.warnings[0].0.contains("meta.irt is an array"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn non_numeric_or_missing_or_invalid_parameters() {
        for (text, needle) in [
            (
                r#"{"irt": {"a": 1.0, "b": "abc"}}"#,
                "meta.irt.b is a string (\"abc\")",
            ),
            (
                r#"{"irt": {"a": 1.0, "b": true}}"#,
                "meta.irt.b is a boolean",
            ),
            (r#"{"irt": {"a": 1.0}}"#, "meta.irt has no b"),
            (r#"{"irt": {"c": 0.1}}"#, "meta.irt has no a and b"),
            (r#"{"irt": {"a": 0, "b": 0}}"#, "meta.irt.a must be > 0"),
            (r#"{"irt": {"a": -1.5, "b": 0}}"#, "meta.irt.a must be > 0"),
            (
                r#"{"irt": {"a": 1, "b": 0, "c": 1.0}}"#,
                "meta.irt.c must be in [0, 1)",
            ),
            (
                r#"{"irt": {"a": 1, "b": 0, "c": "x"}}"#,
                "meta.irt.c is a string",
            ),
            (r#"{"irt": {"a": "NaN", "b": 0}}"#, "meta.irt.a is a string"),
        ] {
            let m = p(text);
            assert_eq!(m.irt, None, "{text}");
            assert_eq!(m.warnings.len(), 1, "{text}");
            assert!(m.warnings[0].0.contains(needle), "{text}: {:?}", m.warnings);
        }
    }

    #[test]
    fn tags_that_are_not_an_array_or_hold_non_strings() {
        let m = p(r#"{"tags": "anchor", "irt": {"a": 1, "b": 0}}"#);
        assert!(m.tags.is_empty());
        assert!(!m.is_anchor, "a string is not a tag list");
        assert!(m.irt.is_some(), "irt is still read");
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].0.contains("meta.tags is a string"));

        let m = p(r#"{"tags": ["anchor", 7, {"x": 1}, "hard"]}"#);
        assert_eq!(m.tags, vec!["anchor", "hard"]);
        assert!(m.is_anchor);
        assert_eq!(m.warnings.len(), 2);
        assert!(m.warnings[0].0.contains("meta.tags[1] is a number (7)"));
        assert!(m.warnings[1].0.contains("meta.tags[2] is an object"));
    }

    #[test]
    fn several_problems_are_all_reported() {
        let m = p(r#"{"tags": 5, "irt": "1.0/0.0"}"#);
        assert_eq!(m.warnings.len(), 2);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(200);
        let m = p(&format!(r#"{{"irt": {{"a": "{long}", "b": 0}}}}"#));
        assert!(m.warnings[0].0.len() < 120, "{}", m.warnings[0]);
    }
}
