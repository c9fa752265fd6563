//! The [`Lake`]: one object store, table paths, atomic partition writes and artifacts.

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use url::Url;

use crate::catalog::{self, TableDef};
use crate::error::{LakeError, Result};
use crate::shard::Shard;
use crate::uri::LakeUri;
use crate::{local, partition};

/// PUTs [`Lake::put_objects`] keeps in flight on S3.
pub const PUT_CONCURRENCY: usize = 16;

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
    /// The same local store as `store`, kept concrete to map object paths to files
    /// (`None` on S3): local writes go through [`crate::local`].
    local: Option<Arc<LocalFileSystem>>,
}

/// One partition's new object, encoded and ready to store.
struct Prepared {
    bytes: Bytes,
    rows: usize,
    /// What the write is conditional on (S3): the version read, `None` = create only.
    version: Option<UpdateVersion>,
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

/// `shard`'s object of one partition of a catalog table, checked against the table's
/// schema and encoded ([`Lake::encode_partition`]), waiting for
/// [`Lake::write_partitions`].
#[derive(Debug, Clone)]
pub struct EncodedPartition {
    key: String,
    shard: Shard,
    rows: usize,
    bytes: Bytes,
}

impl EncodedPartition {
    /// Size of the encoded object in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }
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
                let local = Arc::new(LocalFileSystem::new());
                Ok(Self {
                    uri: LakeUri::Local(dir),
                    store: local.clone(),
                    root,
                    store_url,
                    signer: None,
                    local: Some(local),
                })
            }
            LakeUri::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                let mut retry = S3Retry::from_env(&uri.to_uri_string())?;
                for (key, value) in s3_config {
                    if retry.set(key, value, &uri.to_uri_string())? {
                        continue;
                    }
                    let key = key.parse().map_err(|_| LakeError::InvalidUri {
                        uri: uri.to_uri_string(),
                        reason: format!("unknown S3 setting '{key}'"),
                    })?;
                    builder = builder.with_config(key, *value);
                }
                builder = builder.with_retry(retry.config());
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
                    local: None,
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
        self.shard_partition_key(table, values, Shard::WHOLE)
    }

    /// Key of `shard`'s object of a partition ([`Shard::object_name`]); for
    /// [`Shard::WHOLE`] the same as [`Lake::partition_key`].
    pub fn shard_partition_key(
        &self,
        table: &TableDef,
        values: &[(&str, &str)],
        shard: Shard,
    ) -> Result<String> {
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
        key.push_str(&shard.object_name());
        Ok(key)
    }

    /// Writes `batches` as the one Parquet object of a partition, replacing what a
    /// previous run wrote there.
    ///
    /// The batches must match the table's file schema (same column names and types in
    /// order; no nulls in non-nullable columns). The object is built in memory and
    /// stored with one atomic put (S3: single PUT; local: staged under a hidden name,
    /// `fsync`ed and renamed under the partition's folder lock, see [`crate::local`]), so
    /// a reader — irtlake or any other engine — sees the old partition or the new one,
    /// never half of one nor a staging file.
    pub async fn write_partition(
        &self,
        table: &str,
        values: &[(&str, &str)],
        batches: &[RecordBatch],
    ) -> Result<WriteSummary> {
        self.write_partition_shard(table, values, Shard::WHOLE, batches)
            .await
    }

    /// Writes `batches` as `shard`'s object of a partition ([`Shard::object_name`]),
    /// replacing what a previous run of the same shard wrote there and never touching
    /// the objects of the other shards of its count, so the shards of one run write
    /// side by side. Then the objects a run with another shard count left in the
    /// partition are deleted ([`Lake::sweep_other_layouts`]). A reader sees every shard
    /// written so far; between the first and the last shard of a run that changed the
    /// shard count of an existing partition, the students of shards not yet written are
    /// missing (a re-run with the same count replaces objects one by one and is never
    /// missing rows). Atomicity of each object as in [`Lake::write_partition`].
    pub async fn write_partition_shard(
        &self,
        table: &str,
        values: &[(&str, &str)],
        shard: Shard,
        batches: &[RecordBatch],
    ) -> Result<WriteSummary> {
        let EncodedPartition {
            key, rows, bytes, ..
        } = self.encode_partition(table, values, shard, batches)?;
        let size = bytes.len();
        self.put_atomic(&key, bytes).await?;
        self.sweep_other_layouts(&key, shard).await?;
        tracing::debug!(table, key, rows, bytes = size, shard = %shard.label(), "wrote partition");
        Ok(WriteSummary {
            key,
            rows,
            bytes: size,
        })
    }

    /// `batches` as `shard`'s object of the partition `values` of `table`, checked and
    /// encoded as [`Lake::write_partition_shard`] would write them, for
    /// [`Lake::write_partitions`]. Holds the encoded bytes only (compressed Parquet).
    pub fn encode_partition(
        &self,
        table: &str,
        values: &[(&str, &str)],
        shard: Shard,
        batches: &[RecordBatch],
    ) -> Result<EncodedPartition> {
        let def = catalog::table(table)?;
        let key = self.shard_partition_key(def, values, shard)?;
        let checked = conform(def, batches)?;
        Ok(EncodedPartition {
            key,
            shard,
            rows: checked.iter().map(|b| b.num_rows()).sum(),
            bytes: Bytes::from(encode_parquet(def, &checked)?),
        })
    }

    /// Writes many partition objects ([`Lake::encode_partition`], distinct keys), each
    /// atomic as with [`Lake::write_partition_shard`], together: on a local lake staged
    /// and made durable at once (one `syncfs` before the renames and one after, where
    /// one object at a time costs two `fsync`s each; [`Lake::put_objects`]), on S3
    /// [`PUT_CONCURRENCY`] PUTs at a time. Then the objects of other shard counts in
    /// those partitions are swept ([`Lake::sweep_other_layouts`]). On error, objects
    /// already written stay (none is partial) and nothing is swept.
    pub async fn write_partitions(
        &self,
        parts: Vec<EncodedPartition>,
    ) -> Result<Vec<WriteSummary>> {
        let summaries: Vec<(WriteSummary, Shard)> = parts
            .iter()
            .map(|p| {
                let summary = WriteSummary {
                    key: p.key.clone(),
                    rows: p.rows,
                    bytes: p.bytes.len(),
                };
                (summary, p.shard)
            })
            .collect();
        let objects = parts.into_iter().map(|p| (p.key, p.bytes)).collect();
        self.put_objects(objects, PutOptions::default()).await?;
        let mut out = Vec::with_capacity(summaries.len());
        for (summary, shard) in summaries {
            self.sweep_other_layouts(&summary.key, shard).await?;
            tracing::debug!(key = %summary.key, rows = summary.rows, bytes = summary.bytes, shard = %shard.label(), "wrote partition");
            out.push(summary);
        }
        Ok(out)
    }

    /// Where a local lake stages its writes (see [`crate::local`]).
    fn staging_dir(&self) -> std::path::PathBuf {
        match &self.uri {
            LakeUri::Local(dir) => dir.join(local::STAGING_DIR),
            LakeUri::S3 { .. } => std::path::PathBuf::from(local::STAGING_DIR),
        }
    }

    /// The file of an object path on a local lake (`None` on S3).
    fn local_file(&self, path: &Path) -> Result<Option<std::path::PathBuf>> {
        match &self.local {
            Some(fs) => Ok(Some(fs.path_to_filesystem(path)?)),
            None => Ok(None),
        }
    }

    /// Stores `bytes` at `key` with one atomic put: on S3 a single PUT; on a local lake
    /// under the folder lock, sweeping crashed writers' staging files, staged, `fsync`ed
    /// and renamed (see [`crate::local`]).
    async fn put_atomic(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.path(key)?;
        match self.local_file(&path)? {
            Some(file) => {
                let staging = self.staging_dir();
                local::blocking(move || {
                    let _lock = local::lock_dir(local_dir(&file)?)?;
                    local::sweep(&file, &staging)?;
                    local::stage(&file, &staging, &bytes)?.commit()
                })
                .await?;
            }
            None => {
                self.store.put(&path, PutPayload::from(bytes)).await?;
            }
        }
        Ok(())
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
    /// on a conflict the whole cycle runs again (up to 10 times). A local lake holds an
    /// exclusive lock on the partition's folder for the whole cycle, which serialises
    /// updates of every process on the machine (see [`crate::local`]). Used where several
    /// stages own different columns of one table (`weekly_kpi`: the KPI columns, `s`,
    /// `p`/`sigma`).
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
        let mut out = self
            .update_partitions(table, &[values], |_, current| f(current))
            .await?;
        Ok(out.pop().flatten())
    }

    /// Read–modify–write of several partitions of one table as one unit: `f(i, current)`
    /// gets the current batches of partition `partitions[i]` and returns its new ones
    /// (`None`: leave it). Every partition is prepared and staged before the first is
    /// committed, so invalid data or a failure while staging (a full disk) writes
    /// nothing; a failure while committing is a [`LakeError::Commit`] naming the
    /// partitions committed and those left as they were.
    ///
    /// Concurrency: on a local lake the partitions' folders are locked (in key order, so
    /// two writers cannot deadlock) for the whole cycle, across processes; on S3 each put
    /// is conditional on the object being unchanged since the read, and a partition
    /// whose put meets a concurrent update is read and prepared again (up to 10 times).
    /// Either way no concurrent update is lost. `f` may therefore run more than once
    /// for a partition and must not assume its earlier results were written.
    ///
    /// Returns one summary per partition, in order (`None` where `f` wrote nothing).
    pub async fn update_partitions<F>(
        &self,
        table: &str,
        partitions: &[&[(&str, &str)]],
        f: F,
    ) -> Result<Vec<Option<WriteSummary>>>
    where
        F: FnMut(usize, Vec<RecordBatch>) -> Result<Option<Vec<RecordBatch>>>,
    {
        self.update_partitions_shard(table, partitions, Shard::WHOLE, f)
            .await
    }

    /// Read–modify–write of `shard`'s object of one partition ([`Shard::object_name`]):
    /// [`Lake::update_partition`] for a sharded stage. `f` gets the rows this shard wrote
    /// before (none after a change of shard count) and the other shards' objects are
    /// never touched; objects of another shard count are swept after the write
    /// ([`Lake::sweep_other_layouts`]).
    pub async fn update_partition_shard<F>(
        &self,
        table: &str,
        values: &[(&str, &str)],
        shard: Shard,
        mut f: F,
    ) -> Result<WriteSummary>
    where
        F: FnMut(Vec<RecordBatch>) -> Result<Vec<RecordBatch>>,
    {
        let mut out = self
            .update_partitions_shard(table, &[values], shard, |_, current| f(current).map(Some))
            .await?;
        out.pop()
            .flatten()
            .ok_or_else(|| LakeError::InvalidInput("update wrote nothing".into()))
    }

    /// [`Lake::update_partitions`] of `shard`'s objects; objects of another shard count
    /// in the written partitions are swept after the commit.
    pub async fn update_partitions_shard<F>(
        &self,
        table: &str,
        partitions: &[&[(&str, &str)]],
        shard: Shard,
        f: F,
    ) -> Result<Vec<Option<WriteSummary>>>
    where
        F: FnMut(usize, Vec<RecordBatch>) -> Result<Option<Vec<RecordBatch>>>,
    {
        let out = self
            .update_partitions_of(table, partitions, shard, f)
            .await?;
        for w in out.iter().flatten() {
            self.sweep_other_layouts(&w.key, shard).await?;
        }
        Ok(out)
    }

    /// Reads, transforms and commits each of `partitions` (see
    /// [`Lake::update_partitions`]): keys checked, local folder locks held for the whole
    /// cycle, every partition prepared, then committed in order — staged and renamed on a
    /// local lake ([`local::commit_batch`]), conditional puts on S3 ([`Lake::put_conditional`]).
    async fn update_partitions_of<F>(
        &self,
        table: &str,
        partitions: &[&[(&str, &str)]],
        shard: Shard,
        mut f: F,
    ) -> Result<Vec<Option<WriteSummary>>>
    where
        F: FnMut(usize, Vec<RecordBatch>) -> Result<Option<Vec<RecordBatch>>>,
    {
        let def = catalog::table(table)?;
        let keys = self.distinct_partition_keys(def, partitions, shard)?;
        let labels: Vec<String> = partitions
            .iter()
            .map(|v| partition_label(table, v))
            .collect();
        let files = keys
            .iter()
            .map(|k| self.local_file(&self.path(k)?))
            .collect::<Result<Option<Vec<_>>>>()?;
        // Local: hold every folder lock for the whole cycle (taken in key order).
        let _locks = match &files {
            Some(files) => Some(lock_folders_of(files).await?),
            None => None,
        };
        let mut prepared = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            prepared.push(self.prepare(def, key, |c| f(i, c)).await?);
        }
        let pending: Vec<usize> = (0..keys.len()).filter(|&i| prepared[i].is_some()).collect();
        let names = |ix: &[usize]| ix.iter().map(|&i| labels[i].clone()).collect::<Vec<_>>();
        let fail = |done: &[usize], rest: &[usize], e: LakeError| {
            if pending.len() <= 1 {
                return e;
            }
            LakeError::Commit {
                table: table.to_string(),
                committed: names(done),
                not_committed: names(rest),
                source: Box::new(e),
            }
        };
        let mut out: Vec<Option<WriteSummary>> = vec![None; keys.len()];
        let summary = |i: usize, p: &Prepared| WriteSummary {
            key: keys[i].clone(),
            rows: p.rows,
            bytes: p.bytes.len(),
        };
        if let Some(files) = files {
            // Stage every partition, then commit them in order.
            let (order, objects): (Vec<usize>, Vec<(std::path::PathBuf, Bytes)>) = pending
                .iter()
                .filter_map(|&i| {
                    prepared[i]
                        .as_ref()
                        .map(|p| (i, (files[i].clone(), p.bytes.clone())))
                })
                .unzip();
            let staging = self.staging_dir();
            let (committed, err) =
                local::blocking(move || Ok(local::commit_batch(&objects, &staging))).await?;
            let done = &order[..committed];
            for &i in done {
                out[i] = prepared[i].as_ref().map(|p| summary(i, p));
            }
            if let Some(e) = err {
                let rest: Vec<usize> = pending
                    .iter()
                    .copied()
                    .filter(|i| !done.contains(i))
                    .collect();
                return Err(fail(done, &rest, e.into()));
            }
            return Ok(out);
        }
        // S3: conditional puts, one partition after the other.
        let mut done = Vec::with_capacity(pending.len());
        for (pos, &i) in pending.iter().enumerate() {
            let first = prepared[i].take();
            match self.put_conditional(def, &keys[i], i, first, &mut f).await {
                Ok(Some(p)) => {
                    out[i] = Some(summary(i, &p));
                    done.push(i);
                }
                Ok(None) => {}
                Err(e) => return Err(fail(&done, &pending[pos..], e)),
            }
        }
        Ok(out)
    }

    /// The object keys of `partitions` (of `shard`), refusing a partition listed twice.
    fn distinct_partition_keys(
        &self,
        def: &TableDef,
        partitions: &[&[(&str, &str)]],
        shard: Shard,
    ) -> Result<Vec<String>> {
        let keys = partitions
            .iter()
            .map(|v| self.shard_partition_key(def, v, shard))
            .collect::<Result<Vec<_>>>()?;
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != keys.len() {
            return Err(LakeError::BadPartition {
                table: def.name.to_string(),
                reason: "the same partition is listed twice in one update".into(),
            });
        }
        Ok(keys)
    }

    /// Puts `first` at `key` on S3 only if the object is still the version it was read
    /// at (or still absent). On a lost race it reads the partition and transforms it
    /// again (`f(index, current)`) after a backoff, up to [`MAX_UPDATE_ATTEMPTS`] tries;
    /// the prepared object that was written, `None` when the transform wrote nothing.
    async fn put_conditional<F>(
        &self,
        def: &TableDef,
        key: &str,
        index: usize,
        first: Option<Prepared>,
        f: &mut F,
    ) -> Result<Option<Prepared>>
    where
        F: FnMut(usize, Vec<RecordBatch>) -> Result<Option<Vec<RecordBatch>>>,
    {
        let path = self.path(key)?;
        let mut current = first;
        let mut attempt = 0u32;
        while let Some(p) = current.take() {
            let mode = match &p.version {
                Some(v) => PutMode::Update(v.clone()),
                None => PutMode::Create,
            };
            let res = self
                .store
                .put_opts(&path, PutPayload::from(p.bytes.clone()), mode.into())
                .await;
            match res {
                Ok(_) => return Ok(Some(p)),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) if attempt + 1 < MAX_UPDATE_ATTEMPTS => {
                    tracing::debug!(key, attempt, "concurrent update, retrying");
                    tokio::time::sleep(conflict_backoff(key, attempt)).await;
                    attempt += 1;
                    current = self.prepare(def, key, |c| f(index, c)).await?;
                }
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {
                    return Err(LakeError::Contended {
                        key: key.to_string(),
                        attempts: MAX_UPDATE_ATTEMPTS,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Reads a partition, applies `f` and encodes the result (`None`: nothing to write).
    async fn prepare(
        &self,
        def: &TableDef,
        key: &str,
        f: impl FnOnce(Vec<RecordBatch>) -> Result<Option<Vec<RecordBatch>>>,
    ) -> Result<Option<Prepared>> {
        let (current, version) = self.read_versioned(key).await?;
        let current = current
            .into_iter()
            .map(|b| upgrade(def, b))
            .collect::<Result<Vec<_>>>()?;
        let Some(new) = f(current)? else {
            return Ok(None);
        };
        let new = conform(def, &new)?;
        let rows = new.iter().map(|b| b.num_rows()).sum();
        let bytes = Bytes::from(encode_parquet(def, &new)?);
        Ok(Some(Prepared {
            bytes,
            rows,
            version,
        }))
    }

    /// Sets `columns` (Float64 or Utf8 columns of the catalog schema) of the rows of
    /// `shard`'s object of an existing partition ([`Shard::object_name`];
    /// [`Shard::WHOLE`]: the one object of an unsharded partition), matching rows by the
    /// string column `key_column`: a row whose key is in `values` gets those values (in
    /// `columns` order), every other row gets nulls; all other columns stay as they are.
    /// Writes nothing when that object does not exist or is empty (e.g. the partition
    /// was written with another shard count: it is then left as it is, not swept).
    /// Returns the rows whose first column is now non-null. Used by stages that own a
    /// few columns of a shared table (`weekly_kpi.s` for churn; `p`, `sigma`, `p_model`
    /// for growth). A value of the wrong kind for its column is
    /// [`LakeError::SchemaMismatch`].
    pub async fn set_columns(
        &self,
        table: &str,
        partition: &[(&str, &str)],
        shard: Shard,
        key_column: &str,
        columns: &[&str],
        values: &std::collections::HashMap<String, Vec<CellValue>>,
    ) -> Result<usize> {
        let schema = &catalog::table(table)?.file_schema;
        let key_ix = schema.index_of(key_column)?;
        let col_ix = columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut set = 0;
        self.update_partitions_shard(table, &[partition], shard, |_, existing| {
            if existing.iter().all(|b| b.num_rows() == 0) {
                return Ok(None);
            }
            set = 0;
            let batches = existing
                .into_iter()
                .map(|b| {
                    let keys = b.column(key_ix).as_string::<i32>();
                    let got: Vec<Option<&Vec<CellValue>>> = (0..b.num_rows())
                        .map(|r| values.get(keys.value(r)))
                        .collect();
                    set += got
                        .iter()
                        .filter(|v| v.and_then(|v| v.first()).is_some_and(CellValue::is_some))
                        .count();
                    let mut cols = b.columns().to_vec();
                    for (k, &ix) in col_ix.iter().enumerate() {
                        let cell = |r: usize| got[r].and_then(|v| v.get(k));
                        cols[ix] = cell_column(table, schema.field(ix), b.num_rows(), cell)?;
                    }
                    Ok(RecordBatch::try_new(b.schema(), cols)?)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(batches))
        })
        .await?;
        Ok(set)
    }

    /// [`Lake::set_columns`] for Float64 columns only.
    pub async fn set_float_columns(
        &self,
        table: &str,
        partition: &[(&str, &str)],
        shard: Shard,
        key_column: &str,
        columns: &[&str],
        values: &std::collections::HashMap<String, Vec<Option<f64>>>,
    ) -> Result<usize> {
        let cells = values
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|&x| CellValue::Float(x)).collect()))
            .collect();
        self.set_columns(table, partition, shard, key_column, columns, &cells)
            .await
    }

    /// Stores an artifact (e.g. a report) at `key` with one atomic put (on a local lake
    /// staged, `fsync`ed and renamed like a partition object).
    pub async fn put_object(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.put_atomic(key, bytes).await
    }

    /// Stores many artifacts (distinct keys), each with one atomic put as
    /// [`Lake::put_object`]: on S3 [`PUT_CONCURRENCY`] PUTs at a time with `options`'
    /// attributes; on a local lake in batches of up to 256 objects made durable
    /// together (see [`crate::local`]). On error, objects already written stay; none is
    /// partial.
    pub async fn put_objects(
        &self,
        objects: Vec<(String, Bytes)>,
        options: PutOptions,
    ) -> Result<()> {
        let mut located = Vec::with_capacity(objects.len());
        for (key, bytes) in objects {
            located.push((self.path(&key)?, bytes));
        }
        if self.local.is_none() {
            return futures::stream::iter(located)
                .map(|(path, bytes)| {
                    let opts = options.clone();
                    async move {
                        self.store
                            .put_opts(&path, PutPayload::from(bytes), opts)
                            .await
                    }
                })
                .buffer_unordered(PUT_CONCURRENCY)
                .try_for_each(|_| futures::future::ready(Ok(())))
                .await
                .map_err(LakeError::from);
        }
        let mut files = Vec::with_capacity(located.len());
        for (path, bytes) in located {
            if let Some(file) = self.local_file(&path)? {
                files.push((file, bytes));
            }
        }
        let staging = self.staging_dir();
        let mut rest = files;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(local::MAX_BATCH));
            let batch = std::mem::replace(&mut rest, tail);
            let staging = staging.clone();
            local::blocking(move || local::put_batch(&batch, &staging)).await?;
        }
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

    /// Deletes the Parquet objects of the partition of `key` (the key of one of its
    /// objects) that a run with another shard count than `shard`'s wrote
    /// ([`Shard::is_other_layout`]). Returns how many were deleted.
    pub async fn sweep_other_layouts(&self, key: &str, shard: Shard) -> Result<usize> {
        let Some((folder, _)) = key.rsplit_once('/') else {
            return Ok(0);
        };
        let mut deleted = 0;
        for o in self.list(&format!("{folder}/")).await? {
            let Some((dir, name)) = o.key.rsplit_once('/') else {
                continue;
            };
            if dir != folder || !shard.is_other_layout(name) {
                continue;
            }
            match self.store.delete(&self.path(&o.key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => return Err(e.into()),
            }
            tracing::info!(key = %o.key, shard = %shard.label(), "deleted an object of another shard count");
        }
        Ok(deleted)
    }

    /// The shard count of the run that last wrote a partition, from its objects' names
    /// ([`Shard::count_of_object`]); `None` when the partition has no object. A writer
    /// that updates one student's rows (e.g. a single student's report) updates the
    /// object of that layout holding the student ([`Shard::holding`]).
    pub async fn partition_shard_count(
        &self,
        table: &str,
        values: &[(&str, &str)],
    ) -> Result<Option<u32>> {
        let def = catalog::table(table)?;
        let key = self.partition_key(def, values)?;
        let Some((folder, _)) = key.rsplit_once('/') else {
            return Ok(None);
        };
        Ok(self
            .list(&format!("{folder}/"))
            .await?
            .iter()
            .filter_map(|o| o.key.rsplit_once('/'))
            .filter(|(dir, _)| *dir == folder)
            .find_map(|(_, name)| Shard::count_of_object(name)))
    }

    /// Lists every object under `prefix` (a key relative to the lake root; `""` for all),
    /// sorted by key. Hidden paths (a segment starting with `.` or `_`, such as a writer's
    /// staging file) are not objects of the lake and are left out, as Hive-style readers
    /// leave them out.
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
            .try_filter(|o| {
                let hidden = o.key.split('/').any(|s| s.starts_with(['.', '_']));
                futures::future::ready(!hidden)
            })
            .try_collect()
            .await?;
        out.sort();
        Ok(out)
    }
}

/// Conditional puts of one S3 read–modify–write before it gives up
/// ([`LakeError::Contended`], retryable).
const MAX_UPDATE_ATTEMPTS: u32 = 20;

/// Wait before retrying a conditional put that met a concurrent update: exponential
/// (50 ms · 2^attempt, at most 1.6 s) with "equal jitter" (half fixed, half spread by a
/// hash of the key, the attempt and the clock), so writers that collided do not collide
/// again in lock step.
fn conflict_backoff(key: &str, attempt: u32) -> std::time::Duration {
    let base = 50u64 << attempt.min(5);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let h = crate::shard::mix64(crate::shard::fnv1a64(key.as_bytes()) ^ nanos ^ u64::from(attempt));
    std::time::Duration::from_millis(base / 2 + h % (base / 2 + 1))
}

/// The folder of a local object file.
fn local_dir(file: &std::path::Path) -> std::io::Result<&std::path::Path> {
    file.parent().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("no folder for {}", file.display()),
        )
    })
}

