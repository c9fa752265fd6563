//! The definition the local runner reads, as types: the top level, scopes, and one
//! struct per state type with the fields the runner implements for it. A state of any
//! other type, or with any other field, is a deserialisation error naming the state
//! (`state Shards: unknown field …`; a state in a nested scope as
//! `state Outer: state Inner: …`); a Map field Step Functions has but the runner
//! refuses says why. What the types cannot say (a DISTRIBUTED Map's `ExecutionType`,
//! a tolerated failure of 0, the Task resource, transitions that stay in their scope)
//! is checked right after reading, by [`check_scope`].

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{ExecError, LAMBDA_INVOKE};

/// The states of a scope, by name.
pub(super) type States = BTreeMap<String, State>;

/// Reads the `States` of a scope one state at a time, so that an error names the state.
fn states<'de, D: Deserializer<'de>>(d: D) -> Result<States, D::Error> {
    Map::<String, Value>::deserialize(d)?
        .into_iter()
        .map(|(name, state)| match State::deserialize(state) {
            Ok(s) => Ok((name, s)),
            Err(e) => Err(D::Error::custom(format!("state {name}: {e}"))),
        })
        .collect()
}

/// A field that may be `null` as well as absent: present (`null` included) is `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Fields of a Map that Step Functions has but the runner refuses, with the reason:
/// reading one is an error naming it.
macro_rules! refused_field {
    ($($f:ident: $field:literal, $why:literal;)*) => {$(
        fn $f<'de, D: Deserializer<'de>>(_: D) -> Result<Option<()>, D::Error> {
            Err(D::Error::custom(concat!(
                $field, " is not supported by the local runner (", $why, ")"
            )))
        }
    )*};
}

refused_field! {
    no_item_reader: "ItemReader", "items come from ItemsPath only";
    no_result_writer: "ResultWriter", "results are returned to the state";
    no_item_batcher: "ItemBatcher", "each child gets one item";
    no_max_concurrency_path: "MaxConcurrencyPath", "give the value itself";
    no_tolerated_percentage_path: "ToleratedFailurePercentagePath", "give the value itself";
    no_tolerated_count_path: "ToleratedFailureCountPath", "give the value itself";
}

/// The top level of a definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct Definition {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(rename = "Version", default)]
    pub(super) _version: Option<String>,
    pub(super) start_at: String,
    #[serde(deserialize_with = "states")]
    pub(super) states: States,
}

/// A scope: the machine, a Map's item processor, a Parallel branch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct Scope {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    pub(super) start_at: String,
    #[serde(deserialize_with = "states")]
    pub(super) states: States,
}

/// A state of the subset, by its `Type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "Type", deny_unknown_fields)]
pub(super) enum State {
    Task(TaskState),
    Map(MapState),
    Parallel(ParallelState),
    Choice(ChoiceState),
    Pass(PassState),
    Succeed(SucceedState),
    Fail(FailState),
}

/// An `InputPath`, `ResultPath` or `OutputPath`: absent, `null` or a path (what `null`
/// means depends on the field, as in Step Functions).
#[derive(Debug, Clone, Default)]
pub(super) enum PathField {
    #[default]
    Absent,
    Null,
    Path(String),
}

impl<'de> Deserialize<'de> for PathField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<String>::deserialize(d)? {
            None => PathField::Null,
            Some(p) => PathField::Path(p),
        })
    }
}

/// A `Retry` rule of a Task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct Retrier {
    pub(super) error_equals: Vec<String>,
    #[serde(default)]
    pub(super) interval_seconds: Option<f64>,
    #[serde(default)]
    pub(super) max_attempts: Option<u64>,
    #[serde(default)]
    pub(super) backoff_rate: Option<f64>,
    #[serde(default)]
    pub(super) max_delay_seconds: Option<f64>,
}

/// A `Catch` rule of a Task, Map or Parallel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct Catcher {
    pub(super) error_equals: Vec<String>,
    pub(super) next: String,
    #[serde(default)]
    pub(super) result_path: PathField,
}

/// A Task (only the Lambda invoke integration, see [`LAMBDA_INVOKE`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct TaskState {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    pub(super) resource: String,
    #[serde(default)]
    pub(super) input_path: PathField,
    #[serde(default, deserialize_with = "present")]
    pub(super) parameters: Option<Value>,
    #[serde(default)]
    pub(super) timeout_seconds: Option<u64>,
    #[serde(default)]
    pub(super) retry: Vec<Retrier>,
    #[serde(default, deserialize_with = "present")]
    pub(super) result_selector: Option<Value>,
    #[serde(default)]
    pub(super) result_path: PathField,
    #[serde(default)]
    pub(super) output_path: PathField,
    #[serde(default)]
    pub(super) catch: Vec<Catcher>,
    #[serde(default)]
    pub(super) next: Option<String>,
    #[serde(default)]
    pub(super) end: bool,
}

