//! The interactive `irtlake sql` shell, started when `irtlake sql` gets no query on a
//! terminal.
//!
//! - A statement runs when a line ends with `;` outside string literals, quoted
//!   identifiers and comments; until then lines are gathered (prompt `     -> `). Each
//!   statement runs like `irtlake sql "…"` (same read-only gate, same output), on one
//!   session, so a `SET` lasts until the shell ends.
//! - Commands at the start of a statement: `.tables`/`\d`, `.schema TABLE`/`\d TABLE`,
//!   `.format [FORMAT]`, `.help`/`\?`, `.quit`/`.exit`/`\q` (and Ctrl-D).
//! - Ctrl-C clears the statement being typed (while a statement runs it ends the
//!   process: no signal handler). An error is printed and the shell goes on.
//! - History: `$IRTLAKE_HISTORY` (empty: none), else `~/.irtlake_history`, written after
//!   every line; a history file that cannot be read or written is not an error.
//!
//! The line handling ([`Shell::feed_line`]) has no terminal in it, so it is unit tested.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use clap::ValueEnum;
use lake::Lake;
use rustyline::error::ReadlineError;

use crate::output::{Format, write_batches};
use crate::sql::{Sink, SqlSession};

/// The prompt at the start of a statement.
pub const PROMPT: &str = "irtlake> ";
/// The prompt of a statement's next line.
pub const CONTINUATION_PROMPT: &str = "     -> ";

/// What the shell tells the user with `.help` or `\?`.
const HELP: &str = "\
Statements end with ';' and may span lines; each runs like `irtlake sql \"…\"` (read-only).
Commands (at the start of a statement):
  .tables, \\d                 the lake's tables, with what each holds
  .schema TABLE, \\d TABLE     the columns of TABLE: type, nullability, partition column
  .format [FORMAT]            show or set the output: table, csv, json or ndjson
  .help, \\?                   this help
  .quit, .exit, \\q, Ctrl-D    leave the shell
Ctrl-C clears the statement being typed. History: $IRTLAKE_HISTORY, else ~/.irtlake_history.";

/// What to do after a line has been fed to the [`Shell`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read the next line: the statement goes on, or there was nothing to run.
    NextLine,
    /// Run this SQL text: one or more statements, the last ending with `;`.
    Run(String),
    /// List the lake's tables.
    Tables,
    /// Print the columns of this table.
    Schema(String),
    /// Set the output format, or print it (`None`).
    Format(Option<Format>),
    /// Print the help.
    Help,
    /// Leave the shell.
    Quit,
    /// A command the shell does not know or that was misused: print this message.
    Invalid(String),
}

/// The line-by-line state of the shell: the statement being typed.
#[derive(Debug, Default)]
pub struct Shell {
    /// Lines of the statement typed so far, each ending with `\n`.
    buffer: String,
}

impl Shell {
    /// A shell at the start of a statement.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prompt for the next line: [`PROMPT`], or [`CONTINUATION_PROMPT`] inside a
    /// statement.
    pub fn prompt(&self) -> &'static str {
        if self.buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION_PROMPT
        }
    }

    /// Drops the statement being typed (Ctrl-C).
    pub fn clear(&mut self) {
        self.buffer.clear();
    }

    /// Takes one line typed by the user and says what to do. A line starting with `.` or
    /// `\` at the start of a statement is a command; other lines are gathered until one
    /// ends the statement with `;`. Lines holding only blanks, comments or `;` run nothing.
    pub fn feed_line(&mut self, line: &str) -> Action {
        if self.buffer.is_empty() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                return Action::NextLine;
            }
            if trimmed.starts_with('.') || trimmed.starts_with('\\') {
                return command(trimmed);
            }
        }
        self.buffer.push_str(line);
        self.buffer.push('\n');
        let scan = scan(&self.buffer);
        if scan.state != Lexical::Code {
            return Action::NextLine;
        }
        if !scan.has_sql {
            // only blanks, comments and `;` so far: nothing to run, start anew
            self.buffer.clear();
            return Action::NextLine;
        }
        if scan.last == Some(';') {
            Action::Run(std::mem::take(&mut self.buffer))
        } else {
            Action::NextLine
        }
    }
}

