//! The DataFusion session over the lake.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::num::NonZeroUsize;

use crate::catalog::{TABLES, partition_type};
use crate::error::{LakeError, Result};
use crate::store::Lake;

impl Lake {
    /// A DataFusion `SessionContext` with every catalog table registered as a listing
    /// table over its folder, with its declared schema and declared Hive partition
    /// columns (nothing is inferred; date partitions are `Date32`,
    /// [`crate::catalog::partition_type`]). A table with no data yet is registered empty, so
    /// queries never fail on a young lake. `information_schema` is on (`SHOW TABLES`).
    /// The SQL functions `student_bucket(student_id, seed)` and
    /// `student_bucket_in(student_id, seed, lo, hi)` ([`crate::shard`]) are registered.
    ///
    /// Registration does no I/O: files are listed when a query runs.
    ///
    /// Queries run in a bounded memory pool that spills sorts, aggregations and joins to
    /// the temporary directory ([`Lake::runtime_builder`]).
    pub fn session(&self) -> Result<SessionContext> {
        let runtime = Self::runtime_builder()?.build_arc()?;
        let ctx = SessionContext::new_with_config_rt(Self::session_config(), runtime);
        ctx.register_object_store(self.store_url(), self.store().clone());
        self.register_tables(&ctx)?;
        Ok(ctx)
    }

    /// The session's configuration: `information_schema` on, default schema
    /// `lake.public`, and SQL's `VARCHAR`/`TEXT`/`STRING` as `Utf8` (the catalog's
    /// string type), not DataFusion's default `Utf8View`: `CAST(dt AS VARCHAR)` gives
    /// the column type every reader of the lake expects.
    pub(crate) fn session_config() -> SessionConfig {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("lake", "public");
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        config
    }

    /// The runtime of every lake session: a fair spilling memory pool of
    /// [`query_memory_bytes`] (operators that can spill — sorts, grouped aggregations,
    /// joins — write to the OS temporary directory, a Lambda's `/tmp` ephemeral storage,
    /// once their share is used; an operator that cannot spill fails with "Resources
    /// exhausted" instead of growing the process past the pool).
    pub(crate) fn runtime_builder() -> Result<RuntimeEnvBuilder> {
        let pool = FairSpillPool::new(query_memory_bytes()?);
        let pool = TrackConsumersPool::new(pool, NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN));
        Ok(RuntimeEnvBuilder::new().with_memory_pool(Arc::new(pool)))
    }

    /// Registers every catalog table in `ctx` (see [`Lake::session`]).
    pub(crate) fn register_tables(&self, ctx: &SessionContext) -> Result<()> {
        ctx.register_udf(crate::shard::student_bucket_udf());
        ctx.register_udf(crate::shard::student_bucket_in_udf());
        for def in TABLES.iter() {
            let url = ListingTableUrl::parse(self.table_url(def.name))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(
                    def.partitions
                        .iter()
                        .map(|p| (p.to_string(), partition_type(p)))
                        .collect(),
                );
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(def.file_schema.clone());
            ctx.register_table(def.name, Arc::new(ListingTable::try_new(config)?))?;
        }
        Ok(())
    }

    /// Runs one SQL statement over the lake and collects the result.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let ctx = self.session()?;
        Ok(ctx.sql(sql).await?.collect().await?)
    }
}

/// Environment variable bounding the memory of one lake session's queries, in MiB
/// (64 to 65,536). Default [`DEFAULT_QUERY_MEMORY_MB`].
pub const QUERY_MEMORY_ENV: &str = "IRTLAKE_QUERY_MEMORY_MB";

/// Default query memory pool, MiB: room for the sorts and aggregations of one
/// 100k-student shard in memory, within a 2 GB Lambda with the stage's own data.
pub const DEFAULT_QUERY_MEMORY_MB: usize = 1024;

/// The query memory pool in bytes: [`QUERY_MEMORY_ENV`] if set, else
/// [`DEFAULT_QUERY_MEMORY_MB`].
pub fn query_memory_bytes() -> Result<usize> {
    let mb = match std::env::var(QUERY_MEMORY_ENV) {
        Ok(v) => {
            let mb: usize = v.trim().parse().map_err(|_| {
                LakeError::InvalidInput(format!(
                    "{QUERY_MEMORY_ENV} must be a whole number of MiB, got {v:?}"
                ))
            })?;
            crate::bounds::check_range(QUERY_MEMORY_ENV, mb, 64..=65_536)
                .map_err(LakeError::InvalidInput)?;
            mb
        }
        Err(_) => DEFAULT_QUERY_MEMORY_MB,
    };
    Ok(mb << 20)
}
