//! The JSONPath subset and intrinsic functions of Amazon States Language that the
//! pipeline's state machine uses: `$`, `$.a.b`, `$[0]`, `$.a[1].b`, the context
//! object `$$.…`, an existence filter as the last step (`$[?(@.error)]`: the elements of
//! an array that have the field, always an array, as Jayway JsonPath gives it), and `States.StringSplit`, `States.ArrayGetItem`, `States.Format`,
//! `States.Array`, `States.ArrayLength`, `States.JsonToString`, `States.StringToJson`,
//! `States.MathAdd` (reference: the Amazon States Language specification, "Paths" and
//! "Intrinsic functions").

use serde_json::{Map, Value};

/// A path or intrinsic that cannot be evaluated (Step Functions' `States.Runtime`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub String);

type Result<T> = std::result::Result<T, PathError>;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    /// `[?(@.a.b)]`: the elements of an array where the relative path `a.b` exists.
    Has(Vec<Step>),
}

fn parse_steps(path: &str) -> Result<Vec<Step>> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| PathError(format!("path {path:?} must start with $")))?;
    let mut steps = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'.' && bytes[j] != b'[' {
                    j += 1;
                }
                if j == start {
                    return Err(PathError(format!("empty key in path {path:?}")));
                }
                steps.push(Step::Key(rest[start..j].to_string()));
                i = j;
            }
            b'[' => {
                let end = rest[i..]
                    .find(']')
                    .map(|e| e + i)
                    .ok_or_else(|| PathError(format!("unclosed [ in path {path:?}")))?;
                let inner = rest[i + 1..end].trim();
                if let Some(field) = inner.strip_prefix("?(@").and_then(|f| f.strip_suffix(')')) {
                    let sub = parse_steps(&format!("${field}"))?;
                    let plain = |s: &Step| match s {
                        Step::Key(k) => k
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                        Step::Index(_) => true,
                        Step::Has(_) => false,
                    };
                    if sub.is_empty() || !sub.iter().all(plain) {
                        return Err(PathError(format!(
                            "only field-existence filters [?(@.a.b)] are supported in {path:?}"
                        )));
                    }
                    steps.push(Step::Has(sub));
                } else {
                    let idx = inner.parse::<usize>().map_err(|_| {
                        PathError(format!(
                            "only numeric indexes and [?(@.field)] filters are supported in {path:?}"
                        ))
                    })?;
                    steps.push(Step::Index(idx));
                }
                i = end + 1;
            }
            _ => return Err(PathError(format!("unsupported path syntax {path:?}"))),
        }
    }
    Ok(steps)
}

/// Reads `path` (`$…` on `input`, `$$…` on `context`).
pub fn get(path: &str, input: &Value, context: &Value) -> Result<Value> {
    let (root, p) = match path.strip_prefix("$$") {
        Some(rest) => (context, format!("${rest}")),
        None => (input, path.to_string()),
    };
    let steps = parse_steps(&p)?;
    if let Some(n) = steps.iter().position(|s| matches!(s, Step::Has(_)))
        && n + 1 != steps.len()
    {
        return Err(PathError(format!(
            "a filter must be the last step of {path:?} (local runner)"
        )));
    }
    let mut cur = root;
    for step in &steps {
        if let Step::Has(sub) = step {
            // An indefinite path: always an array, empty when nothing matches.
            let hits = match cur {
                Value::Array(a) => a
                    .iter()
                    .filter(|v| walk(sub, v).is_some())
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            return Ok(Value::Array(hits));
        }
        cur = walk(std::slice::from_ref(step), cur).ok_or_else(|| {
            PathError(format!(
                "the path {path:?} could not be found in the {}",
                if path.starts_with("$$") {
                    "context object"
                } else {
                    "input"
                }
            ))
        })?;
    }
    Ok(cur.clone())
}

/// Follows key and index steps from `v`; `None` when one is missing.
fn walk<'v>(steps: &[Step], v: &'v Value) -> Option<&'v Value> {
    steps.iter().try_fold(v, |cur, step| match (step, cur) {
        (Step::Key(k), Value::Object(m)) => m.get(k),
        (Step::Index(i), Value::Array(a)) => a.get(*i),
        _ => None,
    })
}

/// True when `path` exists in `input` (Choice rule `IsPresent`).
pub fn is_present(path: &str, input: &Value, context: &Value) -> bool {
    get(path, input, context).is_ok()
}

