//! The lake's tables in the AWS Glue Data Catalog, generated from [`crate::catalog`], so
//! Athena reads the lake with the same schemas as irtlake.
//!
//! [`glue_terraform`] renders one `aws_glue_catalog_table` per catalog table as
//! Terraform, checked in as `infra/terraform/glue_tables.tf` ([`TERRAFORM_FILE`]). The
//! test `glue::tests::terraform_file_is_current` fails while that file and the catalog
//! differ; `IRTLAKE_BLESS=1 cargo test -p lake --lib glue` rewrites it ([`BLESS_ENV`]).
//!
//! Each table is:
//! - external, Parquet (`ParquetHiveSerDe`, `MapredParquetInputFormat`/`OutputFormat`),
//!   at `<LAKE_URI>/<table>/` (`local.lake_uri` in Terraform); Athena reads every object
//!   under a partition's folder, which is what irtlake reads too (one object per
//!   partition, or one per student shard: see [`crate::shard`]);
//! - its file columns in catalog order with Hive types ([`hive_type`]), then its
//!   partition columns as `partition_keys`, typed as in irtlake's SQL
//!   ([`crate::catalog::partition_type`]: `date` for `dt`, `run_date`, `week_start`,
//!   `string` for `bank`), so a query such as `WHERE week_start = DATE '2026-03-02'`
//!   reads the same in both;
//! - partitioned with **partition projection**: Athena computes the partitions from the
//!   table's properties, so no crawler, no `MSCK REPAIR TABLE` and no partition in the
//!   catalog is ever needed ([`projection`]):
//!   - `dt`, `run_date`: type `date`, format `yyyy-MM-dd`, every day from
//!     `var.athena_projection_start_date` to `NOW`;
//!   - `week_start`: the same, every 7 days: weeks start on Monday
//!     ([`crate::runs::week_start`]) and Terraform requires the start date to be a Monday;
//!   - `bank`: type `injected`, because banks are open-ended ids (`all`,
//!     `subject:<id>`, `topic:<id>`): a query on `item_params`, `abilities`, `fit_meta`
//!     or `anchor_drift` must name its banks with equality (`bank = 'all'`,
//!     `bank IN ('subject:math', 'topic:algebra')`), else Athena refuses it.
//!
//! Decision — projected date columns are `date` keys, as in irtlake (and as DuckDB and
//! polars infer them): Athena's `date` projection formats the projected dates with the
//! column's `format` to find the folders, and compares them as dates. Trino does not
//! compare a date with a string, so Athena queries spell date literals
//! `DATE '2026-03-02'`, which irtlake and DuckDB read too.
//!
//! Decision — no `storage.location.template`: the lake's folders are Hive's
//! `column=value/`, Athena's default layout, so Athena builds a partition's folder
//! itself. It then escapes the value as Hive does (Hive's `escapePathName`; that is what
//! Trino's implementation of Athena's projection does, read in its source — not tried
//! against AWS here), which for `:` is irtlake's escape too (`bank=subject%3Amath`).
//! So a bank whose id is made of letters, digits, `-`, `_` and `:` (every bank of the
//! pipeline with ordinary ids) is queried by its plain id, as in irtlake. Hive leaves
//! some characters as they are that irtlake escapes (space, `.`, `~`, non-ASCII, …), and
//! a value longer than [`crate::partition::MAX_VALUE_BYTES`] escaped is shortened on
//! disk: such banks are not reachable through Athena's `bank` column (irtlake reads
//! them). With a template, Athena puts the value in the path unescaped, so every query
//! would have to spell the escaped form (`bank = 'subject%3Amath'`) and would read it
//! back so.

use std::fmt::Write as _;

use arrow::datatypes::{DataType, Field, TimeUnit};

use crate::catalog::{TABLES, TableDef};
use crate::error::{LakeError, Result};

/// The generated file, relative to the repository root.
pub const TERRAFORM_FILE: &str = "infra/terraform/glue_tables.tf";

/// Set to `1` when running the lake's tests to rewrite [`TERRAFORM_FILE`] instead of
/// comparing it.
pub const BLESS_ENV: &str = "IRTLAKE_BLESS";

