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
    /// A read–modify–write of an S3 object met a concurrent update at every attempt
    /// (many writers of one partition at once). Retryable: nothing of this update was
    /// written, and a later attempt meets fewer writers.
    #[error("partition object {key} kept changing during {attempts} update attempts")]
    Contended {
        /// The object's key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Input data failed validation; nothing was written.
    #[error("{0}")]
    InvalidInput(String),
    /// Object store failure (file system or S3). A permanent S3 failure (no bucket,
    /// access denied, wrong keys or region) starts with what to fix ([`crate::s3`]).
    #[error("lake storage: {}", crate::s3::describe(.0))]
    Store(#[from] object_store::Error),
    /// An S3 lake with no way to get credentials.
    #[error("no AWS credentials found for {uri} ({reason})")]
    NoCredentials {
        /// The lake URI.
        uri: String,
        /// Where the chain looked and what to set.
        reason: String,
    },
    /// Object path failure.
    #[error("lake path: {0}")]
    Path(#[from] object_store::path::Error),
    /// Query engine failure (storage failures inside it are described as for `Store`).
    #[error("query: {}", describe_datafusion(.0))]
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
    /// A write of several partitions as one unit stopped: `committed` partitions hold
    /// the new data, `not_committed` ones are as they were. Every partition is staged
    /// before the first is committed, so a failure while staging commits nothing.
    /// Re-running the same write converges (writers re-read what is committed).
    #[error("{}", commit_message(table, committed, not_committed, source))]
    Commit {
        /// Table written to.
        table: String,
        /// Partitions (`column=value`) committed before the failure.
        committed: Vec<String>,
        /// Partitions left as they were.
        not_committed: Vec<String>,
        /// What failed.
        source: Box<LakeError>,
    },
}

fn commit_message(
    table: &str,
    committed: &[String],
    not_committed: &[String],
    source: &LakeError,
) -> String {
    if committed.is_empty() {
        format!(
            "{table}: nothing was written ({} partition(s) staged, none committed: {}): {source}",
            not_committed.len(),
            not_committed.join(", ")
        )
    } else {
        format!(
            "{table}: stopped part-way: committed {} ({}); not committed {} ({}): {source}; \
             re-run the same command to finish",
            committed.len(),
            committed.join(", "),
            not_committed.len(),
            not_committed.join(", ")
        )
    }
}

impl LakeError {
    /// True for failures worth retrying, false for bad input or contracts: transient
    /// storage and network errors (throttling, 5xx, timeouts, dropped connections — not
    /// a missing bucket, denied access, wrong keys or region, see [`crate::s3`]), and
    /// Parquet reads that found a file shorter or different than
    /// listed. The latter happens when a writer replaces a partition object between a
    /// reader's listing and its ranged reads (e.g. churn updating `weekly_kpi` while
    /// segments reads it): the reader uses the old size, so the footer it finds is not a
    /// footer. A re-run reads the new object. A file that is really corrupt fails again
    /// after the retries, with the same message.
    pub fn is_retryable(&self) -> bool {
        match self {
            LakeError::Store(e) => crate::s3::classify(e).is_transient(),
            LakeError::Io(_) => true,
            LakeError::DataFusion(e) => datafusion_retryable(e),
            LakeError::Parquet(e) => parquet_retryable(e),
            LakeError::Commit { source, .. } => source.is_retryable(),
            LakeError::Contended { .. } => true,
            _ => false,
        }
    }
}

/// The object store failure at the root of a query failure, if that is what it is.
fn store_error_of(e: &datafusion::error::DataFusionError) -> Option<&object_store::Error> {
    use datafusion::error::DataFusionError as E;
    match e.find_root() {
        E::ObjectStore(os) => Some(&**os),
        E::External(x) => {
            x.downcast_ref::<object_store::Error>().or_else(|| match x
                .downcast_ref::<parquet::errors::ParquetError>()
            {
                Some(parquet::errors::ParquetError::External(p)) => p.downcast_ref(),
                _ => None,
            })
        }
        E::ParquetError(p) => match p.as_ref() {
            parquet::errors::ParquetError::External(x) => x.downcast_ref(),
            _ => None,
        },
        _ => None,
    }
}

fn describe_datafusion(e: &datafusion::error::DataFusionError) -> String {
    match store_error_of(e).map(crate::s3::classify) {
        Some(crate::s3::StoreFailure::Permanent(fix)) => format!("{fix} ({e})"),
        _ => e.to_string(),
    }
}

/// Whether a query failure is transient (an I/O or S3 failure at its root, as
/// [`LakeError::is_retryable`] judges them): for crates that hold a `DataFusionError`
/// of their own.
pub fn is_retryable_query(e: &datafusion::error::DataFusionError) -> bool {
    datafusion_retryable(e)
}

fn datafusion_retryable(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as E;
    if let Some(os) = store_error_of(e) {
        return crate::s3::classify(os).is_transient();
    }
    match e.find_root() {
        E::IoError(_) => true,
        E::ParquetError(p) => parquet_retryable(p),
        E::External(x) => {
            x.downcast_ref::<std::io::Error>().is_some()
                || x.downcast_ref::<parquet::errors::ParquetError>()
                    .is_some_and(parquet_retryable)
        }
        _ => false,
    }
}

fn parquet_retryable(e: &parquet::errors::ParquetError) -> bool {
    use parquet::errors::ParquetError as P;
    match e {
        P::EOF(_) | P::NeedMoreData(_) | P::NeedMoreDataRange(_) => true,
        P::External(x) => {
            x.downcast_ref::<object_store::Error>()
                .is_some_and(|os| crate::s3::classify(os).is_transient())
                || x.downcast_ref::<std::io::Error>().is_some()
        }
        P::General(msg) => msg.contains("Corrupt footer") || msg.contains("Invalid Parquet file"),
        _ => false,
    }
}

/// Result alias of the lake crate.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_objects_and_storage_failures_are_retryable_bad_contracts_are_not() {
        let footer =
            parquet::errors::ParquetError::General("Invalid Parquet file. Corrupt footer".into());
        let df = datafusion::error::DataFusionError::ParquetError(Box::new(footer));
        assert!(LakeError::DataFusion(df.context("reading weekly_kpi")).is_retryable());
        let eof = parquet::errors::ParquetError::EOF("file too short".into());
        assert!(LakeError::Parquet(eof).is_retryable());
        let plan = datafusion::error::DataFusionError::Plan("no column x".into());
        assert!(!LakeError::DataFusion(plan).is_retryable());
        assert!(!LakeError::InvalidInput("bad".into()).is_retryable());
    }

    #[test]
    fn a_missing_bucket_is_permanent_also_inside_a_query() {
        #[derive(Debug)]
        struct Text(&'static str);
        impl std::fmt::Display for Text {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Text {}
        let missing = || object_store::Error::Generic {
            store: "S3",
            source: Box::new(Text(
                "Error performing list request: Server returned non-2xx status code: \
                 404 Not Found: <Error><Code>NoSuchBucket</Code><BucketName>nb</BucketName></Error>",
            )),
        };
        let store = LakeError::Store(missing());
        assert!(!store.is_retryable());
        assert!(
            store.to_string().contains("bucket 'nb' does not exist"),
            "{store}"
        );
        let df = datafusion::error::DataFusionError::ObjectStore(Box::new(missing()));
        let q = LakeError::DataFusion(df.context("listing attempts"));
        assert!(!q.is_retryable());
        assert!(q.to_string().contains("bucket 'nb' does not exist"), "{q}");
        let slow = datafusion::error::DataFusionError::ObjectStore(Box::new(
            object_store::Error::Generic {
                store: "S3",
                source: Box::new(Text(
                    "Server returned non-2xx status code: 503 Service Unavailable: <Code>SlowDown</Code>",
                )),
            },
        ));
        assert!(LakeError::DataFusion(slow).is_retryable());
    }
}
