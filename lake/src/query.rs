//! The DataFusion session over the lake.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::TABLES;
use crate::error::Result;
use crate::store::Lake;

impl Lake {
    /// A DataFusion `SessionContext` with every catalog table registered as a listing
    /// table over its folder, with its declared schema and declared Hive partition
    /// columns (nothing is inferred). A table with no data yet is registered empty, so
    /// queries never fail on a young lake. `information_schema` is on (`SHOW TABLES`).
    /// The SQL function `student_bucket(student_id, seed)` ([`crate::shard`]) is registered.
    ///
    /// Registration does no I/O: files are listed when a query runs.
    pub fn session(&self) -> Result<SessionContext> {
        let ctx = SessionContext::new_with_config(Self::session_config());
        ctx.register_object_store(self.store_url(), self.store().clone());
        self.register_tables(&ctx)?;
        Ok(ctx)
    }

    /// The session's configuration: `information_schema` on, default schema
    /// `lake.public`.
    pub(crate) fn session_config() -> SessionConfig {
        SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("lake", "public")
    }

    /// Registers every catalog table in `ctx` (see [`Lake::session`]).
    pub(crate) fn register_tables(&self, ctx: &SessionContext) -> Result<()> {
        ctx.register_udf(crate::shard::student_bucket_udf());
        for def in TABLES.iter() {
            let url = ListingTableUrl::parse(self.table_url(def.name))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(
                    def.partitions
                        .iter()
                        .map(|p| (p.to_string(), DataType::Utf8))
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