/// How a Map runs its iterations (`ItemProcessor.ProcessorConfig.Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum MapMode {
    #[default]
    Inline,
    Distributed,
}

impl<'de> Deserialize<'de> for MapMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "INLINE" => Ok(MapMode::Inline),
            "DISTRIBUTED" => Ok(MapMode::Distributed),
            other => Err(D::Error::custom(format!(
                "ItemProcessor.ProcessorConfig.Mode {other:?} is not supported by the local \
                 runner (INLINE or DISTRIBUTED)"
            ))),
        }
    }
}

/// `ItemProcessor.ProcessorConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ProcessorConfig {
    #[serde(default)]
    pub(super) mode: MapMode,
    #[serde(default)]
    pub(super) execution_type: Option<String>,
}

/// A Map's `ItemProcessor` (or the older `Iterator`) as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ItemProcessor {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(default)]
    pub(super) processor_config: ProcessorConfig,
    pub(super) start_at: String,
    #[serde(deserialize_with = "states")]
    pub(super) states: States,
}

/// A Map's item processor: how it runs and the scope each item runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "ItemProcessor")]
pub(super) struct Processor {
    pub(super) config: ProcessorConfig,
    pub(super) scope: Scope,
}

impl From<ItemProcessor> for Processor {
    fn from(p: ItemProcessor) -> Self {
        Processor {
            config: p.processor_config,
            scope: Scope {
                _comment: p._comment,
                start_at: p.start_at,
                states: p.states,
            },
        }
    }
}

/// A Map, INLINE or DISTRIBUTED.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct MapState {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(rename = "Label", default)]
    pub(super) _label: Option<String>,
    #[serde(default)]
    pub(super) input_path: PathField,
    #[serde(default)]
    pub(super) items_path: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) item_selector: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(super) parameters: Option<Value>,
    #[serde(rename = "ItemProcessor", alias = "Iterator")]
    pub(super) processor: Processor,
    #[serde(default)]
    pub(super) max_concurrency: Option<u64>,
    #[serde(default)]
    pub(super) tolerated_failure_percentage: Option<f64>,
    #[serde(default)]
    pub(super) tolerated_failure_count: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    pub(super) result_selector: Option<Value>,
    #[serde(default)]
    pub(super) result_path: PathField,
    #[serde(default)]
    pub(super) output_path: PathField,
    #[serde(default)]
    pub(super) catch: Vec<Catcher>,
    #[serde(default)]
    pub(super) next: Option<String>,
    #[serde(default)]
    pub(super) end: bool,
    #[serde(rename = "ItemReader", default, deserialize_with = "no_item_reader")]
    pub(super) _item_reader: Option<()>,
    #[serde(
        rename = "ResultWriter",
        default,
        deserialize_with = "no_result_writer"
    )]
    pub(super) _result_writer: Option<()>,
    #[serde(rename = "ItemBatcher", default, deserialize_with = "no_item_batcher")]
    pub(super) _item_batcher: Option<()>,
    #[serde(
        rename = "MaxConcurrencyPath",
        default,
        deserialize_with = "no_max_concurrency_path"
    )]
    pub(super) _max_concurrency_path: Option<()>,
    #[serde(
        rename = "ToleratedFailurePercentagePath",
        default,
        deserialize_with = "no_tolerated_percentage_path"
    )]
    pub(super) _tolerated_failure_percentage_path: Option<()>,
    #[serde(
        rename = "ToleratedFailureCountPath",
        default,
        deserialize_with = "no_tolerated_count_path"
    )]
    pub(super) _tolerated_failure_count_path: Option<()>,
}

impl MapState {
    /// Checks what the field types do not say: a DISTRIBUTED Map needs an ExecutionType
    /// (STANDARD or EXPRESS) and an INLINE one has none; a tolerated failure is 0, and
    /// only a DISTRIBUTED Map has one.
    fn check(&self, name: &str) -> Result<(), ExecError> {
        let refuse = |field: &str, why: &str| {
            ExecError::runtime(format!(
                "state {name}: {field} is not supported by the local runner ({why})"
            ))
        };
        let mode = self.processor.config.mode;
        match (mode, self.processor.config.execution_type.as_deref()) {
            (MapMode::Inline, None) => {}
            (MapMode::Inline, Some(_)) => {
                return Err(refuse(
                    "ProcessorConfig.ExecutionType",
                    "only a DISTRIBUTED Map has one",
                ));
            }
            (MapMode::Distributed, Some("STANDARD" | "EXPRESS")) => {}
            (MapMode::Distributed, other) => {
                return Err(refuse(
                    &format!("ProcessorConfig.ExecutionType {other:?}"),
                    "a DISTRIBUTED Map needs STANDARD or EXPRESS",
                ));
            }
        }
        for (field, value) in [
            (
                "ToleratedFailurePercentage",
                self.tolerated_failure_percentage,
            ),
            ("ToleratedFailureCount", self.tolerated_failure_count),
        ] {
            match (mode, value) {
                (_, None) => {}
                (MapMode::Distributed, Some(0.0)) => {}
                (MapMode::Distributed, Some(v)) => {
                    return Err(refuse(
                        &format!("{field} {v}"),
                        "the first failed child fails the Map: give 0",
                    ));
                }
                (MapMode::Inline, Some(_)) => {
                    return Err(refuse(field, "only a DISTRIBUTED Map has one"));
                }
            }
        }
        Ok(())
    }
}

