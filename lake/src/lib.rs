//! The irtlake data lake: a lake URI (`file://` or `s3://`), the table catalog,
//! a DataFusion session with every table registered, atomic partition writes,
//! artifacts, ingest of attempts and questions, the student-bucket hash that samples
//! and shards students ([`shard`]), a process-wide memo of a run's shared work
//! ([`memo`]), and the catalog's tables as Glue Data Catalog
//! tables for Athena ([`glue`]).
//!
//! One [`Lake`] holds one `object_store` for its whole life; every read and write
//! of the lake goes through it.

pub mod artifacts;
pub mod bounds;
pub mod catalog;
pub mod columns;
pub mod error;
pub mod files;
pub mod glue;
pub mod ingest;
pub mod intern;
pub mod local;
pub mod memo;
pub mod partition;
pub mod phases;
pub mod plan;
pub mod presence;
pub mod query;
pub mod readonly;
pub mod runs;
pub mod s3;
pub mod shard;
pub mod store;
pub mod stream;
pub mod uri;

pub use artifacts::DEFAULT_URL_EXPIRY;
pub use catalog::{TABLES, TableDef};
pub use error::{LakeError, Result};
pub use store::{CellValue, EncodedPartition, Lake, MAX_URL_EXPIRY, ObjectInfo, WriteSummary};
pub use uri::{DEFAULT_LAKE_URI, LakeUri};

/// Environment variable naming the lake (`file://…` or `s3://…`).
pub const LAKE_URI_ENV: &str = "LAKE_URI";
