//! The lake's error type.

/// Errors of the lake: storage, schema contracts, queries and ingest validation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LakeError {
    /// The lake URI cannot be used; the message says what is accepted.
    #[error("invalid lake URI '{uri}': {reason}")]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No table of that name in the catalog.
    #[error("unknown table '{0}' (see `lake::catalog::TABLES`)")]
    UnknownTable(String),
    /// Batches written to a table do not match its catalog schema.
    #[error("schema mismatch for table '{table}': {reason}")]
    SchemaMismatch {
        /// Table written to.
        table: String,
        /// The first difference found.
        reason: String,
    },
    /// Partition values do not match the table's partition columns.
    #[error("bad partition for table '{table}': {reason}")]
    BadPartition {
        /// Table written to.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// Input data failed validation; nothing was written.
    #[error("{0}")]
    InvalidInput(String),
    /// Object store failure (file system or S3).
    #[error("lake storage: {0}")]
    Store(#[from] object_store::Error),
    /// Object path failure.
    #[error("lake path: {0}")]
    Path(#[from] object_store::path::Error),
    /// Query engine failure.
    #[error("query: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Arrow failure.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet encoding or decoding failure.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Local I/O failure.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl LakeError {
    /// True for failures worth retrying (storage and network), false for bad input or contracts.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LakeError::Store(_) | LakeError::Io(_))
    }
}

/// Result alias of the lake crate.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;