/// A Parallel (its branches run one after another, see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ParallelState {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(default)]
    pub(super) input_path: PathField,
    #[serde(default, deserialize_with = "present")]
    pub(super) parameters: Option<Value>,
    pub(super) branches: Vec<Scope>,
    #[serde(default, deserialize_with = "present")]
    pub(super) result_selector: Option<Value>,
    #[serde(default)]
    pub(super) result_path: PathField,
    #[serde(default)]
    pub(super) output_path: PathField,
    #[serde(default)]
    pub(super) catch: Vec<Catcher>,
    #[serde(default)]
    pub(super) next: Option<String>,
    #[serde(default)]
    pub(super) end: bool,
}

/// A Choice. Its output is its raw input (the runner applies no `OutputPath` here, so
/// none is accepted).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ChoiceState {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(default)]
    pub(super) input_path: PathField,
    pub(super) choices: Vec<ChoiceRule>,
    #[serde(default)]
    pub(super) default: Option<String>,
}

/// A Choice rule as written: the boolean combinators, the `Variable` and the one
/// comparison the runner implements, and `Next` (top-level rules only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct RawRule {
    #[serde(default)]
    pub(super) next: Option<String>,
    #[serde(default)]
    pub(super) and: Option<Vec<Test>>,
    #[serde(default)]
    pub(super) or: Option<Vec<Test>>,
    #[serde(default)]
    pub(super) not: Option<Box<Test>>,
    #[serde(default)]
    pub(super) variable: Option<String>,
    #[serde(default)]
    pub(super) is_present: Option<bool>,
    #[serde(default)]
    pub(super) is_null: Option<bool>,
    #[serde(default)]
    pub(super) string_equals: Option<String>,
    #[serde(default)]
    pub(super) boolean_equals: Option<bool>,
    #[serde(default)]
    pub(super) numeric_equals: Option<f64>,
    #[serde(default)]
    pub(super) numeric_greater_than: Option<f64>,
    #[serde(default)]
    pub(super) numeric_less_than: Option<f64>,
}

impl RawRule {
    /// The rule's test: exactly one of `And`, `Or`, `Not` or a comparison, the
    /// comparison with a `Variable`.
    fn test(self) -> Result<(Option<String>, Test), String> {
        let compare = [
            self.is_present.map(Comparison::IsPresent),
            self.is_null.map(Comparison::IsNull),
            self.string_equals.map(Comparison::StringEquals),
            self.boolean_equals.map(Comparison::BooleanEquals),
            self.numeric_equals.map(Comparison::NumericEquals),
            self.numeric_greater_than
                .map(Comparison::NumericGreaterThan),
            self.numeric_less_than.map(Comparison::NumericLessThan),
        ];
        let mut tests: Vec<Test> = compare
            .into_iter()
            .flatten()
            .map(|op| Test::Compare {
                variable: self.variable.clone().unwrap_or_default(),
                op,
            })
            .collect();
        let combined = tests.is_empty();
        tests.extend(self.and.map(Test::And));
        tests.extend(self.or.map(Test::Or));
        tests.extend(self.not.map(Test::Not));
        if tests.len() != 1 {
            return Err(format!(
                "a Choice rule needs exactly one of And, Or, Not or a comparison, found {}",
                tests.len()
            ));
        }
        match (combined, &self.variable) {
            (false, None) => return Err("a Choice rule without Variable".into()),
            (true, Some(_)) => {
                return Err("a Choice rule with And, Or or Not and a Variable".into());
            }
            _ => {}
        }
        Ok((self.next, tests.remove(0)))
    }
}

/// A top-level Choice rule: its test and where it goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawRule")]
pub(super) struct ChoiceRule {
    pub(super) test: Test,
    pub(super) next: String,
}

impl TryFrom<RawRule> for ChoiceRule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        match raw.test()? {
            (Some(next), test) => Ok(ChoiceRule { test, next }),
            (None, _) => Err("a Choice rule without Next".into()),
        }
    }
}