/// Hive serializer and input/output formats of a Parquet table.
const SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
const INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// How Athena projects one partition column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// `yyyy-MM-dd` dates from the start date to `NOW`, one every `every_days` days.
    Date {
        /// Step between projected dates, in days.
        every_days: u32,
    },
    /// Values taken from the query's equality conditions on the column.
    Injected,
}

/// The projection of a partition column, by its name (the catalog's conventions:
/// `dt`, `run_date`, `week_start` are `YYYY-MM-DD`, `bank` is a bank id). `None` for a
/// column no rule covers: a new partition column needs a decision here.
pub fn projection(column: &str) -> Option<Projection> {
    match column {
        "dt" | "run_date" => Some(Projection::Date { every_days: 1 }),
        "week_start" => Some(Projection::Date { every_days: 7 }),
        "bank" => Some(Projection::Injected),
        _ => None,
    }
}

/// The Hive (Glue, Athena) type of an Arrow type as irtlake writes it to Parquet, or
/// `None` when there is no faithful one. Mapped: `Utf8`/`LargeUtf8`/`Utf8View` →
/// `string`, `Boolean` → `boolean`, `Int8`/`Int16`/`Int32`/`Int64` →
/// `tinyint`/`smallint`/`int`/`bigint`, `Float32`/`Float64` → `float`/`double`,
/// `Decimal128(p, s)` → `decimal(p,s)`, `Binary`/`LargeBinary` → `binary`, `Date32` →
/// `date`, `Timestamp` in milli- or microseconds, UTC or without a zone → `timestamp`,
/// lists → `array<…>`, structs → `struct<name:type,…>`, maps → `map<key,value>`.
/// Everything else — unsigned integers, half floats, other time units or zones,
/// durations, intervals, unions, dictionaries, … — is `None`.
pub fn hive_type(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) if *p <= 38 && *s >= 0 && i16::from(*s) <= i16::from(*p) => {
            format!("decimal({p},{s})")
        }
        DataType::Binary | DataType::LargeBinary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond, tz)
            if tz.as_deref().is_none_or(|z| z == "UTC" || z == "+00:00") =>
        {
            "timestamp".into()
        }
        DataType::List(item) | DataType::LargeList(item) => {
            format!("array<{}>", hive_type(item.data_type())?)
        }
        DataType::Struct(fields) if !fields.is_empty() => {
            let mut parts = Vec::with_capacity(fields.len());
            for f in fields {
                if !is_hive_name(f.name()) {
                    return None;
                }
                parts.push(format!("{}:{}", f.name(), hive_type(f.data_type())?));
            }
            format!("struct<{}>", parts.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                hive_type(kv[0].data_type())?,
                hive_type(kv[1].data_type())?
            ),
            _ => return None,
        },
        _ => return None,
    })
}

/// A column name Glue keeps as it is: lower case ASCII letters, digits and `_`, not
/// starting with a digit (Glue lower-cases names; Athena needs no quotes for these).
fn is_hive_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `value` as an HCL string literal: quotes and backslashes escaped, and `${` / `%{`
/// doubled so Terraform reads them as text, not as interpolation.
fn hcl_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Appends `key = value` lines at `indent` with the `=` aligned, as `terraform fmt` does
/// for consecutive arguments.
fn aligned(out: &mut String, indent: usize, pairs: &[(String, String)]) {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in pairs {
        let pad = width - k.chars().count();
        let _ = writeln!(out, "{:indent$}{k}{:pad$} = {v}", "", "");
    }
}

fn pair(key: &str, value: String) -> (String, String) {
    (key.to_string(), value)
}

fn mismatch(table: &TableDef, reason: String) -> LakeError {
    LakeError::SchemaMismatch {
        table: table.name.to_string(),
        reason,
    }
}

/// The Glue column of one file field.
fn column(table: &TableDef, field: &Field) -> Result<(String, String)> {
    if !is_hive_name(field.name()) {
        return Err(mismatch(
            table,
            format!(
                "column '{}' is not a lower-case Hive name ([a-z_][a-z0-9_]*)",
                field.name()
            ),
        ));
    }
    let ty = hive_type(field.data_type()).ok_or_else(|| {
        mismatch(
            table,
            format!(
                "column '{}' has Arrow type {} with no Glue/Hive type: map it in lake::glue::hive_type",
                field.name(),
                field.data_type()
            ),
        )
    })?;
    Ok((field.name().to_string(), ty))
}