/// Where a scan of SQL text stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexical {
    /// Outside literals and comments.
    Code,
    /// Inside `'…'` (a doubled `''` leaves and re-enters it).
    SingleQuoted,
    /// Inside a quoted identifier `"…"`.
    DoubleQuoted,
    /// After `--`, to the end of the line.
    LineComment,
    /// Inside `/* … */`.
    BlockComment,
}

/// The result of [`scan`].
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// Where the text ends.
    state: Lexical,
    /// The last character outside comments and blanks (a quote for a literal).
    last: Option<char>,
    /// Whether anything but blanks, comments and `;` was seen.
    has_sql: bool,
}

/// Scans `text` for the end of a statement: string literals, quoted identifiers and
/// comments hide the `;` inside them.
fn scan(text: &str) -> Scan {
    let mut state = Lexical::Code;
    let mut last = None;
    let mut has_sql = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        state = match (state, c) {
            (Lexical::Code, '-') if chars.peek() == Some(&'-') => {
                chars.next();
                Lexical::LineComment
            }
            (Lexical::Code, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                Lexical::BlockComment
            }
            (Lexical::Code, c) if c.is_whitespace() => Lexical::Code,
            (Lexical::Code, c) => {
                last = Some(c);
                has_sql |= c != ';';
                match c {
                    '\'' => Lexical::SingleQuoted,
                    '"' => Lexical::DoubleQuoted,
                    _ => Lexical::Code,
                }
            }
            (Lexical::SingleQuoted, '\'') | (Lexical::DoubleQuoted, '"') => {
                last = Some(c);
                Lexical::Code
            }
            (Lexical::LineComment, '\n') => Lexical::Code,
            (Lexical::BlockComment, '*') if chars.peek() == Some(&'/') => {
                chars.next();
                Lexical::Code
            }
            (state, _) => state,
        };
    }
    Scan {
        state,
        last,
        has_sql,
    }
}

/// The action of a command line (`.tables`, `\d TABLE`, …); a trailing `;` is allowed.
fn command(line: &str) -> Action {
    let line = line.trim().trim_end_matches(';').trim_end();
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default();
    let arg = words.next().map(|w| w.trim_matches('"'));
    if words.next().is_some() {
        return Action::Invalid(format!(
            "{line}: too many arguments (.help lists the commands)"
        ));
    }
    match (name, arg) {
        (".quit" | ".exit" | "\\q", None) => Action::Quit,
        (".tables" | "\\d" | "\\dt", None) => Action::Tables,
        (".schema" | "\\d", Some(table)) => Action::Schema(table.to_string()),
        (".schema", None) => Action::Invalid("usage: .schema TABLE (.tables lists them)".into()),
        (".help" | "\\?" | "\\h", None) => Action::Help,
        (".format", None) => Action::Format(None),
        (".format", Some(f)) => match Format::from_str(f, true) {
            Ok(Format::Parquet) | Err(_) => Action::Invalid(format!(
                ".format {f}: the shell prints table, csv, json or ndjson \
                 (parquet: irtlake sql --out FILE.parquet)"
            )),
            Ok(format) => Action::Format(Some(format)),
        },
        _ => Action::Invalid(format!(
            "{line}: unknown command (.help lists the commands)"
        )),
    }
}

/// The history file: `$IRTLAKE_HISTORY` (set but empty: no file), else
/// `$HOME/.irtlake_history`, else none.
fn history_path(
    irtlake_history: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    match irtlake_history {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => home
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".irtlake_history")),
    }
}