/// What a Choice rule tests (nested in `And`, `Or` and `Not` without `Next`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawRule")]
pub(super) enum Test {
    And(Vec<Test>),
    Or(Vec<Test>),
    Not(Box<Test>),
    Compare { variable: String, op: Comparison },
}

impl TryFrom<RawRule> for Test {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        match raw.test()? {
            (None, test) => Ok(test),
            (Some(_), _) => Err("a nested Choice rule with Next".into()),
        }
    }
}

/// A comparison of a Choice rule with its operand.
#[derive(Debug, Clone)]
pub(super) enum Comparison {
    IsPresent(bool),
    IsNull(bool),
    StringEquals(String),
    BooleanEquals(bool),
    NumericEquals(f64),
    NumericGreaterThan(f64),
    NumericLessThan(f64),
}

/// A Pass.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct PassState {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(default)]
    pub(super) input_path: PathField,
    #[serde(default, deserialize_with = "present")]
    pub(super) parameters: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub(super) result: Option<Value>,
    #[serde(default)]
    pub(super) result_path: PathField,
    #[serde(default)]
    pub(super) output_path: PathField,
    #[serde(default)]
    pub(super) next: Option<String>,
    #[serde(default)]
    pub(super) end: bool,
}

/// A Succeed: its output is its input after `InputPath`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct SucceedState {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(default)]
    pub(super) input_path: PathField,
}

/// A Fail: its error and cause, given or read from the input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct FailState {
    #[serde(rename = "Comment", default)]
    pub(super) _comment: Option<String>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) error_path: Option<String>,
    #[serde(default)]
    pub(super) cause: Option<String>,
    #[serde(default)]
    pub(super) cause_path: Option<String>,
}

/// What follows the result of a Task, Map or Parallel: `ResultSelector`, `ResultPath`,
/// `OutputPath`, `Catch` and the transition.
pub(super) struct After<'s> {
    pub(super) result_selector: Option<&'s Value>,
    pub(super) result_path: &'s PathField,
    pub(super) output_path: &'s PathField,
    pub(super) catch: &'s [Catcher],
    pub(super) next: Option<&'s str>,
    pub(super) end: bool,
}

macro_rules! after {
    ($($t:ty),*) => {$(
        impl $t {
            pub(super) fn after(&self) -> After<'_> {
                After {
                    result_selector: self.result_selector.as_ref(),
                    result_path: &self.result_path,
                    output_path: &self.output_path,
                    catch: &self.catch,
                    next: self.next.as_deref(),
                    end: self.end,
                }
            }
        }
    )*};
}

after!(TaskState, MapState, ParallelState);

impl State {
    /// The states this one may go to (`Next`, `Catch`, the Choice rules and `Default`).
    fn targets(&self) -> Vec<&str> {
        fn with_catch<'s>(next: &'s Option<String>, catch: &'s [Catcher]) -> Vec<&'s str> {
            next.as_deref()
                .into_iter()
                .chain(catch.iter().map(|c| c.next.as_str()))
                .collect()
        }
        match self {
            State::Task(s) => with_catch(&s.next, &s.catch),
            State::Map(s) => with_catch(&s.next, &s.catch),
            State::Parallel(s) => with_catch(&s.next, &s.catch),
            State::Pass(s) => s.next.as_deref().into_iter().collect(),
            State::Choice(s) => s
                .choices
                .iter()
                .map(|c| c.next.as_str())
                .chain(s.default.as_deref())
                .collect(),
            State::Succeed(_) | State::Fail(_) => Vec::new(),
        }
    }
}

/// Checks a scope and the scopes in it beyond the types: `StartAt` and every transition
/// name a state of the scope, Tasks use [`LAMBDA_INVOKE`], Maps pass [`MapState::check`].
pub(super) fn check_scope(scope: &Scope) -> Result<(), ExecError> {
    let start = &scope.start_at;
    if !scope.states.contains_key(start) {
        return Err(ExecError::runtime(format!(
            "StartAt {start} is not a state"
        )));
    }
    for (name, s) in &scope.states {
        match s {
            State::Task(t) if t.resource != LAMBDA_INVOKE => {
                return Err(ExecError::runtime(format!(
                    "task {name}: only Resource {LAMBDA_INVOKE} is supported locally"
                )));
            }
            State::Map(m) => {
                m.check(name)?;
                check_scope(&m.processor.scope)?;
            }
            State::Parallel(p) => {
                for b in &p.branches {
                    check_scope(b)?;
                }
            }
            _ => {}
        }
        for t in s.targets() {
            if !scope.states.contains_key(t) {
                return Err(ExecError::runtime(format!(
                    "state {name} goes to {t}, which is not in its scope"
                )));
            }
        }
    }
    Ok(())
}