/// Writes `value` at `path` (`$` replaces the whole document), creating objects on the way
/// (`ResultPath`).
pub fn set(doc: Value, path: &str, value: Value) -> Result<Value> {
    let steps = parse_steps(path)?;
    if steps.is_empty() {
        return Ok(value);
    }
    let mut doc = match doc {
        Value::Object(_) => doc,
        _ => Value::Object(Map::new()),
    };
    let mut cur = &mut doc;
    for (n, step) in steps.iter().enumerate() {
        let last = n + 1 == steps.len();
        let Step::Key(k) = step else {
            return Err(PathError(format!("ResultPath {path:?} may only use keys")));
        };
        let obj = match cur {
            Value::Object(m) => m,
            other => {
                *other = Value::Object(Map::new());
                match other {
                    Value::Object(m) => m,
                    _ => unreachable!("just made an object"),
                }
            }
        };
        if last {
            obj.insert(k.clone(), value);
            return Ok(doc);
        }
        cur = obj
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(doc)
}

/// Builds a `Parameters` / `ItemSelector` / `ResultSelector` template: keys ending in `.$`
/// take the value of their path or intrinsic; other values are copied (recursively).
pub fn render(template: &Value, input: &Value, context: &Value) -> Result<Value> {
    match template {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(name) = k.strip_suffix(".$") {
                    let expr = v.as_str().ok_or_else(|| {
                        PathError(format!("the value of {k:?} must be a path or intrinsic"))
                    })?;
                    out.insert(name.to_string(), eval(expr, input, context)?);
                } else {
                    out.insert(k.clone(), render(v, input, context)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => Ok(Value::Array(
            a.iter()
                .map(|v| render(v, input, context))
                .collect::<Result<_>>()?,
        )),
        other => Ok(other.clone()),
    }
}

/// Evaluates a path (`$…`, `$$…`) or an intrinsic function call (`States.X(…)`).
pub fn eval(expr: &str, input: &Value, context: &Value) -> Result<Value> {
    let expr = expr.trim();
    if expr.starts_with('$') {
        return get(expr, input, context);
    }
    let mut p = Parser {
        s: expr,
        pos: 0,
        input,
        context,
    };
    let v = p.call()?;
    p.skip_ws();
    if p.pos != expr.len() {
        return Err(PathError(format!("trailing text in {expr:?}")));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    input: &'a Value,
    context: &'a Value,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn err(&self, what: &str) -> PathError {
        PathError(format!("{what} at offset {} of {:?}", self.pos, self.s))
    }

    fn call(&mut self) -> Result<Value> {
        self.skip_ws();
        let open = self.s[self.pos..]
            .find('(')
            .ok_or_else(|| self.err("expected an intrinsic function"))?
            + self.pos;
        let name = self.s[self.pos..open].trim().to_string();
        self.pos = open + 1;
        let mut args = Vec::new();
        loop {
            self.skip_ws();
            if self.s[self.pos..].starts_with(')') {
                self.pos += 1;
                break;
            }
            args.push(self.arg()?);
            self.skip_ws();
            if self.s[self.pos..].starts_with(',') {
                self.pos += 1;
            } else if self.s[self.pos..].starts_with(')') {
                self.pos += 1;
                break;
            } else {
                return Err(self.err("expected , or )"));
            }
        }
        intrinsic(&name, args)
    }

    fn arg(&mut self) -> Result<Value> {
        let rest = &self.s[self.pos..];
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '\'' => {
                        self.pos += i + 2;
                        return Ok(Value::String(out));
                    }
                    c => out.push(c),
                }
            }
            return Err(self.err("unterminated string"));
        }
        if rest.starts_with('$') {
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            let path = rest[..end].trim();
            self.pos += end;
            return get(path, self.input, self.context);
        }
        if rest.starts_with("States.") {
            return self.call();
        }
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        let lit = rest[..end].trim();
        self.pos += end;
        serde_json::from_str(lit).map_err(|_| self.err(&format!("bad literal {lit:?}")))
    }
}

fn as_str<'v>(name: &str, v: &'v Value) -> Result<&'v str> {
    v.as_str()
        .ok_or_else(|| PathError(format!("{name}: expected a string, got {v}")))
}

