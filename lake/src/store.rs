//! The [`Lake`]: one object store, table paths, atomic partition writes and artifacts.

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use url::Url;

use crate::catalog::{self, TableDef};
use crate::error::{LakeError, Result};
use crate::partition;
use crate::uri::LakeUri;

/// Serialises read–modify–write updates of a local lake within the process.
static LOCAL_UPDATE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Name of the one Parquet object inside each partition. Deterministic, so a re-run
/// replaces the object instead of adding a second one.
pub const PARTITION_OBJECT: &str = "part-0.parquet";

/// A lake: where it is, and the one object store that reaches it.
#[derive(Debug, Clone)]
pub struct Lake {
    uri: LakeUri,
    store: Arc<dyn ObjectStore>,
    /// Object path of the lake root inside the store.
    root: Path,
    /// URL under which the store is registered with DataFusion (`file:///` or `s3://bucket/`).
    store_url: Url,
    /// The same S3 store as `store`, kept concrete for presigning artifact URLs
    /// (`None` for a local lake).
    signer: Option<Arc<dyn Signer>>,
}

/// Longest lifetime of a presigned URL: 7 days, the limit of AWS Signature Version 4.
pub const MAX_URL_EXPIRY: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// What a partition write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    /// Object key of the written file, relative to the lake root.
    pub key: String,
    /// Rows written.
    pub rows: usize,
    /// Size of the object in bytes.
    pub bytes: usize,
}

/// An object listed in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectInfo {
    /// Key relative to the lake root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

impl Lake {
    /// Opens the lake at `uri` (see [`LakeUri::parse`]). A local lake's folder is created
    /// if absent. For S3 the standard AWS variables are honoured (`AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`
    /// or the instance/task credentials chain) and `AWS_ALLOW_HTTP=true` for a test server.
    pub fn open(uri: &str) -> Result<Self> {
        Self::from_uri(LakeUri::parse(uri)?)
    }

    /// Opens the lake named by `LAKE_URI`, else `file://./lake`.
    pub fn open_from_env() -> Result<Self> {
        let uri = std::env::var(crate::LAKE_URI_ENV)
            .unwrap_or_else(|_| crate::DEFAULT_LAKE_URI.to_string());
        Self::open(&uri)
    }

    /// Opens the lake at `uri` with extra S3 settings on top of the environment, as
    /// `object_store` configuration keys (`aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_allow_http`, …). Ignored for a
    /// local lake. Used where the process environment is not the place for them (tests).
    pub fn open_with(uri: &str, s3_config: &[(&str, &str)]) -> Result<Self> {
        Self::from_uri_with(LakeUri::parse(uri)?, s3_config)
    }

    /// Opens a parsed lake URI.
    pub fn from_uri(uri: LakeUri) -> Result<Self> {
        Self::from_uri_with(uri, &[])
    }

