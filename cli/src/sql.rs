//! `irtlake sql`: read-only DataFusion SQL over the lake.
//!
//! User SQL may read the lake and nothing else, and never writes:
//! - statements are gated before planning: queries (`SELECT`, `WITH`, `VALUES`),
//!   `EXPLAIN` of a query, `SHOW …` and `DESCRIBE` run; `SET` runs only for the
//!   settings in [`HARMLESS_SETTINGS`]; everything else (`INSERT`, `COPY`,
//!   `CREATE [EXTERNAL] TABLE`, `DROP`, `DELETE`, `PREPARE`, …) is refused with an
//!   error naming the statement kind, before anything is planned or run;
//! - every plan is checked again with DataFusion's `SQLOptions` (no DDL, no DML, no
//!   statements), which also catches a write nested in a query;
//! - the session is [`lake::Lake::read_only_session`]: its only object store is the lake,
//!   read-only and confined to the lake root, so no URL, local path or other bucket is
//!   reachable, and URL tables are off.
//!
//! A result is exported with `--format csv|json|ndjson|parquet`, to stdout or to the local
//! file named by `--out` (parquet needs `--out`). The interactive shell (`crate::shell`)
//! runs each of its statements through the same [`SqlSession::run`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::logical_expr::{LogicalPlan, Statement as PlanStatement};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::output::{Format, write_batches, write_results};

/// Settings `SET` may change: they only affect how this session prints values.
pub const HARMLESS_SETTINGS: &[&str] = &["datafusion.execution.time_zone"];

/// Where results go.
pub enum Sink<'a> {
    /// A writer (stdout in the CLI).
    Writer(&'a mut dyn Write),
    /// The local file the user named with `--out` (replaced atomically).
    File(&'a Path),
}

/// A read-only SQL session over a lake: one DataFusion context for every statement it
/// runs, so a `SET` (of [`HARMLESS_SETTINGS`]) lasts for the session (the shell's).
pub struct SqlSession {
    ctx: SessionContext,
}

impl SqlSession {
    /// A session over [`lake::Lake::read_only_session`].
    pub fn new(lake: &lake::Lake) -> Result<Self> {
        Ok(Self {
            ctx: lake.read_only_session()?,
        })
    }

    /// The schema of table `name` as SQL sees it (`None` when there is no such table).
    pub async fn table_schema(&self, name: &str) -> Result<Option<SchemaRef>> {
        Ok(self.ctx.table_provider(name).await.ok().map(|t| t.schema()))
    }

    /// Runs every statement in `text` (separated by `;`) and writes each result to `sink`
    /// in `format`. With a file sink, `text` must hold exactly one statement. A rejected
    /// statement runs none of them; results are written once every statement has run.
    pub async fn run(&self, text: &str, format: Format, sink: Sink<'_>) -> Result<()> {
        let statements = DFParser::parse_sql(text).context("parsing SQL")?;
        if statements.is_empty() {
            anyhow::bail!("no SQL statement given");
        }
        // Refuse before planning anything: a rejected script runs no statement at all.
        for (n, statement) in statements.iter().enumerate() {
            gate(statement).map_err(|kind| refused(&kind, n + 1))?;
        }
        if matches!(sink, Sink::File(_)) && statements.len() != 1 {
            anyhow::bail!(
                "--out writes one result: give exactly one statement ({} given)",
                statements.len()
            );
        }
        if format == Format::Parquet && matches!(sink, Sink::Writer(_)) {
            anyhow::bail!("--format parquet writes a file: add --out FILE.parquet");
        }
        let ctx = &self.ctx;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let mut results = Vec::new();
        for (n, statement) in statements.into_iter().enumerate() {
            let plan = ctx
                .state()
                .statement_to_plan(statement)
                .await
                .with_context(|| format!("planning statement {}", n + 1))?;
            if let LogicalPlan::Statement(PlanStatement::SetVariable(set)) = &plan
                && !is_harmless_set(&plan)
            {
                return Err(refused(&format!("SET {}", set.variable), n + 1));
            }
            if !is_harmless_set(&plan) {
                options
                    .verify_plan(&plan)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| {
                        format!(
                            "statement {}: irtlake sql is read-only (queries only)",
                            n + 1
                        )
                    })?;
            }
            let schema: SchemaRef = plan.schema().inner().clone();
            let batches = ctx
                .execute_logical_plan(plan)
                .await?
                .collect()
                .await
                .with_context(|| format!("running statement {}", n + 1))?;
            if is_set(&batches, &schema) {
                continue;
            }
            // The batches' own schema (as executed) where there are any.
            let schema = batches.first().map(RecordBatch::schema).unwrap_or(schema);
            results.push((schema, batches));
        }
        match sink {
            Sink::Writer(out) => write_results(&results, format, out)?,
            Sink::File(path) => {
                if let Some((schema, batches)) = results.first() {
                    write_file(path, batches, schema, format)?;
                }
            }
        }
        Ok(())
    }
}

/// Runs every statement in `text` over a new [`SqlSession`] of `lake` (see
/// [`SqlSession::run`]).
pub async fn run_sql(lake: &lake::Lake, text: &str, format: Format, sink: Sink<'_>) -> Result<()> {
    SqlSession::new(lake)?.run(text, format, sink).await
}

/// `SET` leaves no result to print.
fn is_set(batches: &[RecordBatch], schema: &SchemaRef) -> bool {
    schema.fields().is_empty() && batches.iter().all(|b| b.num_rows() == 0)
}

/// Writes one result to `path`: into a sibling temporary file, renamed over `path` when
/// complete, so a failed export leaves no half-written file.
fn write_file(
    path: &Path,
    batches: &[RecordBatch],
    schema: &SchemaRef,
    format: Format,
) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--out {}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".irtlake-partial");
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = (|| -> Result<()> {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
        );
        write_batches(batches, schema, format, &mut file)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing the result to {}", path.display()))
}