/// A partition as people name it: `column=value/…` (the table name when unpartitioned).
fn partition_label(table: &str, values: &[(&str, &str)]) -> String {
    if values.is_empty() {
        return table.to_string();
    }
    values
        .iter()
        .map(|(c, v)| format!("{c}={v}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// A value for one cell of [`Lake::set_columns`].
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue {
    /// For a Float64 column.
    Float(Option<f64>),
    /// For a Utf8 column.
    Text(Option<String>),
}

impl CellValue {
    /// Whether the cell holds a value (not null).
    pub fn is_some(&self) -> bool {
        match self {
            Self::Float(v) => v.is_some(),
            Self::Text(v) => v.is_some(),
        }
    }
}

/// The column `field` of `rows` rows from `cell(r)` (null where `None`); a cell of the
/// wrong kind is a schema mismatch naming the table and column.
fn cell_column<'a>(
    table: &str,
    field: &arrow::datatypes::Field,
    rows: usize,
    cell: impl Fn(usize) -> Option<&'a CellValue>,
) -> Result<arrow::array::ArrayRef> {
    let mismatch = |kind: &str| LakeError::SchemaMismatch {
        table: table.to_string(),
        reason: format!(
            "column '{}' is {}, a {kind} value was given",
            field.name(),
            field.data_type()
        ),
    };
    Ok(match field.data_type() {
        arrow::datatypes::DataType::Float64 => Arc::new(
            (0..rows)
                .map(|r| match cell(r) {
                    None => Ok(None),
                    Some(CellValue::Float(v)) => Ok(*v),
                    Some(CellValue::Text(_)) => Err(mismatch("text")),
                })
                .collect::<Result<Float64Array>>()?,
        ),
        arrow::datatypes::DataType::Utf8 => Arc::new(
            (0..rows)
                .map(|r| match cell(r) {
                    None => Ok(None),
                    Some(CellValue::Text(v)) => Ok(v.as_deref()),
                    Some(CellValue::Float(_)) => Err(mismatch("float")),
                })
                .collect::<Result<arrow::array::StringArray>>()?,
        ),
        _ => return Err(mismatch("float or text")),
    })
}

/// A batch of an object written before nullable columns were appended to its table,
/// with the catalog's columns: each taken by name, a missing nullable one as nulls (a
/// missing required one is a schema mismatch). Batches already in the catalog's column
/// order are returned as they are; [`conform`] checks the types when they are written
/// back.
fn upgrade(def: &TableDef, batch: RecordBatch) -> Result<RecordBatch> {
    let want = &def.file_schema;
    let got = batch.schema();
    if got.fields().len() == want.fields().len()
        && got
            .fields()
            .iter()
            .zip(want.fields())
            .all(|(g, w)| g.name() == w.name())
    {
        return Ok(batch);
    }
    let cols = want
        .fields()
        .iter()
        .map(|w| match batch.column_by_name(w.name()) {
            Some(c) => Ok(c.clone()),
            None if w.is_nullable() => Ok(arrow::array::new_null_array(
                w.data_type(),
                batch.num_rows(),
            )),
            None => Err(LakeError::SchemaMismatch {
                table: def.name.to_string(),
                reason: format!("an existing object has no column '{}'", w.name()),
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(want.clone(), cols)?)
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

/// Most rows in one Parquet row group: 1,048,576 (parquet-rs's and DuckDB's default
/// scale). With [`ROW_GROUP_MAX_BYTES`] it is the layout's target: one object per
/// partition (per shard), and within it row groups as large as these bounds allow, so a
/// reader pays one footer and a few column chunks per object, not many small ones. At the
/// demo size every object is one row group; the largest object at 100k students (a day
/// of attempts, ~83k rows, 1.4 MB) is too.
pub const ROW_GROUP_MAX_ROWS: usize = 1024 * 1024;

/// Largest encoded row group, bytes: 128 MiB, Hive's and Athena's block size
/// (`parquet.block.size`), whichever of this and [`ROW_GROUP_MAX_ROWS`] comes first.
pub const ROW_GROUP_MAX_BYTES: usize = 128 << 20;

/// Encodes batches of table `def` (in its file schema) as one Parquet file in memory:
/// zstd, row groups up to [`ROW_GROUP_MAX_ROWS`] rows or [`ROW_GROUP_MAX_BYTES`], page
/// statistics (the defaults) for pruning, dictionaries but for the table's
/// [`catalog::distinct_valued_columns`]. A table clustered by shard
/// ([`catalog::shard_clustered_by`]) is written as [`cluster_by_shard`] orders it, in
/// data pages of at most [`catalog::CLUSTERED_PAGE_ROWS`] rows.
fn encode_parquet(def: &TableDef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let clustered = cluster_by_shard(def, batches)?;
    let batches = clustered.as_deref().unwrap_or(batches);
    let props = catalog::distinct_valued_columns(def.name)
        .iter()
        .fold(WriterProperties::builder(), |props, column| {
            props.set_column_dictionary_enabled(ColumnPath::from(*column), false)
        })
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_MAX_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_MAX_BYTES));
    let props = match clustered {
        Some(_) => props.set_data_page_row_count_limit(catalog::CLUSTERED_PAGE_ROWS),
        None => props,
    }
    .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, def.file_schema.clone(), Some(props))?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(buf)
}

/// The rows of `batches` of a table clustered by shard ([`catalog::shard_clustered_by`])
/// as one batch ordered by the shard bucket of their id column (a stable sort: rows of
/// one bucket keep their order), with [`catalog::SHARD_BUCKET`] set to that bucket, as
/// the SQL function computes it ([`crate::shard::buckets`] under
/// [`crate::shard::SHARD_SEED`]); `None` for every other table. The batches are in the
/// file schema ([`conform`]), so the id column is a non-null string.
fn cluster_by_shard(def: &TableDef, batches: &[RecordBatch]) -> Result<Option<Vec<RecordBatch>>> {
    use arrow::array::{Int64Array, UInt32Array};
    let Some(id_column) = catalog::shard_clustered_by(def.name) else {
        return Ok(None);
    };
    let all = arrow::compute::concat_batches(&def.file_schema, batches)?;
    let ids = all
        .column(def.file_schema.index_of(id_column)?)
        .as_string::<i32>();
    let seeds = Int64Array::from_value(crate::shard::SHARD_SEED as i64, all.num_rows());
    let buckets = crate::shard::buckets(ids, &seeds);
    let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
    order.sort_by_key(|&row| buckets.value(row as usize));
    let mut columns = all.columns().to_vec();
    columns[def.file_schema.index_of(catalog::SHARD_BUCKET)?] = Arc::new(buckets);
    let all = RecordBatch::try_new(def.file_schema.clone(), columns)?;
    let sorted = arrow::compute::take_record_batch(&all, &UInt32Array::from(order))?;
    Ok(Some(vec![sorted]))
}

/// Environment variable: how many times an S3 request that failed in a retryable way
/// (throttling, 5xx, timeout, dropped connection) is retried inside one call, 0 to 20
/// (default 10, object_store's). Setting `max_retries` in `Lake::open_with` does the same.
pub const S3_MAX_RETRIES_ENV: &str = "IRTLAKE_S3_MAX_RETRIES";
/// Environment variable: seconds after the first attempt of an S3 request past which it is
/// no longer retried, 1 to 600 (default 180, object_store's); `retry_timeout_secs` in
/// `Lake::open_with`. With `AWS_TIMEOUT` (one attempt's timeout, e.g. `5s`) it bounds how
/// long a call can hang on an unresponsive (paused) server before it fails as
/// `Retryable.LakeIo`, leaving the retry to Step Functions.
pub const S3_RETRY_TIMEOUT_ENV: &str = "IRTLAKE_S3_RETRY_TIMEOUT_SECS";

/// The retry policy of the lake's S3 client (see [`S3_MAX_RETRIES_ENV`] and
/// [`S3_RETRY_TIMEOUT_ENV`]).
struct S3Retry {
    max_retries: usize,
    retry_timeout_secs: u64,
}

impl S3Retry {
    fn from_env(uri: &str) -> Result<Self> {
        let defaults = object_store::RetryConfig::default();
        let mut retry = Self {
            max_retries: defaults.max_retries,
            retry_timeout_secs: defaults.retry_timeout.as_secs(),
        };
        for (env, key) in [
            (S3_MAX_RETRIES_ENV, "max_retries"),
            (S3_RETRY_TIMEOUT_ENV, "retry_timeout_secs"),
        ] {
            if let Ok(value) = std::env::var(env) {
                retry
                    .set(key, &value, uri)
                    .map_err(|_| LakeError::InvalidUri {
                        uri: uri.to_string(),
                        reason: format!("{env}={value:?} is out of range (see its docs)"),
                    })?;
            }
        }
        Ok(retry)
    }

    /// Takes `key` if it is one of the retry settings (`Ok(true)`); refuses a value out
    /// of range.
    fn set(&mut self, key: &str, value: &str, uri: &str) -> Result<bool> {
        let bad = |range: &str| LakeError::InvalidUri {
            uri: uri.to_string(),
            reason: format!("S3 setting {key} = {value:?} must be an integer in {range}"),
        };
        match key {
            "max_retries" => {
                self.max_retries = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n <= 20)
                    .ok_or_else(|| bad("0..=20"))?;
            }
            "retry_timeout_secs" => {
                self.retry_timeout_secs = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=600).contains(n))
                    .ok_or_else(|| bad("1..=600"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn config(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            max_retries: self.max_retries,
            retry_timeout: std::time::Duration::from_secs(self.retry_timeout_secs),
            ..object_store::RetryConfig::default()
        }
    }
}

/// Locks the folders of `files` (sorted, so concurrent writers take them in one order).
async fn lock_folders_of(files: &[std::path::PathBuf]) -> Result<Vec<local::DirLock>> {
    let dirs = files
        .iter()
        .map(|f| local_dir(f).map(std::path::Path::to_path_buf))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(local::blocking(move || local::lock_dirs(dirs)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// An object holds row groups of at most [`ROW_GROUP_MAX_ROWS`] rows: one more row
    /// than that makes two row groups, the first full.
    #[test]
    fn row_groups_hold_up_to_the_target_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let n = ROW_GROUP_MAX_ROWS + 1;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..n as i64))],
        )
        .unwrap();
        let def = TableDef {
            name: "test",
            file_schema: schema,
            partitions: &[],
            description: "",
        };
        let bytes = encode_parquet(&def, &[batch]).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, vec![ROW_GROUP_MAX_ROWS as i64, 1]);
    }

    /// The catalog's distinct-valued columns of `attempts` are written without a
    /// dictionary, its other columns with one (id columns repeat: students, questions),
    /// whatever the values (here every column repeats).
    #[test]
    fn distinct_valued_columns_are_written_without_a_dictionary() {
        use arrow::array::{ArrayRef, BooleanArray, StringArray, TimestampMicrosecondArray};
        use parquet::basic::Encoding;
        let def = catalog::table(catalog::ATTEMPTS).unwrap();
        let n = 1000;
        let columns: Vec<ArrayRef> = def
            .file_schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.data_type() {
                    DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                        (0..n).map(|i| format!("{}-{}", f.name(), i % 7)),
                    )),
                    DataType::Boolean => Arc::new(BooleanArray::from(vec![true; n])),
                    DataType::Int64 => {
                        Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i % 5)))
                    }
                    _ => Arc::new(
                        TimestampMicrosecondArray::from_iter_values(0..n as i64)
                            .with_timezone("UTC"),
                    ),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(def.file_schema.clone(), columns).unwrap();
        let bytes = encode_parquet(def, &[batch]).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        let group = reader.metadata().row_group(0);
        let plain = catalog::distinct_valued_columns(def.name);
        assert_eq!(plain, ["attempt_id", "completed_at"]);
        // (Parquet never writes booleans with a dictionary.)
        for c in group
            .columns()
            .iter()
            .filter(|c| c.column_path().string() != "correct")
        {
            let name = c.column_path().string();
            let dictionary = c.encodings().any(|e| e == Encoding::RLE_DICTIONARY);
            assert_eq!(dictionary, !plain.contains(&name.as_str()), "{name}");
        }
    }

    /// An `attempts` batch of `n` rows over `students` students in a scrambled order
    /// (attempt id `a{row}`), whose writer put a wrong `shard_bucket` (7) in every row.
    fn scrambled_attempts(n: usize, students: usize, day_us: i64) -> RecordBatch {
        use arrow::array::{BooleanArray, StringArray, TimestampMicrosecondArray};
        let student = |r: usize| format!("s{}", (r * 7919) % students);
        crate::columns::TableBatch::new(catalog::ATTEMPTS, n)
            .unwrap()
            .set(
                "attempt_id",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|r| format!("a{r}")),
                )),
            )
            .unwrap()
            .set(
                "student_id",
                Arc::new(StringArray::from_iter_values((0..n).map(student))),
            )
            .unwrap()
            .set(
                "question_id",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|r| format!("q{}", r % 13)),
                )),
            )
            .unwrap()
            .set(
                "correct",
                Arc::new(BooleanArray::from_iter((0..n).map(|r| Some(r % 3 == 0)))),
            )
            .unwrap()
            .set(
                "completed_at",
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values((0..n as i64).map(|r| day_us + r))
                        .with_timezone("UTC"),
                ),
            )
            .unwrap()
            .set(
                catalog::SHARD_BUCKET,
                Arc::new(Int64Array::from(vec![7; n])),
            )
            .unwrap()
            .finish()
            .unwrap()
    }

    /// `attempts` is written clustered by shard: every row's `shard_bucket` is
    /// `student_bucket(student_id, 0)` (the writer's value replaced), the rows are
    /// ordered by it and keep the writer's order within a bucket (a stable sort), no row
    /// is lost or doubled, and every data page holds at most `CLUSTERED_PAGE_ROWS` rows.
    #[test]
    fn attempts_are_written_clustered_by_shard() {
        use parquet::arrow::arrow_reader::ArrowReaderOptions;
        let def = catalog::table(catalog::ATTEMPTS).unwrap();
        let n = 3 * catalog::CLUSTERED_PAGE_ROWS + 123;
        let written = scrambled_attempts(n, 2000, 0);
        let bytes = Bytes::from(encode_parquet(def, &[written]).unwrap());
        let options = ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required);
        let builder =
            ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options).unwrap();
        let offsets = builder.metadata().offset_index().unwrap()[0].clone();
        let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        let read = arrow::compute::concat_batches(&def.file_schema, &batches).unwrap();
        assert_eq!(read.num_rows(), n);
        let cols = crate::columns::Columns::of(&read);
        let (ids, students) = (
            cols.strings("attempt_id").unwrap(),
            cols.strings("student_id").unwrap(),
        );
        let buckets = read
            .column(def.file_schema.index_of(catalog::SHARD_BUCKET).unwrap())
            .as_primitive::<arrow::datatypes::Int64Type>();
        let mut seen = vec![false; n];
        let mut previous = (-1i64, -1i64);
        for r in 0..n {
            let bucket = buckets.value(r);
            assert_eq!(
                bucket as u64,
                crate::shard::student_bucket(students.value(r), 0)
            );
            let row: i64 = ids.value(r)[1..].parse().unwrap();
            assert!(
                (bucket, row) > previous,
                "row {r}: {:?} after {previous:?}",
                (bucket, row)
            );
            previous = (bucket, row);
            assert!(!std::mem::replace(&mut seen[row as usize], true));
        }
        assert!(seen.iter().all(|&s| s));
        for column in offsets {
            let starts: Vec<i64> = column
                .page_locations()
                .iter()
                .map(|p| p.first_row_index)
                .collect();
            assert!(starts.len() >= 4, "{starts:?}");
            for (a, b) in starts
                .iter()
                .zip(starts.iter().skip(1).chain([&(n as i64)]))
            {
                assert!(b - a <= catalog::CLUSTERED_PAGE_ROWS as i64, "{starts:?}");
            }
        }
    }

    /// Partitions written together ([`Lake::write_partitions`]) are, object for object,
    /// the bytes one-at-a-time writes give; the objects another shard count left in one
    /// of them are swept, and no staging file stays.
    #[tokio::test]
    async fn partitions_written_together_are_those_written_one_at_a_time() {
        let (together, alone) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let open =
            |d: &tempfile::TempDir| Lake::open(&format!("file://{}", d.path().display())).unwrap();
        let (lake, reference) = (open(&together), open(&alone));
        let day_us = 1_769_904_000_000_000; // 2026-02-01T00:00:00Z
        let days = ["2026-02-01", "2026-02-02", "2026-02-03"];
        let batch =
            |k: usize| scrambled_attempts(500 + 100 * k, 50, day_us + k as i64 * 86_400_000_000);
        // a run with 2 shards wrote the second day before
        let two = Shard::new(1, 2).unwrap();
        lake.write_partition_shard(catalog::ATTEMPTS, &[("dt", days[1])], two, &[batch(9)])
            .await
            .unwrap();
        let parts = days
            .iter()
            .enumerate()
            .map(|(k, d)| {
                lake.encode_partition(catalog::ATTEMPTS, &[("dt", d)], Shard::WHOLE, &[batch(k)])
                    .unwrap()
            })
            .collect();
        let written = lake.write_partitions(parts).await.unwrap();
        assert_eq!(written.len(), 3);
        for (k, d) in days.iter().enumerate() {
            let one = reference
                .write_partition(catalog::ATTEMPTS, &[("dt", d)], &[batch(k)])
                .await
                .unwrap();
            assert_eq!(written[k], one, "{d}");
            let read = |l: &Lake| std::fs::read(l.local_path(&one.key).unwrap().unwrap()).unwrap();
            assert_eq!(read(&lake), read(&reference), "{d}");
            assert_eq!(one.rows, 500 + 100 * k);
        }
        let second: Vec<String> = lake
            .list(&format!("attempts/dt={}/", days[1]))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(second, [written[1].key.clone()]);
        let staging = together.path().join(local::STAGING_DIR);
        let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
        assert_eq!(left, 0, "staging files left in {}", staging.display());
    }

    /// A shard's scan with the `shard_bucket` range next to `student_bucket_in` reads
    /// the same rows as the hash predicate alone — over an object written clustered and
    /// one written before the column existed (no `shard_bucket`: read as null) — and
    /// skips the other shards' pages of the clustered object (page index pruning).
    #[tokio::test]
    async fn shard_scans_skip_other_shards_pages_and_read_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&format!("file://{}", dir.path().display())).unwrap();
        let def = catalog::table(catalog::ATTEMPTS).unwrap();
        let day_us = 1_769_904_000_000_000; // 2026-02-01T00:00:00Z
        let n = 20_000;
        lake.write_partition(
            catalog::ATTEMPTS,
            &[("dt", "2026-02-01")],
            &[scrambled_attempts(n, 4000, day_us)],
        )
        .await
        .unwrap();
        // An object of the same table as written before `shard_bucket` existed.
        let old = scrambled_attempts(3000, 900, day_us + 86_400_000_000);
        let old = old
            .project(&(0..old.num_columns() - 1).collect::<Vec<_>>())
            .unwrap();
        let mut buf = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, old.schema(), None).unwrap();
        writer.write(&old).unwrap();
        writer.close().unwrap();
        let key = lake.partition_key(def, &[("dt", "2026-02-02")]).unwrap();
        lake.store()
            .put(&lake.path(&key).unwrap(), buf.into())
            .await
            .unwrap();

        let ctx = lake.session().unwrap();
        let hash_only = "SELECT attempt_id, dt FROM attempts \
                         WHERE student_bucket_in(student_id, 0, 512, 1024)";
        let clustered = format!(
            "{hash_only} AND (shard_bucket IS NULL OR (shard_bucket >= 512 AND shard_bucket < 1024))"
        );
        let rows = |sql: String| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx
                    .sql(&format!("{sql} ORDER BY attempt_id, dt"))
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string()
            }
        };
        let expected = rows(hash_only.to_string()).await;
        assert!(expected.contains("2026-02-01") && expected.contains("2026-02-02"));
        assert_eq!(rows(clustered.clone()).await, expected);

        // Rows the Parquet scans hand on to the filter: with the range, the clustered
        // day's pages of buckets [512, 1024) (1/8 of 20,000 rows, plus at most one
        // partial page at each end) and the whole old object; without it, every row.
        let scanned = |sql: String| {
            let ctx = ctx.clone();
            async move {
                let plan = ctx
                    .sql(&sql)
                    .await
                    .unwrap()
                    .create_physical_plan()
                    .await
                    .unwrap();
                datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
                    .await
                    .unwrap();
                fn scan_rows(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> usize {
                    if plan.name() == "DataSourceExec" {
                        return plan.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
                    }
                    plan.children().into_iter().map(scan_rows).sum()
                }
                scan_rows(&plan)
            }
        };
        assert_eq!(scanned(hash_only.to_string()).await, n + 3000);
        let pruned = scanned(clustered).await;
        let kept = expected.lines().filter(|l| l.contains("| a")).count();
        assert!(pruned >= kept && kept > 0, "{pruned} {kept}");
        assert!(
            pruned <= n / 8 + 2 * catalog::CLUSTERED_PAGE_ROWS + 3000,
            "{pruned}"
        );
    }
}