/// The `aws_glue_catalog_table` resource of one table (see the module docs).
pub fn glue_table(table: &TableDef) -> Result<String> {
    if !is_hive_name(table.name) {
        return Err(mismatch(table, "the table name is not a Hive name".into()));
    }
    let columns = table
        .file_schema
        .fields()
        .iter()
        .map(|f| column(table, f))
        .collect::<Result<Vec<_>>>()?;

    let mut params = vec![
        pair("EXTERNAL", hcl_string("TRUE")),
        pair("classification", hcl_string("parquet")),
    ];
    if !table.partitions.is_empty() {
        params.push(pair("projection.enabled", hcl_string("true")));
    }
    for p in table.partitions {
        if !is_hive_name(p) {
            return Err(mismatch(
                table,
                format!("partition column '{p}' is not a Hive name"),
            ));
        }
        let key = |what: &str| format!("projection.{p}.{what}");
        match projection(p) {
            Some(Projection::Date { every_days }) => {
                params.push(pair(&key("type"), hcl_string("date")));
                params.push(pair(&key("format"), hcl_string("yyyy-MM-dd")));
                params.push(pair(
                    &key("range"),
                    "\"${var.athena_projection_start_date},NOW\"".into(),
                ));
                params.push(pair(&key("interval"), hcl_string(&every_days.to_string())));
                params.push(pair(&key("interval.unit"), hcl_string("DAYS")));
            }
            Some(Projection::Injected) => {
                params.push(pair(&key("type"), hcl_string("injected")));
            }
            None => {
                return Err(mismatch(
                    table,
                    format!(
                        "partition column '{p}' has no Athena projection: add a rule to lake::glue::projection"
                    ),
                ));
            }
        }
    }
    let params: Vec<_> = params
        .into_iter()
        .map(|(k, v)| (hcl_string(&k), v))
        .collect();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "resource \"aws_glue_catalog_table\" \"{}\" {{",
        table.name
    );
    aligned(
        &mut out,
        2,
        &[
            pair("name", hcl_string(table.name)),
            pair(
                "database_name",
                "aws_glue_catalog_database.lake.name".into(),
            ),
            pair("description", hcl_string(table.description)),
            pair("table_type", hcl_string("EXTERNAL_TABLE")),
        ],
    );
    out.push_str("\n  parameters = {\n");
    aligned(&mut out, 4, &params);
    out.push_str("  }\n");
    for p in table.partitions {
        let hive = hive_type(&crate::catalog::partition_type(p))
            .ok_or_else(|| mismatch(table, format!("partition column '{p}' has no Hive type")))?;
        out.push_str("\n  partition_keys {\n");
        aligned(
            &mut out,
            4,
            &[pair("name", hcl_string(p)), pair("type", hcl_string(&hive))],
        );
        out.push_str("  }\n");
    }
    out.push_str("\n  storage_descriptor {\n");
    aligned(
        &mut out,
        4,
        &[
            pair(
                "location",
                format!("\"${{local.lake_uri}}/{}/\"", table.name),
            ),
            pair("input_format", hcl_string(INPUT_FORMAT)),
            pair("output_format", hcl_string(OUTPUT_FORMAT)),
        ],
    );
    out.push_str("\n    ser_de_info {\n");
    aligned(
        &mut out,
        6,
        &[pair("serialization_library", hcl_string(SERDE))],
    );
    out.push_str("    }\n");
    for (name, ty) in &columns {
        out.push_str("\n    columns {\n");
        aligned(
            &mut out,
            6,
            &[pair("name", hcl_string(name)), pair("type", hcl_string(ty))],
        );
        out.push_str("    }\n");
    }
    out.push_str("  }\n}\n");
    Ok(out)
}