/// The refusal message for a statement of `kind` (1-based position `n`).
fn refused(kind: &str, n: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "statement {n}: {kind} is refused: irtlake sql is read-only (SELECT, WITH, VALUES, \
         EXPLAIN, SHOW, DESCRIBE; SET only for {}). To save a result use \
         --format csv|json|parquet --out FILE",
        HARMLESS_SETTINGS.join(", ")
    )
}

/// `Ok` for the statements user SQL may run; else the statement's kind, e.g.
/// `INSERT INTO`, `COPY`, `CREATE EXTERNAL TABLE`.
fn gate(statement: &DFStatement) -> Result<(), String> {
    match statement {
        DFStatement::Statement(s) => match s.as_ref() {
            SqlStatement::Query(_)
            | SqlStatement::ShowTables { .. }
            | SqlStatement::ShowColumns { .. }
            | SqlStatement::ShowVariable { .. }
            | SqlStatement::ShowFunctions { .. }
            | SqlStatement::ExplainTable { .. }
            // checked against HARMLESS_SETTINGS once planned
            | SqlStatement::Set(_) => Ok(()),
            SqlStatement::Explain { statement, .. } => {
                gate(&DFStatement::Statement(statement.clone()))
            }
            other => Err(kind_of(&other.to_string())),
        },
        DFStatement::Explain(e) => gate(&e.statement),
        DFStatement::CopyTo(_) => Err("COPY".into()),
        DFStatement::CreateExternalTable(_) => Err("CREATE EXTERNAL TABLE".into()),
        DFStatement::Reset(_) => Err("RESET".into()),
    }
}

/// The leading keywords of a statement's SQL text: `INSERT INTO`, `DROP TABLE`,
/// `CREATE OR REPLACE VIEW`, `DELETE FROM`.
fn kind_of(sql: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "INTO",
        "FROM",
        "TABLE",
        "VIEW",
        "EXTERNAL",
        "OR",
        "REPLACE",
        "TEMPORARY",
        "TEMP",
        "SCHEMA",
        "DATABASE",
        "CATALOG",
        "FUNCTION",
        "INDEX",
        "UNBOUNDED",
        "OVERWRITE",
        "TRANSACTION",
    ];
    let mut words = sql.split_whitespace();
    let mut kind = words.next().unwrap_or("statement").to_uppercase();
    for w in words {
        if KEYWORDS.contains(&w.to_uppercase().as_str()) {
            kind.push(' ');
            kind.push_str(&w.to_uppercase());
        } else {
            break;
        }
    }
    kind
}

/// True for `SET <setting> = …` of a [`HARMLESS_SETTINGS`] entry.
fn is_harmless_set(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Statement(PlanStatement::SetVariable(set))
        if HARMLESS_SETTINGS.contains(&set.variable.to_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kind(sql: &str) -> Option<String> {
        let mut s = DFParser::parse_sql(sql).unwrap();
        gate(&s.pop_front().unwrap()).err()
    }

    #[test]
    fn queries_pass_the_gate_and_writes_are_named() {
        for ok in [
            "SELECT 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1)",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "SHOW TABLES",
            "SHOW COLUMNS FROM questions",
            "DESCRIBE questions",
            "SET datafusion.execution.time_zone = '+09:00'",
        ] {
            assert_eq!(kind(ok), None, "{ok}");
        }
        for (sql, want) in [
            (
                "INSERT INTO questions SELECT * FROM questions",
                "INSERT INTO",
            ),
            ("COPY (SELECT 'x') TO '../outside.csv'", "COPY"),
            (
                "CREATE EXTERNAL TABLE p (l TEXT) STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL TABLE",
            ),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("DROP TABLE questions", "DROP TABLE"),
            ("DELETE FROM questions", "DELETE FROM"),
            ("UPDATE questions SET irt_a = 1", "UPDATE"),
            (
                "EXPLAIN ANALYZE INSERT INTO questions SELECT * FROM questions",
                "INSERT INTO",
            ),
            ("EXPLAIN COPY (SELECT 1) TO 'x.csv'", "COPY"),
            ("PREPARE p AS SELECT 1", "PREPARE"),
            ("RESET datafusion.execution.time_zone", "RESET"),
        ] {
            assert_eq!(kind(sql).as_deref(), Some(want), "{sql}");
        }
        assert!(kind("BEGIN TRANSACTION").is_some());
    }

    #[tokio::test]
    async fn only_harmless_settings_may_be_set_and_plans_are_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let lake =
            lake::Lake::open(&format!("file://{}", dir.path().join("lake").display())).unwrap();
        let mut out = Vec::new();
        run_sql(
            &lake,
            "SET datafusion.execution.time_zone = '+09:00'; SELECT 1 AS one",
            Format::Csv,
            Sink::Writer(&mut out),
        )
        .await
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "one\n1\n");
        let mut out = Vec::new();
        let err = run_sql(
            &lake,
            "SET datafusion.execution.target_partitions = 1000000",
            Format::Csv,
            Sink::Writer(&mut out),
        )
        .await
        .unwrap_err();
        assert!(format!("{err:#}").contains("read-only"), "{err:#}");
        // A write nested in a query is caught by the plan check.
        let plan = lake
            .read_only_session()
            .unwrap()
            .state()
            .create_logical_plan("INSERT INTO questions SELECT * FROM questions")
            .await
            .unwrap();
        assert!(
            SQLOptions::new()
                .with_allow_dml(false)
                .verify_plan(&plan)
                .is_err()
        );
    }
}