/// Runs the interactive shell on `lake` until `.quit` or Ctrl-D, printing results in
/// `format` (the starting one; `.format` changes it).
pub async fn run(lake: &Lake, format: Format) -> Result<()> {
    if format == Format::Parquet {
        anyhow::bail!(
            "the shell prints results: --format table, csv, json or ndjson \
             (parquet needs a query and --out FILE.parquet)"
        );
    }
    let session = SqlSession::new(lake)?;
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)
        .context("history size")?
        .build();
    let mut editor =
        rustyline::DefaultEditor::with_config(config).context("starting the line editor")?;
    let history = history_path(
        std::env::var_os("IRTLAKE_HISTORY"),
        std::env::var_os("HOME"),
    );
    if let Some(path) = &history {
        // a first start has no history yet; an unreadable one is not worth stopping for
        let _ = editor.load_history(path);
    }
    eprintln!(
        "irtlake SQL on {} (read-only). Statements end with ';'. .help for help, .quit or Ctrl-D to leave.",
        lake.uri().to_uri_string()
    );
    let mut shell = Shell::new();
    let mut format = format;
    let mut history_warned = false;
    loop {
        let prompt = shell.prompt();
        // readline blocks on the terminal: keep the runtime's other workers free
        let line = match tokio::task::block_in_place(|| editor.readline(prompt)) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                shell.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading a line"),
        };
        if !line.trim().is_empty()
            && editor.add_history_entry(line.as_str()).unwrap_or(false)
            && let Some(path) = &history
            && let Err(e) = editor.append_history(path)
            && !history_warned
        {
            eprintln!("note: history not saved to {}: {e}", path.display());
            history_warned = true;
        }
        let action = shell.feed_line(&line);
        if action == Action::Quit {
            break;
        }
        if let Err(e) = perform(action, &session, &mut format, &mut std::io::stdout()).await {
            eprint!("{}", crate::error_report(&e));
        }
    }
    Ok(())
}

/// Does what `action` says, writing to `out`. [`Action::Quit`] does nothing here.
async fn perform(
    action: Action,
    session: &SqlSession,
    format: &mut Format,
    out: &mut dyn Write,
) -> Result<()> {
    match action {
        Action::NextLine | Action::Quit => {}
        Action::Run(sql) => session.run(&sql, *format, Sink::Writer(out)).await?,
        Action::Tables => {
            let batch = tables_batch()?;
            write_batches(std::slice::from_ref(&batch), &batch.schema(), *format, out)?;
        }
        Action::Schema(table) => {
            let batch = schema_batch(session, &table).await?;
            write_batches(std::slice::from_ref(&batch), &batch.schema(), *format, out)?;
        }
        Action::Format(Some(f)) => *format = f,
        Action::Format(None) => writeln!(out, "{}", format_name(*format))?,
        Action::Help => writeln!(out, "{HELP}")?,
        Action::Invalid(message) => anyhow::bail!(message),
    }
    out.flush()?;
    Ok(())
}