/// The whole of [`TERRAFORM_FILE`]: a header, then [`glue_table`] of every table of
/// [`TABLES`], in catalog order.
pub fn glue_terraform() -> Result<String> {
    let mut out = String::from(HEADER);
    for table in TABLES.iter() {
        out.push('\n');
        out.push_str(&glue_table(table)?);
    }
    Ok(out)
}

const HEADER: &str = "\
# GENERATED from lake/src/catalog.rs by lake::glue (lake/src/glue.rs): do not edit.
# Regenerate after changing the catalog, and commit the result:
#   IRTLAKE_BLESS=1 cargo test -p lake --lib glue
# (`cargo test -p lake` fails while this file and the catalog differ.)
#
# One Glue table per lake table: Parquet under <LAKE_URI>/<table>/, Hive partition
# folders read through partition projection, so Athena needs no crawler and no
# MSCK REPAIR TABLE. dt and run_date: every day from var.athena_projection_start_date
# to NOW; week_start: every Monday; bank: injected, so a query names its banks
# (bank = 'all'). The database and the Athena workgroup are in athena.tf.
";

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use arrow::datatypes::{Fields, Schema};

    use super::*;

    fn checked_in_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(TERRAFORM_FILE)
    }

    /// The one schema source and the Terraform agree; `IRTLAKE_BLESS=1` rewrites the file.
    #[test]
    fn terraform_file_is_current() {
        let rendered = glue_terraform().expect("every catalog table renders");
        let path = checked_in_path();
        if std::env::var(BLESS_ENV).is_ok_and(|v| v == "1") {
            std::fs::write(&path, &rendered).expect("write the generated file");
            return;
        }
        let Ok(on_disk) = std::fs::read_to_string(&path) else {
            panic!(
                "{TERRAFORM_FILE} is missing: generate it with \
                 `{BLESS_ENV}=1 cargo test -p lake --lib glue` and commit it"
            );
        };
        assert!(
            on_disk == rendered,
            "{TERRAFORM_FILE} differs from lake/src/catalog.rs (first difference at line {}): \
             regenerate it with `{BLESS_ENV}=1 cargo test -p lake --lib glue` and commit it",
            on_disk
                .lines()
                .zip(rendered.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| on_disk.lines().count().min(rendered.lines().count()))
                + 1
        );
    }

    /// The value of the table parameter `key` in a rendered block.
    fn param<'a>(block: &'a str, key: &str) -> Option<&'a str> {
        block.lines().find_map(|l| {
            let (k, v) = l.trim().split_once(" = ")?;
            (k.trim_end() == format!("\"{key}\"")).then_some(v)
        })
    }

    #[test]
    fn every_table_has_its_columns_partitions_and_projection() {
        let tf = glue_terraform().unwrap();
        for t in TABLES.iter() {
            let block = glue_table(t).unwrap();
            assert!(tf.contains(&block), "{}", t.name);
            assert!(block.starts_with(&format!(
                "resource \"aws_glue_catalog_table\" \"{}\" {{\n",
                t.name
            )));
            assert!(block.contains(&format!("\"${{local.lake_uri}}/{}/\"", t.name)));
            assert_eq!(
                block.matches("\n    columns {").count(),
                t.file_schema.fields().len(),
                "{}",
                t.name
            );
            assert_eq!(
                block.matches("\n  partition_keys {").count(),
                t.partitions.len()
            );
            assert_eq!(
                block.contains("\"projection.enabled\""),
                !t.partitions.is_empty()
            );
            for p in t.partitions {
                assert!(block.contains(&format!("\"projection.{p}.type\"")), "{p}");
            }
        }
        // a few tables spelled out
        let block = |name| glue_table(crate::catalog::table(name).unwrap()).unwrap();
        let kpi = block("weekly_kpi");
        assert_eq!(param(&kpi, "projection.week_start.type"), Some("\"date\""));
        assert_eq!(param(&kpi, "projection.week_start.interval"), Some("\"7\""));
        assert_eq!(
            param(&kpi, "projection.week_start.range"),
            Some("\"${var.athena_projection_start_date},NOW\"")
        );
        let attempts = block("attempts");
        assert!(attempts.contains("name = \"completed_at\"\n      type = \"timestamp\""));
        assert_eq!(
            param(&attempts, "projection.dt.format"),
            Some("\"yyyy-MM-dd\"")
        );
        assert_eq!(param(&attempts, "projection.dt.interval"), Some("\"1\""));
        let q = block("questions");
        assert!(q.contains("name = \"tags\"\n      type = \"array<string>\""));
        assert!(!q.contains("partition_keys"));
        let items = block("item_params");
        assert_eq!(param(&items, "projection.bank.type"), Some("\"injected\""));
        assert_eq!(param(&items, "projection.run_date.type"), Some("\"date\""));
    }

    #[test]
    fn arrow_types_map_to_hive_types() {
        let item = |t: DataType| Arc::new(Field::new("item", t, true));
        let cases = [
            (DataType::Utf8, "string"),
            (DataType::LargeUtf8, "string"),
            (DataType::Boolean, "boolean"),
            (DataType::Int32, "int"),
            (DataType::Int64, "bigint"),
            (DataType::Float64, "double"),
            (DataType::Date32, "date"),
            (DataType::Decimal128(10, 2), "decimal(10,2)"),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                "timestamp",
            ),
            (
                DataType::Timestamp(TimeUnit::Millisecond, None),
                "timestamp",
            ),
            (DataType::List(item(DataType::Utf8)), "array<string>"),
            (
                DataType::List(item(DataType::List(item(DataType::Float64)))),
                "array<array<double>>",
            ),
            (
                DataType::Struct(Fields::from(vec![
                    Field::new("a", DataType::Int64, false),
                    Field::new("b", DataType::Utf8, true),
                ])),
                "struct<a:bigint,b:string>",
            ),
            (
                DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(Fields::from(vec![
                            Field::new("key", DataType::Utf8, false),
                            Field::new("value", DataType::Float64, true),
                        ])),
                        false,
                    )),
                    false,
                ),
                "map<string,double>",
            ),
        ];
        for (t, want) in cases {
            assert_eq!(hive_type(&t).as_deref(), Some(want), "{t}");
        }
        assert_eq!(
            hive_type(&crate::catalog::ts_type()).as_deref(),
            Some("timestamp")
        );
    }

    #[test]
    fn unmapped_types_fail_loudly() {
        for t in [
            DataType::UInt64,
            DataType::UInt8,
            DataType::Float16,
            DataType::Null,
            DataType::Date64,
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            DataType::Timestamp(TimeUnit::Microsecond, Some("Asia/Seoul".into())),
            DataType::Duration(TimeUnit::Second),
            DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            DataType::Struct(Fields::from(vec![Field::new(
                "Mixed",
                DataType::Utf8,
                true,
            )])),
        ] {
            assert_eq!(hive_type(&t), None, "{t}");
        }
        let def = TableDef {
            name: "t",
            file_schema: Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, false)])),
            partitions: &[],
            description: "",
        };
        let err = glue_table(&def).unwrap_err().to_string();
        assert!(err.contains("'n'") && err.contains("UInt64"), "{err}");
        let upper = TableDef {
            file_schema: Arc::new(Schema::new(vec![Field::new("I_t", DataType::Utf8, false)])),
            ..def.clone()
        };
        assert!(
            glue_table(&upper)
                .unwrap_err()
                .to_string()
                .contains("'I_t'")
        );
    }

    #[test]
    fn a_partition_column_without_a_projection_rule_is_refused() {
        let def = TableDef {
            name: "t",
            file_schema: Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, false)])),
            partitions: &["region"],
            description: "",
        };
        let err = glue_table(&def).unwrap_err().to_string();
        assert!(
            err.contains("'region'") && err.contains("projection"),
            "{err}"
        );
        assert_eq!(projection("dt"), Some(Projection::Date { every_days: 1 }));
        assert_eq!(projection("bank"), Some(Projection::Injected));
    }

    #[test]
    fn descriptions_are_hcl_text_never_interpolation() {
        assert_eq!(hcl_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(hcl_string("${x} %{y} $z %w"), r#""$${x} %%{y} $z %w""#);
        assert_eq!(hcl_string("θ – ü"), "\"θ – ü\"");
    }
}
