//! The PostgreSQL side: connection, session, the source schema check, and paged reads
//! through portals (server-side cursors) inside one read-only snapshot.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, IsolationLevel, Row, Transaction};

use crate::error::{ExportError, Result};
use crate::tls::TlsSettings;

const SESSION_SQL: &str = include_str!("../../../sql/export_attempts/session.sql");
const COLUMNS_SQL: &str = include_str!("../../../sql/export_attempts/columns.sql");
/// The question bank query.
pub(crate) const QUESTIONS_SQL: &str = include_str!("../../../sql/export_attempts/questions.sql");
/// The attempts query (window bound as `$1`, `$2`).
pub(crate) const ATTEMPTS_SQL: &str = include_str!("../../../sql/export_attempts/attempts.sql");

/// Connection timeout when the URL sets none (`connect_timeout=` in the URL overrides).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for any one answer of the database (a page, a statement). The stage gives
/// up with `Retryable.Timeout` after it.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// TCP keepalive idle time, so a silently dropped connection is noticed within about a
/// minute instead of the two hours of the driver's default.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);

/// The columns the export reads from `attempt` (a view on the platform).
pub const ATTEMPT_COLUMNS: &[&str] = &[
    "id",
    "student_id",
    "question_id",
    "correct",
    "completed_at",
    "time_spent_ms",
    "hints_used",
    "session_id",
];
/// The columns the export reads from `question`.
pub const QUESTION_COLUMNS: &[&str] = &["id", "topic_id", "exam_id", "meta"];
/// Types `attempt.completed_at` may have (a `timestamp` without zone is read as UTC).
const TIME_TYPES: &[&str] = &["timestamp with time zone", "timestamp without time zone"];

/// A connected source database.
pub(crate) struct Source {
    client: Client,
    /// `host:port/dbname`, for messages (never the URL: it may hold a password).
    pub(crate) target: String,
}

/// Describes the server of a configuration without credentials.
fn describe(cfg: &Config) -> String {
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(s) => s.clone(),
                #[cfg(unix)]
                Host::Unix(p) => p.display().to_string(),
            };
            let port = cfg
                .get_ports()
                .get(i)
                .or_else(|| cfg.get_ports().first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_string()
    } else {
        hosts.join(",")
    };
    format!(
        "{hosts}/{}",
        cfg.get_dbname()
            .or(cfg.get_user())
            .unwrap_or("(default database)")
    )
}

/// Waits for `fut` at most [`QUERY_TIMEOUT`]; maps driver errors with `doing`.
pub(crate) async fn within<T>(
    doing: impl Fn() -> String,
    fut: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    match tokio::time::timeout(QUERY_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ExportError::from_pg(e, &doing())),
        Err(_) => Err(ExportError::Unavailable(format!(
            "{}: no answer within {} s",
            doing(),
            QUERY_TIMEOUT.as_secs()
        ))),
    }
}

impl Source {
    /// Parses the URL (`postgres://user:pass@host:port/db?...` or `key=value` form),
    /// connects with TLS as its `sslmode`/`sslrootcert` ask ([`crate::tls`]) and sets the
    /// session up ([`SESSION_SQL`]: UTC).
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let (rest, tls) = TlsSettings::split(url)?;
        let mut cfg: Config = rest.parse().map_err(|e: tokio_postgres::Error| {
            // The cause names the key (e.g. unknown option `sslcert`), never its value.
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            ExportError::InvalidInput(format!(
                "database URL: {e}{cause} (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME)"
            ))
        })?;
        cfg.ssl_mode(tls.driver_mode());
        let connector = tls.connector()?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("irtlake-export_attempts");
        }
        cfg.keepalives_idle(KEEPALIVES_IDLE);
        let target = describe(&cfg);
        let started = std::time::Instant::now();
        let (client, connection) =
            within(|| format!("connecting to {target}"), cfg.connect(connector)).await?;
        let conn_target = target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(target = %conn_target, error = %e, "PostgreSQL connection ended with an error");
            }
        });
        within(
            || format!("setting up the session on {target}"),
            client.batch_execute(SESSION_SQL),
        )
        .await?;
        tracing::info!(
            %target,
            sslmode = ?tls.mode,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "connected to PostgreSQL"
        );
        Ok(Self { client, target })
    }

    /// Opens the read-only, repeatable-read snapshot every read of the export runs in,
    /// so questions and attempts are consistent with each other.
    pub(crate) async fn snapshot(&mut self) -> Result<Transaction<'_>> {
        let target = self.target.clone();
        within(
            || format!("starting a read-only transaction on {target}"),
            self.client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start(),
        )
        .await
    }
}