/// The name of `format` as `--format` spells it.
fn format_name(format: Format) -> String {
    format
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// The lake's tables (the catalog): name, partition columns and what each holds.
fn tables_batch() -> Result<RecordBatch> {
    let tables = lake::TABLES.iter();
    let names: Vec<&str> = tables.clone().map(|t| t.name).collect();
    let partitions: Vec<String> = tables.clone().map(|t| t.partitions.join(", ")).collect();
    let descriptions: Vec<&str> = tables.map(|t| t.description).collect();
    Ok(RecordBatch::try_from_iter(vec![
        ("table", Arc::new(StringArray::from(names)) as ArrayRef),
        ("partitioned_by", Arc::new(StringArray::from(partitions))),
        ("description", Arc::new(StringArray::from(descriptions))),
    ])?)
}

/// The columns of `table` as SQL sees them: name, type, nullability and whether it is a
/// partition column (a folder level of the lake).
async fn schema_batch(session: &SqlSession, table: &str) -> Result<RecordBatch> {
    let schema = session
        .table_schema(table)
        .await?
        .with_context(|| format!("no table {table} (.tables lists them)"))?;
    let partitions = lake::catalog::table(table)
        .map(|t| t.partitions)
        .unwrap_or(&[]);
    let fields = schema.fields();
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let types: Vec<String> = fields.iter().map(|f| f.data_type().to_string()).collect();
    let nullable: Vec<bool> = fields.iter().map(|f| f.is_nullable()).collect();
    let partition: Vec<bool> = fields
        .iter()
        .map(|f| partitions.contains(&f.name().as_str()))
        .collect();
    Ok(RecordBatch::try_from_iter(vec![
        ("column", Arc::new(StringArray::from(names)) as ArrayRef),
        ("type", Arc::new(StringArray::from(types))),
        ("nullable", Arc::new(BooleanArray::from(nullable))),
        ("partition", Arc::new(BooleanArray::from(partition))),
    ])?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn feed(shell: &mut Shell, lines: &[&str]) -> Vec<Action> {
        lines.iter().map(|l| shell.feed_line(l)).collect()
    }

    #[test]
    fn a_statement_runs_at_the_line_that_ends_it_with_a_semicolon() {
        let mut shell = Shell::new();
        assert_eq!(shell.prompt(), PROMPT);
        assert_eq!(shell.feed_line("SELECT 1"), Action::NextLine);
        assert_eq!(shell.prompt(), CONTINUATION_PROMPT);
        assert_eq!(shell.feed_line("  AS x"), Action::NextLine);
        assert_eq!(
            shell.feed_line("  ;  "),
            Action::Run("SELECT 1\n  AS x\n  ;  \n".into())
        );
        assert_eq!(shell.prompt(), PROMPT);
        // one line, several statements: run together
        assert_eq!(
            shell.feed_line("SELECT 1; SELECT 2;"),
            Action::Run("SELECT 1; SELECT 2;\n".into())
        );
        // a `;` inside a line does not end it
        assert_eq!(shell.feed_line("SELECT 1; SELECT"), Action::NextLine);
        assert_eq!(
            shell.feed_line("2;"),
            Action::Run("SELECT 1; SELECT\n2;\n".into())
        );
        // a comment after the `;` still ends it
        assert_eq!(
            shell.feed_line("SELECT 3; -- three"),
            Action::Run("SELECT 3; -- three\n".into())
        );
    }

    #[test]
    fn a_semicolon_in_a_literal_identifier_or_comment_ends_nothing() {
        let mut shell = Shell::new();
        assert_eq!(
            feed(&mut shell, &["SELECT 'a;", "b;'", "AS s;"]),
            [
                Action::NextLine,
                Action::NextLine,
                Action::Run("SELECT 'a;\nb;'\nAS s;\n".into())
            ]
        );
        // a doubled quote stays in the literal
        assert_eq!(shell.feed_line("SELECT 'it''s;"), Action::NextLine);
        assert_eq!(
            shell.feed_line("';"),
            Action::Run("SELECT 'it''s;\n';\n".into())
        );
        assert_eq!(shell.feed_line("SELECT 1 AS \"a;"), Action::NextLine);
        assert!(matches!(shell.feed_line("b\";"), Action::Run(_)));
        assert_eq!(shell.feed_line("SELECT 1 -- no end;"), Action::NextLine);
        assert!(matches!(shell.feed_line(";"), Action::Run(_)));
        assert_eq!(shell.feed_line("SELECT /* ;"), Action::NextLine);
        assert_eq!(shell.feed_line("; */ 1"), Action::NextLine);
        assert_eq!(
            shell.feed_line(";"),
            Action::Run("SELECT /* ;\n; */ 1\n;\n".into())
        );
    }

    #[test]
    fn empty_lines_comments_and_lone_semicolons_run_nothing() {
        let mut shell = Shell::new();
        for line in ["", "   ", ";", " ; ;", "-- a comment", "/* a */ ;"] {
            assert_eq!(shell.feed_line(line), Action::NextLine, "{line:?}");
            assert_eq!(shell.prompt(), PROMPT, "{line:?}");
        }
        // an empty line inside a statement keeps it going
        assert_eq!(
            feed(&mut shell, &["SELECT", "", "1;"]),
            [
                Action::NextLine,
                Action::NextLine,
                Action::Run("SELECT\n\n1;\n".into())
            ]
        );
        // Ctrl-C drops the statement
        shell.feed_line("SELECT");
        shell.clear();
        assert_eq!(shell.prompt(), PROMPT);
        assert_eq!(shell.feed_line("2;"), Action::Run("2;\n".into()));
    }

    #[test]
    fn commands_at_the_start_of_a_statement() {
        let mut shell = Shell::new();
        for (line, want) in [
            (".quit", Action::Quit),
            (".exit", Action::Quit),
            ("  \\q  ", Action::Quit),
            (".tables", Action::Tables),
            ("\\d", Action::Tables),
            ("\\dt;", Action::Tables),
            (".schema attempts", Action::Schema("attempts".into())),
            ("\\d weekly_kpi;", Action::Schema("weekly_kpi".into())),
            (".schema \"fit_meta\"", Action::Schema("fit_meta".into())),
            (".help", Action::Help),
            ("\\?", Action::Help),
            (".format", Action::Format(None)),
            (".format CSV", Action::Format(Some(Format::Csv))),
            (".format ndjson", Action::Format(Some(Format::Ndjson))),
        ] {
            assert_eq!(shell.feed_line(line), want, "{line:?}");
            assert_eq!(shell.prompt(), PROMPT, "{line:?}");
        }
        for line in [
            ".schema",
            ".format parquet",
            ".format xml",
            ".nope",
            "\\x",
            ".schema a b",
        ] {
            assert!(
                matches!(shell.feed_line(line), Action::Invalid(_)),
                "{line:?}"
            );
        }
        // inside a statement a line starting with `.` is SQL
        assert_eq!(shell.feed_line("SELECT 1"), Action::NextLine);
        assert_eq!(
            shell.feed_line(".5 AS x;"),
            Action::Run("SELECT 1\n.5 AS x;\n".into())
        );
    }

    #[test]
    fn the_history_file_is_named_by_irtlake_history_or_home() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            history_path(None, os("/home/u")),
            Some(PathBuf::from("/home/u/.irtlake_history"))
        );
        assert_eq!(
            history_path(os("/tmp/h"), os("/home/u")),
            Some(PathBuf::from("/tmp/h"))
        );
        assert_eq!(history_path(os(""), os("/home/u")), None);
        assert_eq!(history_path(None, None), None);
        assert_eq!(history_path(None, os("")), None);
    }

    /// Every action but Run and Quit, on an empty lake: tables from the catalog, a
    /// table's columns with types, nullability and partition columns, format switching,
    /// errors for what does not exist.
    #[tokio::test]
    async fn commands_print_tables_schemas_and_switch_formats() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&format!("file://{}", dir.path().join("lake").display())).unwrap();
        let session = SqlSession::new(&lake).unwrap();
        let mut format = Format::Csv;
        let mut out = Vec::new();
        perform(Action::Tables, &session, &mut format, &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(std::mem::take(&mut out)).unwrap();
        assert!(
            text.starts_with("table,partitioned_by,description\n"),
            "{text}"
        );
        assert!(text.contains("\nattempts,dt,\"raw attempts"), "{text}");
        assert_eq!(text.lines().count(), lake::TABLES.len() + 1);

        perform(
            Action::Schema("attempts".into()),
            &session,
            &mut format,
            &mut out,
        )
        .await
        .unwrap();
        let text = String::from_utf8(std::mem::take(&mut out)).unwrap();
        assert!(
            text.starts_with("column,type,nullable,partition\n"),
            "{text}"
        );
        assert!(text.contains("\nattempt_id,Utf8,false,false\n"), "{text}");
        assert!(text.contains("\ntopic_id,Utf8,true,false\n"), "{text}");
        assert!(text.contains("\ndt,Date32,false,true\n"), "{text}");

        let err = perform(
            Action::Schema("nope".into()),
            &session,
            &mut format,
            &mut out,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no table nope"), "{err}");

        perform(Action::Format(None), &session, &mut format, &mut out)
            .await
            .unwrap();
        perform(
            Action::Format(Some(Format::Json)),
            &session,
            &mut format,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(format, Format::Json);
        assert_eq!(
            String::from_utf8(std::mem::take(&mut out)).unwrap(),
            "csv\n"
        );

        perform(
            Action::Run("SELECT 1 AS x;".into()),
            &session,
            &mut format,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8(std::mem::take(&mut out)).unwrap(),
            "[{\"x\":1}]\n"
        );
        let err = perform(
            Action::Invalid("bad".into()),
            &session,
            &mut format,
            &mut out,
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "bad");
    }

    /// A `SET` lasts for the shell's session.
    #[tokio::test]
    async fn a_setting_lasts_for_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&format!("file://{}", dir.path().join("lake").display())).unwrap();
        let session = SqlSession::new(&lake).unwrap();
        let mut format = Format::Csv;
        let mut out = Vec::new();
        for sql in [
            "SET datafusion.execution.time_zone = '+09:00';",
            "SHOW datafusion.execution.time_zone;",
        ] {
            perform(Action::Run(sql.into()), &session, &mut format, &mut out)
                .await
                .unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("+09:00"), "{text}");
    }
}