fn intrinsic(name: &str, args: Vec<Value>) -> Result<Value> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(PathError(format!(
                "{name} takes {n} arguments, got {}",
                args.len()
            )))
        }
    };
    match name {
        "States.StringSplit" => {
            arity(2)?;
            let s = as_str(name, &args[0])?;
            let seps: Vec<char> = as_str(name, &args[1])?.chars().collect();
            Ok(Value::Array(
                s.split(|c| seps.contains(&c))
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
        "States.ArrayGetItem" => {
            arity(2)?;
            let a = args[0]
                .as_array()
                .ok_or_else(|| PathError(format!("{name}: expected an array")))?;
            let i = args[1]
                .as_u64()
                .ok_or_else(|| PathError(format!("{name}: expected an index")))?;
            a.get(i as usize)
                .cloned()
                .ok_or_else(|| PathError(format!("{name}: index {i} out of range")))
        }
        "States.ArrayLength" => {
            arity(1)?;
            let a = args[0]
                .as_array()
                .ok_or_else(|| PathError(format!("{name}: expected an array")))?;
            Ok(Value::from(a.len()))
        }
        "States.Array" => Ok(Value::Array(args)),
        "States.Format" => {
            let (template, rest) = args
                .split_first()
                .ok_or_else(|| PathError(format!("{name} needs a template")))?;
            let template = as_str(name, template)?;
            let mut out = String::new();
            let mut values = rest.iter();
            let mut parts = template.split("{}");
            if let Some(first) = parts.next() {
                out.push_str(first);
            }
            for part in parts {
                let v = values
                    .next()
                    .ok_or_else(|| PathError(format!("{name}: too few arguments")))?;
                match v {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                out.push_str(part);
            }
            Ok(Value::String(out))
        }
        "States.JsonToString" => {
            arity(1)?;
            Ok(Value::String(args[0].to_string()))
        }
        "States.StringToJson" => {
            arity(1)?;
            serde_json::from_str(as_str(name, &args[0])?)
                .map_err(|e| PathError(format!("{name}: {e}")))
        }
        "States.MathAdd" => {
            arity(2)?;
            match (args[0].as_i64(), args[1].as_i64()) {
                (Some(a), Some(b)) => Ok(Value::from(a + b)),
                _ => Err(PathError(format!("{name}: expected two integers"))),
            }
        }
        other => Err(PathError(format!(
            "the intrinsic {other} is not supported by the local runner"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_input_and_context() {
        let input = json!({"a": {"b": [1, {"c": "x"}]}, "run_date": "2026-03-05T03:00:00Z"});
        let ctx = json!({"Map": {"Item": {"Value": {"shard": 2}}}});
        assert_eq!(get("$", &input, &ctx).unwrap(), input);
        assert_eq!(get("$.a.b[1].c", &input, &ctx).unwrap(), json!("x"));
        assert_eq!(
            get("$$.Map.Item.Value.shard", &input, &ctx).unwrap(),
            json!(2)
        );
        assert!(get("$.nope", &input, &ctx).is_err());
        assert!(is_present("$.a", &input, &ctx) && !is_present("$.b", &input, &ctx));
        let d = eval(
            "States.ArrayGetItem(States.StringSplit($.run_date, 'T'), 0)",
            &input,
            &ctx,
        )
        .unwrap();
        assert_eq!(d, json!("2026-03-05"));
        let plain = json!({"run_date": "2026-03-05"});
        let d = eval(
            "States.ArrayGetItem(States.StringSplit($.run_date, 'T'), 0)",
            &plain,
            &ctx,
        )
        .unwrap();
        assert_eq!(d, json!("2026-03-05"));
        assert_eq!(
            eval(
                "States.Format('bank {} of {}', $.a.b[0], 'x')",
                &input,
                &ctx
            )
            .unwrap(),
            json!("bank 1 of x")
        );
        assert!(eval("States.Hash($.a, 'MD5')", &input, &ctx).is_err());
    }

    #[test]
    fn result_path_sets_and_templates_render() {
        let doc = json!({"run_date": "d", "results": {}});
        let doc = set(doc, "$.results.kpis", json!({"summary": 1})).unwrap();
        assert_eq!(
            doc,
            json!({"run_date": "d", "results": {"kpis": {"summary": 1}}})
        );
        assert_eq!(set(doc.clone(), "$", json!(5)).unwrap(), json!(5));
        let doc = set(doc, "$.error", json!({"Error": "E"})).unwrap();
        assert_eq!(doc["error"]["Error"], "E");
        let t = json!({"run_date.$": "$.run_date", "fixed": {"k": 1}, "list": [1]});
        let r = render(&t, &doc, &json!({})).unwrap();
        assert_eq!(r, json!({"run_date": "d", "fixed": {"k": 1}, "list": [1]}));
        let parallel = json!([{"summary": "a"}, {"summary": "b"}]);
        let r = render(
            &json!({"churn.$": "$[0]", "growth.$": "$[1]"}),
            &parallel,
            &json!({}),
        )
        .unwrap();
        assert_eq!(r["growth"]["summary"], "b");
    }

    #[test]
    fn an_existence_filter_selects_the_elements_with_the_field() {
        let results = json!([{"shard": 0}, {"shard": 1, "error": {"Error": "E"}}, 7, {"shard": 2}]);
        let failed = get("$[?(@.error)]", &results, &json!({})).unwrap();
        assert_eq!(failed, json!([{"shard": 1, "error": {"Error": "E"}}]));
        let none = get("$[?(@.error.Cause)]", &results, &json!({})).unwrap();
        assert_eq!(none, json!([]));
        let doc = json!({"r": {"list": results}});
        assert_eq!(
            get("$.r.list[?(@.shard)]", &doc, &json!({}))
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            3
        );
        // Only as the last step, and only existence tests.
        assert!(get("$[?(@.error)].shard", &results, &json!({})).is_err());
        assert!(get("$[?(@.shard > 1)]", &results, &json!({})).is_err());
        let r = render(
            &json!({"shards.$": "States.ArrayLength($)", "failed.$": "$[?(@.error)]"}),
            &results,
            &json!({}),
        )
        .unwrap();
        assert_eq!(r["shards"], 4);
        assert_eq!(r["failed"][0]["shard"], 1);
    }
}
