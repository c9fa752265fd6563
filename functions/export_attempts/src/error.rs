//! Errors of the export stage and their stable names for Step Functions.

use lake::runs::ErrorName;

/// Errors of the stage. Every variant maps to a stable name ([`ExportError::error_name`])
/// that the state machine's `Retry`/`Catch` rules match. Messages never contain the
/// database URL (it may hold a password); they name the server as `host:port/dbname`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The event, the database URL or the source schema is invalid (a relation or column
    /// is missing, credentials are refused, too many rows of a day are rejected); the
    /// message names the field, relation, column or row. Not worth retrying.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database cannot be reached, dropped the connection, or did not answer in
    /// time (a dependency we gave up waiting on). Worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database reported an error that is neither our input nor its availability
    /// (e.g. the `attempt` view fails while evaluating a row).
    #[error("database error: {0}")]
    Database(String),
    /// Reading or writing the lake failed.
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    /// Arrow failure while building batches (a bug, not an input problem).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl ExportError {
    /// Stable error name for Step Functions:
    /// `Fatal.InvalidInput`, `Retryable.Timeout` (database unreachable, connection lost,
    /// no answer in time), `Fatal.Database`, `Retryable.LakeIo` (transient lake errors),
    /// `Fatal.Lake`, `Fatal.Internal`.
    pub fn error_name(&self) -> &'static str {
        match self {
            ExportError::InvalidInput(_) => ErrorName::FatalInvalidInput,
            ExportError::Unavailable(_) => ErrorName::RetryableTimeout,
            ExportError::Database(_) => ErrorName::FatalDatabase,
            ExportError::Lake(e) if e.is_retryable() => ErrorName::RetryableLakeIo,
            ExportError::Lake(_) => ErrorName::FatalLake,
            ExportError::Arrow(_) => ErrorName::FatalInternal,
        }
        .as_str()
    }

    /// Classifies a driver error; `doing` says what the stage was doing
    /// (e.g. `"reading attempts from db.example:5432/platform"`).
    ///
    /// - a TLS failure retrying cannot fix (untrusted or mismatched certificate, no TLS on
    ///   a server that must use it): [`ExportError::InvalidInput`];
    /// - no SQLSTATE otherwise (refused, reset, closed, timed out): [`ExportError::Unavailable`];
    /// - class 08 (connection), 53 (resources), 57 (operator intervention, statement
    ///   timeout, shutdown), 40 (serialization failure, deadlock): `Unavailable`;
    /// - class 28 (credentials), 3D (no such database), 42 (missing relation or column,
    ///   no privilege), 22 (a value the view cannot convert): [`ExportError::InvalidInput`];
    /// - anything else: [`ExportError::Database`].
    pub(crate) fn from_pg(e: tokio_postgres::Error, doing: &str) -> Self {
        let Some(db) = e.as_db_error() else {
            if let Some(why) = crate::tls::fatal_tls_error(&e) {
                return ExportError::InvalidInput(format!("{doing}: {why}"));
            }
            return ExportError::Unavailable(format!("{doing}: {e}"));
        };
        let code = db.code();
        let mut msg = format!(
            "{doing}: {} {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            code.code()
        );
        if let Some(d) = db.detail() {
            msg.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            msg.push_str(&format!("; hint: {h}"));
        }
        match code.code().get(..2).unwrap_or_default() {
            "08" | "53" | "57" | "40" => ExportError::Unavailable(msg),
            "28" | "3D" | "42" | "22" => ExportError::InvalidInput(msg),
            _ => ExportError::Database(msg),
        }
    }
}

/// Result alias of the stage.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(
            ExportError::InvalidInput("x".into()).error_name(),
            "Fatal.InvalidInput"
        );
        assert_eq!(
            ExportError::Unavailable("x".into()).error_name(),
            "Retryable.Timeout"
        );
        assert_eq!(
            ExportError::Database("x".into()).error_name(),
            "Fatal.Database"
        );
        let io = lake::LakeError::Io(std::io::Error::other("disk"));
        assert_eq!(ExportError::Lake(io).error_name(), "Retryable.LakeIo");
        let bad = lake::LakeError::UnknownTable("t".into());
        assert_eq!(ExportError::Lake(bad).error_name(), "Fatal.Lake");
    }
}