/// Checks that the source relations have the columns the export reads, before any row
/// is read or anything written. A missing relation or column is
/// [`ExportError::InvalidInput`] naming it and listing what was found.
pub(crate) async fn check_schema(tx: &Transaction<'_>, target: &str) -> Result<()> {
    for (relation, wanted) in [("attempt", ATTEMPT_COLUMNS), ("question", QUESTION_COLUMNS)] {
        let rows = within(
            || format!("reading the columns of {relation} on {target}"),
            tx.query(COLUMNS_SQL, &[&relation]),
        )
        .await?;
        let mut found: Vec<(String, String)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let name: String = r.try_get(0).map_err(|e| decode("column_name", e))?;
            let ty: String = r.try_get(1).map_err(|e| decode("column_type", e))?;
            found.push((name, ty));
        }
        if found.is_empty() {
            return Err(ExportError::InvalidInput(format!(
                "source: {target} has no table or view '{relation}' on the search path \
                 (the export reads {relation}({}); set the schema with \
                 options=-csearch_path%3DSCHEMA in the URL if it lives elsewhere)",
                wanted.join(", ")
            )));
        }
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !found.iter().any(|(n, _)| n == w))
            .collect();
        if !missing.is_empty() {
            let have: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
            return Err(ExportError::InvalidInput(format!(
                "source: {relation} on {target} has no column {} (found: {}; the export reads \
                 {relation}({}))",
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                have.join(", "),
                wanted.join(", ")
            )));
        }
        if relation == "attempt"
            && let Some((_, ty)) = found.iter().find(|(n, _)| n == "completed_at")
            && !TIME_TYPES.contains(&ty.as_str())
        {
            return Err(ExportError::InvalidInput(format!(
                "source: attempt.completed_at on {target} is {ty}; the export needs \
                 timestamp with time zone (or timestamp, read as UTC)"
            )));
        }
    }
    Ok(())
}

fn decode(column: &str, e: tokio_postgres::Error) -> ExportError {
    ExportError::Database(format!("cannot decode column {column}: {e}"))
}

/// Reads a text (or NULL) column of a source row.
pub(crate) fn text(row: &Row, i: usize, column: &str) -> Result<Option<String>> {
    row.try_get::<_, Option<String>>(i)
        .map_err(|e| decode(column, e))
}

/// Reads a timestamptz (or NULL) column of a source row.
pub(crate) fn time(row: &Row, i: usize, column: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<_, Option<DateTime<Utc>>>(i)
        .map_err(|e| decode(column, e))
}

/// A query read in pages of `page_size` rows through a portal (a server-side cursor of
/// the extended protocol): at most one page is held in memory at a time.
pub(crate) struct Pages<'a, 't> {
    tx: &'a Transaction<'t>,
    portal: tokio_postgres::Portal,
    page_size: i32,
    done: bool,
    what: String,
    /// Pages fetched so far.
    pub(crate) fetched: u64,
}

impl<'a, 't> Pages<'a, 't> {
    /// Prepares `sql`, binds `params` and opens the portal; `what` names the read in
    /// messages (e.g. `"attempts from db:5432/platform"`).
    pub(crate) async fn open(
        tx: &'a Transaction<'t>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        page_size: u32,
        what: String,
    ) -> Result<Self> {
        let stmt = within(|| format!("preparing the query of {what}"), tx.prepare(sql)).await?;
        let portal = within(
            || format!("opening a cursor on {what}"),
            tx.bind(&stmt, params),
        )
        .await?;
        Ok(Self {
            tx,
            portal,
            page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
            done: false,
            what,
            fetched: 0,
        })
    }

    /// The next page, or `None` when the query is exhausted.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<Row>>> {
        if self.done {
            return Ok(None);
        }
        let n = self.fetched + 1;
        let rows = within(
            || format!("reading page {n} of {}", self.what),
            self.tx.query_portal(&self.portal, self.page_size),
        )
        .await?;
        // Fewer rows than asked for: the portal ran to completion.
        if rows.len() < self.page_size as usize {
            self.done = true;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        self.fetched = n;
        Ok(Some(rows))
    }
}
