//! End-to-end tests of irtlake: the lake on a local folder and on a real S3-protocol
//! server, ingest validation, partition escaping, the `irtlake` binary and the
//! operator SQL checks. Servers are started and stopped by `support`.

// Test code: unwrap on fixtures is how a test says "this must hold".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anchor_drift;
mod calibrate;
mod cli;
mod downstream;
mod export_pg;
mod fit_cli;
mod glmm_cli;
mod guards;
mod ingest;
mod integrity;
mod irt_link;
mod lake_local;
mod lake_s3;
mod lambda_rt;
mod reports;
mod runner;
mod sharded_run;
mod shards_churn_growth;
mod shards_kpis;
mod sql_stdin;
mod stage_churn;
mod stage_forecast;
mod stage_growth;
mod stage_segments;
mod support;

#[path = "../../models/tests/data/cbpp.rs"]
mod cbpp_data;
#[path = "../../models/tests/data/lsat7.rs"]
mod lsat7_data;
#[path = "../reference.rs"]
mod reference;