    fn from_uri_with(uri: LakeUri, s3_config: &[(&str, &str)]) -> Result<Self> {
        match &uri {
            LakeUri::Local(dir) => {
                std::fs::create_dir_all(dir)?;
                let dir = dir.canonicalize()?;
                let root = Path::from_absolute_path(&dir)?;
                let store_url = Url::parse("file:///").map_err(|e| LakeError::InvalidUri {
                    uri: uri.to_uri_string(),
                    reason: e.to_string(),
                })?;
                Ok(Self {
                    uri: LakeUri::Local(dir),
                    store: Arc::new(LocalFileSystem::new()),
                    root,
                    store_url,
                    signer: None,
                })
            }
            LakeUri::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                for (key, value) in s3_config {
                    let key = key.parse().map_err(|_| LakeError::InvalidUri {
                        uri: uri.to_uri_string(),
                        reason: format!("unknown S3 setting '{key}'"),
                    })?;
                    builder = builder.with_config(key, *value);
                }
                crate::s3::check_credentials(&builder, &uri.to_uri_string())?;
                let store = Arc::new(builder.build()?);
                let store_url =
                    Url::parse(&format!("s3://{bucket}/")).map_err(|e| LakeError::InvalidUri {
                        uri: uri.to_uri_string(),
                        reason: e.to_string(),
                    })?;
                let root = Path::parse(prefix)?;
                Ok(Self {
                    uri: uri.clone(),
                    store: store.clone(),
                    root,
                    store_url,
                    signer: Some(store),
                })
            }
        }
    }

    /// Where the lake is.
    pub fn uri(&self) -> &LakeUri {
        &self.uri
    }

    /// The lake's one object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL the store is registered under in DataFusion.
    pub fn store_url(&self) -> &Url {
        &self.store_url
    }

    /// Object path of a key relative to the lake root.
    pub fn path(&self, key: &str) -> Result<Path> {
        let rel = Path::parse(key)?;
        Ok(self.root.parts().chain(rel.parts()).collect())
    }

    /// Key relative to the lake root of an object path inside the lake.
    pub fn key_of(&self, path: &Path) -> String {
        path.prefix_match(&self.root)
            .map(|parts| {
                parts
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_else(|| path.to_string())
    }

    /// URL of a table's folder (for DataFusion listing tables), ending in `/`.
    pub fn table_url(&self, table: &str) -> String {
        let root = self.root.as_ref();
        let sep = if root.is_empty() { "" } else { "/" };
        format!("{}{root}{sep}{table}/", self.store_url)
    }

    /// Key (relative to the lake root) of the one object of a partition.
    ///
    /// `values` are `(column, value)` pairs naming exactly the table's partition columns
    /// in order; values are escaped (see [`partition::escape_value`]).
    pub fn partition_key(&self, table: &TableDef, values: &[(&str, &str)]) -> Result<String> {
        let bad = |reason: String| LakeError::BadPartition {
            table: table.name.to_string(),
            reason,
        };
        if values.len() != table.partitions.len()
            || values
                .iter()
                .zip(table.partitions)
                .any(|((c, _), p)| c != p)
        {
            let given: Vec<_> = values.iter().map(|(c, _)| *c).collect();
            return Err(bad(format!(
                "expected partition columns {:?}, got {given:?}",
                table.partitions
            )));
        }
        let mut key = table.name.to_string();
        for (col, value) in values {
            if value.is_empty() {
                return Err(bad(format!("partition value for '{col}' is empty")));
            }
            key.push('/');
            key.push_str(&partition::segment(col, value));
        }
        key.push('/');
        key.push_str(PARTITION_OBJECT);
        Ok(key)
    }

    /// Writes `batches` as the one Parquet object of a partition, replacing what a
    /// previous run wrote there.
    ///
    /// The batches must match the table's file schema (same column names and types in
    /// order; no nulls in non-nullable columns). The object is built in memory and
    /// stored with one atomic put (local: temporary file + rename; S3: single PUT), so a
    /// reader sees the old partition or the new one, never half of one.
    pub async fn write_partition(
        &self,
        table: &str,
        values: &[(&str, &str)],
        batches: &[RecordBatch],
    ) -> Result<WriteSummary> {
        let def = catalog::table(table)?;
        let key = self.partition_key(def, values)?;
        let checked = conform(def, batches)?;
        let rows = checked.iter().map(|b| b.num_rows()).sum();
        let bytes = encode_parquet(&def.file_schema, &checked)?;
        let size = bytes.len();
        self.store
            .put(&self.path(&key)?, PutPayload::from(bytes))
            .await?;
        tracing::debug!(table, key, rows, bytes = size, "wrote partition");
        Ok(WriteSummary {
            key,
            rows,
            bytes: size,
        })
    }

    /// The batches of one partition, or none if it was never written.
    pub async fn read_partition(
        &self,
        table: &str,
        values: &[(&str, &str)],
    ) -> Result<Vec<RecordBatch>> {
        let def = catalog::table(table)?;
        let key = self.partition_key(def, values)?;
        Ok(self.read_versioned(&key).await?.0)
    }

    async fn read_versioned(&self, key: &str) -> Result<(Vec<RecordBatch>, Option<UpdateVersion>)> {
        let got = match self.store.get(&self.path(key)?).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok((Vec::new(), None)),
            Err(e) => return Err(e.into()),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((batches, Some(version)))
    }

    /// Read–modify–write of one partition that never loses a concurrent update: `f` gets
    /// the partition's current batches and returns the new ones. On S3 the write is
    /// conditional on the object being unchanged since the read (`If-Match` / create-only);
    /// on a conflict the whole cycle runs again (up to 10 times). A local lake serialises
    /// updates within the process. Used where several stages own different columns of one
    /// table (`weekly_kpi`: the KPI columns, `s`, `p`/`sigma`).
    pub async fn update_partition<F>(
        &self,
        table: &str,
        values: &[(&str, &str)],
        mut f: F,
    ) -> Result<WriteSummary>
    where
        F: FnMut(Vec<RecordBatch>) -> Result<Vec<RecordBatch>>,
    {
        let summary = self
            .update_partition_if(table, values, |current| f(current).map(Some))
            .await?;
        summary.ok_or_else(|| LakeError::InvalidInput("update wrote nothing".into()))
    }

    /// Like [`Lake::update_partition`], but `f` may return `None` to leave the partition
    /// as it is (then nothing is written and `None` is returned).
    pub async fn update_partition_if<F>(
        &self,
        table: &str,
        values: &[(&str, &str)],
        mut f: F,
    ) -> Result<Option<WriteSummary>>
    where
        F: FnMut(Vec<RecordBatch>) -> Result<Option<Vec<RecordBatch>>>,
    {
        let def = catalog::table(table)?;
        let key = self.partition_key(def, values)?;
        let path = self.path(&key)?;
        let local = matches!(self.uri, LakeUri::Local(_));
        // A local store has no conditional put: serialise the whole cycle instead.
        let _guard = if local {
            Some(LOCAL_UPDATE_LOCK.lock().await)
        } else {
            None
        };
        for attempt in 0..10u32 {
            let (current, version) = self.read_versioned(&key).await?;
            let Some(new) = f(current)? else {
                return Ok(None);
            };
            let new = conform(def, &new)?;
            let rows = new.iter().map(|b| b.num_rows()).sum();
            let bytes = encode_parquet(&def.file_schema, &new)?;
            let size = bytes.len();
            let mode = match version {
                _ if local => PutMode::Overwrite,
                Some(v) => PutMode::Update(v),
                None => PutMode::Create,
            };
            match self
                .store
                .put_opts(&path, PutPayload::from(bytes), mode.into())
                .await
            {
                Ok(_) => {
                    return Ok(Some(WriteSummary {
                        key,
                        rows,
                        bytes: size,
                    }));
                }
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {
                    tracing::debug!(key, attempt, "concurrent update, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5)))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(LakeError::InvalidInput(format!(
            "partition {key} kept changing during 10 update attempts"
        )))
    }

    /// Sets the Float64 `columns` of the rows of an existing partition, matching rows by
    /// the string column `key_column`: a row whose key is in `values` gets those values
    /// (in `columns` order), every other row gets nulls; all other columns stay as they
    /// are. Writes nothing when the partition does not exist. Returns the rows whose first
    /// column is now non-null. Used by stages that own a few columns of a shared table
    /// (`weekly_kpi.s` for churn; `p`, `sigma` for growth).
    pub async fn set_float_columns(
        &self,
        table: &str,
        partition: &[(&str, &str)],
        key_column: &str,
        columns: &[&str],
        values: &std::collections::HashMap<String, Vec<Option<f64>>>,
    ) -> Result<usize> {
        let schema = &catalog::table(table)?.file_schema;
        let key_ix = schema.index_of(key_column)?;
        let col_ix = columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut set = 0;
        self.update_partition_if(table, partition, |existing| {
            if existing.iter().all(|b| b.num_rows() == 0) {
                return Ok(None);
            }
            set = 0;
            let batches = existing
                .into_iter()
                .map(|b| {
                    let keys = b.column(key_ix).as_string::<i32>();
                    let got: Vec<Option<&Vec<Option<f64>>>> = (0..b.num_rows())
                        .map(|r| values.get(keys.value(r)))
                        .collect();
                    set += got
                        .iter()
                        .filter(|v| v.and_then(|v| v.first().copied().flatten()).is_some())
                        .count();
                    let mut cols = b.columns().to_vec();
                    for (k, &ix) in col_ix.iter().enumerate() {
                        let col: Float64Array = got
                            .iter()
                            .map(|v| v.and_then(|v| v.get(k).copied().flatten()))
                            .collect();
                        cols[ix] = Arc::new(col);
                    }
                    Ok(RecordBatch::try_new(b.schema(), cols)?)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(batches))
        })
        .await?;
        Ok(set)
    }

    /// Stores an artifact (e.g. a report) at `key` with one atomic put.
    pub async fn put_object(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.path(key)?, PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// A URL that reads the object at `key` (relative to the lake root) without lake
    /// credentials: on S3 a presigned `GET` URL (AWS Signature V4 in the query string)
    /// valid for `expires_in`, which must be between 1 s and [`MAX_URL_EXPIRY`] (7 days);
    /// on a local lake the object's `file://` URL (no expiry; `expires_in` is still
    /// checked so a bad setting fails the same way everywhere). The object need not
    /// exist yet; signing is local (no request is made).
    pub async fn artifact_url(&self, key: &str, expires_in: std::time::Duration) -> Result<String> {
        if expires_in < std::time::Duration::from_secs(1) || expires_in > MAX_URL_EXPIRY {
            return Err(LakeError::InvalidInput(format!(
                "URL expiry must be between 1 s and 7 days ({} s), got {} s",
                MAX_URL_EXPIRY.as_secs(),
                expires_in.as_secs_f64()
            )));
        }
        let path = self.path(key)?;
        match (&self.uri, &self.signer) {
            (_, Some(signer)) => {
                // `http::Method::default()` is GET (object_store takes the `http` crate's
                // method type, which irtlake does not name directly).
                let url = signer
                    .signed_url(Default::default(), &path, expires_in)
                    .await?;
                Ok(url.to_string())
            }
            (LakeUri::Local(_), None) => {
                let file = self.local_path(key)?.ok_or_else(|| {
                    LakeError::InvalidInput(format!("no local path for key {key}"))
                })?;
                Url::from_file_path(&file).map(String::from).map_err(|()| {
                    LakeError::InvalidInput(format!("cannot make a file URL of {}", file.display()))
                })
            }
            (LakeUri::S3 { .. }, None) => Err(LakeError::InvalidInput(
                "this S3 lake has no signer for presigned URLs".into(),
            )),
        }
    }

    /// The file of `key` on a local lake (`None` on S3). Escaped partition values stay
    /// escaped in the file name (a `%` in the key is a `%` on disk).
    pub fn local_path(&self, key: &str) -> Result<Option<std::path::PathBuf>> {
        let LakeUri::Local(dir) = &self.uri else {
            return Ok(None);
        };
        let rel = Path::parse(key)?;
        let mut file = dir.clone();
        for part in rel.parts() {
            file.push(part.as_ref());
        }
        Ok(Some(file))
    }

    /// Where the object at `key` is, for people: its file path on a local lake,
    /// `s3://bucket/prefix/key` on S3.
    pub fn object_location(&self, key: &str) -> Result<String> {
        match &self.uri {
            LakeUri::Local(_) => Ok(self
                .local_path(key)?
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
            LakeUri::S3 { bucket, .. } => Ok(format!("s3://{bucket}/{}", self.path(key)?)),
        }
    }

    /// Reads a whole object.
    pub async fn get_object(&self, key: &str) -> Result<Bytes> {
        Ok(self.store.get(&self.path(key)?).await?.bytes().await?)
    }

    /// Lists every object under `prefix` (a key relative to the lake root; `""` for all),
    /// sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let p = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix)?
        };
        let mut out: Vec<ObjectInfo> = self
            .store
            .list(Some(&p))
            .map_ok(|m| ObjectInfo {
                key: self.key_of(&m.location),
                size: m.size,
            })
            .try_collect()
            .await?;
        out.sort();
        Ok(out)
    }
}

/// Checks batches against the table's file schema and returns them carrying exactly
/// that schema (field metadata and nullability as in the catalog).
fn conform(def: &TableDef, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let want = &def.file_schema;
    let mismatch = |reason: String| LakeError::SchemaMismatch {
        table: def.name.to_string(),
        reason,
    };
    batches
        .iter()
        .map(|b| {
            let got = b.schema();
            if got.fields().len() != want.fields().len() {
                let names: Vec<_> = got.fields().iter().map(|f| f.name().clone()).collect();
                let expected: Vec<_> = want.fields().iter().map(|f| f.name().clone()).collect();
                return Err(mismatch(format!(
                    "expected columns {expected:?}, got {names:?}"
                )));
            }
            for (g, w) in got.fields().iter().zip(want.fields()) {
                if g.name() != w.name() {
                    return Err(mismatch(format!(
                        "expected column '{}' where the batch has '{}'",
                        w.name(),
                        g.name()
                    )));
                }
                if g.data_type() != w.data_type() {
                    return Err(mismatch(format!(
                        "column '{}' must be {}, got {}",
                        w.name(),
                        w.data_type(),
                        g.data_type()
                    )));
                }
            }
            for (col, w) in b.columns().iter().zip(want.fields()) {
                if !w.is_nullable() && col.null_count() > 0 {
                    return Err(mismatch(format!(
                        "column '{}' may not contain nulls ({} found)",
                        w.name(),
                        col.null_count()
                    )));
                }
            }
            Ok(RecordBatch::try_new(want.clone(), b.columns().to_vec())?)
        })
        .collect()
}

/// Encodes batches as one Parquet file (zstd) in memory.
fn encode_parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(buf)
}
