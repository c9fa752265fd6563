//! The table catalog: every lake table, its Arrow schema and its partition columns,
//! defined once (DESIGN.md §3). Stages, ingest and SQL all read their schemas here.
//!
//! Conventions:
//! - ids are strings; times are UTC timestamps in microseconds;
//! - partition columns are not stored inside the files; their folder values are
//!   `YYYY-MM-DD` for the date columns `dt`, `run_date`, `week_start`, which SQL sees as
//!   `DATE` (`Date32`, as DuckDB, polars and Athena read them), and `all`,
//!   `subject:<id>`, `topic:<id>` for `bank`, a string ([`partition_type`]);
//! - every output row carries the `run_id` that made it;
//! - column names are lower case so SQL needs no quoting (`i_t`, not `I_t`).
//!
//! Deviations from DESIGN.md §3, on purpose: `fit_meta` is partitioned by `run_date`
//! **and** `bank`, so calibrations of several banks in parallel (a Step Functions Map)
//! each own their partition and never overwrite one another; its column `bank_id` holds
//! the full bank id, because a partition value longer than 120 bytes escaped is
//! shortened in the path and so in the `bank` column (see [`crate::partition`]).
//! `fit_meta` also records the fit sample and the scoring (`n_students_fit`,
//! `n_students_scored`, `n_responses_fit`, `n_responses_scored`, `sample`: the sampling
//! rule, e.g. `student_bucket<1024/4096 seed=0`); `n_students` and `n_responses` are
//! those of the fit, as before. These five columns and `bank_id` are nullable:
//! calibrations written before they existed read them as null (readers take
//! `coalesce(bank_id, bank)`).
//!
//! `attempts` carries one column more than the platform's export: `shard_bucket`, the
//! row's student bucket under the shard seed, which the lake writes itself and clusters
//! the rows by ([`shard_clustered_by`]); objects written before it read it as null.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{LakeError, Result};

/// One lake table: its name (also its folder), the schema of its Parquet files and
/// its Hive partition columns (in folder order).
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Table name and folder under the lake root.
    pub name: &'static str,
    /// Schema of the Parquet files (without partition columns).
    pub file_schema: SchemaRef,
    /// Partition columns, outermost first; their SQL types are [`partition_type`].
    pub partitions: &'static [&'static str],
    /// One line on what the table holds.
    pub description: &'static str,
}

impl TableDef {
    /// The schema seen through SQL: file columns followed by partition columns.
    pub fn table_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(
            self.partitions
                .iter()
                .map(|p| Field::new(*p, partition_type(p), false)),
        );
        Arc::new(Schema::new(fields))
    }
}

/// The partition columns whose folder values are days, `YYYY-MM-DD`.
pub const DATE_PARTITIONS: [&str; 3] = ["dt", "run_date", "week_start"];

/// The SQL type of a partition column: `Date32` for the date columns
/// ([`DATE_PARTITIONS`], folder values `YYYY-MM-DD`, read as dates like DuckDB, polars
/// and Athena do), `Utf8` for every other (`bank`). Paths are written from the same
/// `YYYY-MM-DD` text either way ([`crate::partition`]).
pub fn partition_type(column: &str) -> DataType {
    if DATE_PARTITIONS.contains(&column) {
        DataType::Date32
    } else {
        DataType::Utf8
    }
}

/// Timestamp type of every time column: microseconds, UTC.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn f64f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}
fn i64f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}
fn boolf(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Boolean, nullable)
}
fn tsf(name: &str, nullable: bool) -> Field {
    Field::new(name, ts_type(), nullable)
}
fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

/// Raw attempts, one row per answer, partitioned by the UTC date of `completed_at`.
pub const ATTEMPTS: &str = "attempts";
/// The question bank with known IRT parameters of anchors.
pub const QUESTIONS: &str = "questions";
/// Calibrated item parameters per run and bank.
pub const ITEM_PARAMS: &str = "item_params";
/// Student abilities (θ) per run and bank.
pub const ABILITIES: &str = "abilities";
/// One row per calibration: fit statistics and linking constants.
pub const FIT_META: &str = "fit_meta";
/// Topic-level θ per student.
pub const STUDENT_TOPIC_THETA: &str = "student_topic_theta";
/// Daily per-student, per-topic features.
pub const FEATURES_TOPIC_DAILY: &str = "features_topic_daily";
/// Weekly KPIs per student.
pub const WEEKLY_KPI: &str = "weekly_kpi";
/// Growth model estimates and diagnostics.
pub const GROWTH_FIT: &str = "growth_fit";
/// Churn model estimates, Kaplan–Meier curve and diagnostics.
pub const CHURN_FIT: &str = "churn_fit";
/// Cohort forecasts.
pub const FORECASTS: &str = "forecasts";
/// In-sample anomalies of the cohort series.
pub const ANOMALIES: &str = "anomalies";
/// Student segments.
pub const USER_SEGMENT: &str = "user_segment";
/// Generated report artifacts and their URLs.
pub const REPORT_ARTIFACTS: &str = "report_artifacts";

/// Table `anchor_drift`.
pub const ANCHOR_DRIFT: &str = "anchor_drift";

/// Columns of `table` whose values are (nearly) all distinct within an object, written
/// without a dictionary: a dictionary of unique values only grows until Parquet's
/// dictionary page limit and falls back to plain pages, costing a second copy of the
/// values. For `attempts` (a day of the 100k-student benchmark platform, 94k rows) the
/// attempt id and `completed_at` written plain are two thirds smaller (zstd: 155 → 51
/// and 385 → 132 kB), the table a quarter (79 → 59 MB), and a shard's scan of the
/// columns a weekly θ needs reads 28 MB instead of 48 (what a Lambda fetches from S3).
pub fn distinct_valued_columns(table: &str) -> &'static [&'static str] {
    match table {
        ATTEMPTS => &["attempt_id", "completed_at"],
        _ => &[],
    }
}

/// Column of `attempts` holding each row's student bucket under the shard seed,
/// `student_bucket(student_id, 0)` ([`crate::shard`]): written by the lake, not by the
/// writer ([`shard_clustered_by`]). Null in objects written before the column existed.
pub const SHARD_BUCKET: &str = "shard_bucket";

/// The id column whose shard bucket table `table` stores in [`SHARD_BUCKET`], if any.
/// The lake writes such a table **clustered by shard**: on every write it computes the
/// column from the id (whatever the writer put there), orders the rows by it (stably:
/// rows of one bucket keep the writer's order) and cuts data pages of at most
/// [`CLUSTERED_PAGE_ROWS`] rows, so the page index of an object maps bucket ranges to
/// pages. A shard's query that adds `shard_bucket >= lo AND shard_bucket < hi` (or
/// `IS NULL` for older objects) to its `student_bucket_in` predicate then decodes only
/// the pages of its buckets: at 100k students and 8 shards, about a fifth of each
/// object instead of all of it (DESIGN.md §7).
pub fn shard_clustered_by(table: &str) -> Option<&'static str> {
    match table {
        ATTEMPTS => Some("student_id"),
        _ => None,
    }
}

/// Most rows in one data page of a table clustered by shard ([`shard_clustered_by`]):
/// the granularity of its page pruning. A day of attempts of the 100k-student benchmark
/// platform (~85–94k rows) has ~23 pages per column, so a shard of 8 reads 4–5 of them.
pub const CLUSTERED_PAGE_ROWS: usize = 4096;

/// Every table of the lake.
pub static TABLES: LazyLock<Vec<TableDef>> = LazyLock::new(|| {
    vec![
        TableDef {
            name: ATTEMPTS,
            file_schema: schema(vec![
                utf8("attempt_id", false),
                utf8("student_id", false),
                utf8("question_id", false),
                utf8("subject_id", true),
                utf8("topic_id", true),
                utf8("session_id", true),
                boolf("correct", false),
                tsf("completed_at", false),
                i64f("time_spent_ms", true),
                i64f("hints_used", true),
                i64f(SHARD_BUCKET, true),
            ]),
            partitions: &["dt"],
            description: "raw attempts (one row per answer), partitioned by UTC day of completed_at",
        },
        TableDef {
            name: QUESTIONS,
            file_schema: schema(vec![
                utf8("question_id", false),
                utf8("subject_id", true),
                utf8("topic_id", true),
                Field::new(
                    "tags",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    true,
                ),
                f64f("irt_a", true),
                f64f("irt_b", true),
                f64f("irt_c", true),
                boolf("is_anchor", false),
            ]),
            partitions: &[],
            description: "question bank; anchors carry known irt_a/irt_b/irt_c",
        },
        TableDef {
            name: ITEM_PARAMS,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("item_id", false),
                utf8("model", false),
                f64f("a", true),
                f64f("b", true),
                f64f("c", true),
                f64f("se_a", true),
                f64f("se_b", true),
                f64f("se_c", true),
                i64f("n_responses", false),
                f64f("p_correct", true),
                boolf("is_anchor", false),
                boolf("linked", false),
                utf8("excluded_reason", true),
                tsf("fitted_at", false),
                // item fit (models::irt::itemfit): S-X² only where students answered
                // every item of the bank; infit/outfit over the fit sample's responses
                f64f("s_x2", true),
                i64f("df_s_x2", true),
                f64f("p_s_x2", true),
                f64f("infit", true),
                f64f("outfit", true),
                f64f("z_infit", true),
                f64f("z_outfit", true),
            ]),
            partitions: &["run_date", "bank"],
            description: "calibrated item parameters (IRT metric, on the anchor scale when linked) with item fit",
        },
        TableDef {
            name: ANCHOR_DRIFT,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("item_id", false),
                utf8("linking_method", false),
                f64f("a_ref", false),
                f64f("b_ref", false),
                f64f("c_ref", false),
                f64f("a_compared", false),
                f64f("b_compared", false),
                f64f("a_est", false),
                f64f("b_est", false),
                f64f("diff_b", false),
                f64f("log_a_ratio", false),
                f64f("z_b", false),
                f64f("z_a", false),
                boolf("flagged", false),
                i64f("flagged_round", false),
                tsf("fitted_at", false),
                // the time-split test (models::linking::recent_shifts): the anchor's b on
                // the recent period's answers vs the window's earlier ones, centred on the
                // anchors' median, anchor-scale θ units (times the final link's A; the
                // flag's 0.3 size floor used the unscreened link's A, which differs from
                // it by the drifted anchors' pull on A); null when not run or too few
                // answers
                i64f("n_earlier", true),
                i64f("n_recent", true),
                f64f("recent_shift_b", true),
                f64f("recent_se_b", true),
                f64f("recent_z", true),
                boolf("flagged_recent", true),
            ]),
            partitions: &["run_date", "bank"],
            description: "anchor drift screen per linked calibration: known vs estimated parameters on the anchor scale, robust z, flagged; and the recent-vs-earlier time-split test",
        },
        TableDef {
            name: ABILITIES,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("student_id", false),
                f64f("theta", false),
                f64f("se", false),
                i64f("n_responses", false),
                utf8("method", false),
                tsf("fitted_at", false),
            ]),
            partitions: &["run_date", "bank"],
            description: "student abilities (θ, posterior SD) per calibration",
        },
        TableDef {
            name: FIT_META,
            file_schema: schema(vec![
                utf8("run_id", false),
                // the full bank id: the `bank` partition value is shortened when long
                // (see `partition`)
                utf8("bank_id", true),
                utf8("model", false),
                i64f("n_students", false),
                i64f("n_items", false),
                i64f("n_responses", false),
                i64f("n_anchors", false),
                f64f("loglik", true),
                f64f("aic", true),
                f64f("bic", true),
                i64f("iterations", false),
                boolf("converged", false),
                utf8("linking_method", false),
                f64f("linking_a", true),
                f64f("linking_b", true),
                i64f("n_anchors_used", false),
                i64f("n_students_fit", true),
                i64f("n_students_scored", true),
                i64f("n_responses_fit", true),
                i64f("n_responses_scored", true),
                utf8("sample", true),
                i64f("elapsed_ms", false),
                utf8("model_spec", false),
                tsf("fitted_at", false),
            ]),
            partitions: &["run_date", "bank"],
            description: "one row per calibration: fit statistics, convergence, linking constants",
        },
        TableDef {
            name: STUDENT_TOPIC_THETA,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("student_id", false),
                utf8("topic_id", false),
                f64f("theta", false),
                f64f("se", false),
                i64f("n_responses", false),
            ]),
            partitions: &["run_date"],
            description: "topic-level θ (EAP with fixed bank parameters)",
        },
        TableDef {
            name: FEATURES_TOPIC_DAILY,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("student_id", false),
                utf8("topic_id", false),
                i64f("attempts", false),
                i64f("correct", false),
                f64f("accuracy", false),
                f64f("avg_time_ms", true),
                i64f("hints", false),
                f64f("theta_mean", true),
                f64f("theta_sd", true),
                utf8("theta_source", true),
                tsf("computed_at", false),
            ]),
            partitions: &["dt"],
            description: "daily features per student and topic with θ (topic, else global)",
        },
        TableDef {
            name: WEEKLY_KPI,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("student_id", false),
                f64f("i_t", true),
                f64f("a_t", true),
                f64f("e_t", true),
                f64f("r_t", true),
                f64f("s", true),
                f64f("p", true),
                f64f("sigma", true),
                utf8("method", true),
                i64f("n_responses", false),
                tsf("updated_at", false),
                // which growth model produced `p` (growth stage): `bayes_theta` or
                // `glmm_accuracy`; appended last, so objects written before it read as null
                utf8("p_model", true),
            ]),
            partitions: &["week_start"],
            description: "weekly KPIs per student (weeks start Monday, UTC)",
        },
        TableDef {
            name: GROWTH_FIT,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("model", false),
                utf8("kind", false),
                utf8("term", false),
                utf8("group_id", true),
                f64f("estimate", true),
                f64f("se", true),
                f64f("rhat", true),
                f64f("ess", true),
                tsf("fitted_at", false),
            ]),
            partitions: &["run_date"],
            description: "growth models (Bayesian NUTS, REML/ML mixed model): estimates and diagnostics",
        },
        TableDef {
            name: CHURN_FIT,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("kind", false),
                utf8("term", false),
                f64f("time_days", true),
                f64f("estimate", true),
                f64f("se", true),
                f64f("z", true),
                f64f("p_value", true),
                i64f("n_risk", true),
                i64f("events", true),
                tsf("fitted_at", false),
            ]),
            partitions: &["run_date"],
            description: "Cox model coefficients, baseline hazard, Kaplan–Meier curve, diagnostics",
        },
        TableDef {
            name: FORECASTS,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("series", false),
                Field::new("ds", DataType::Date32, false),
                f64f("yhat", false),
                f64f("yhat_lower", false),
                f64f("yhat_upper", false),
                tsf("generated_at", false),
            ]),
            partitions: &["run_date"],
            description: "28-day cohort forecasts with 80% intervals",
        },
        TableDef {
            name: ANOMALIES,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("series", false),
                Field::new("ds", DataType::Date32, false),
                f64f("value", false),
                f64f("expected", false),
                f64f("score", false),
                tsf("generated_at", false),
            ]),
            partitions: &["run_date"],
            description: "in-sample points outside the 99% interval",
        },
        TableDef {
            name: USER_SEGMENT,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("student_id", false),
                Field::new("cluster", DataType::Int32, false),
                utf8("segment_label", false),
                utf8("features_snapshot", false),
                tsf("assigned_at", false),
            ]),
            partitions: &["run_date"],
            description: "k-means segments with rule-based labels",
        },
        TableDef {
            name: REPORT_ARTIFACTS,
            file_schema: schema(vec![
                utf8("run_id", false),
                utf8("student_id", true),
                utf8("format", false),
                utf8("key", false),
                utf8("url", false),
                i64f("bytes", false),
                utf8("sha256", false),
                tsf("generated_at", false),
            ]),
            partitions: &["week_start"],
            description: "generated reports: object key, URL (presigned on S3), size, checksum",
        },
    ]
});

/// Looks a table up by name.
pub fn table(name: &str) -> Result<&'static TableDef> {
    TABLES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| LakeError::UnknownTable(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_unique_and_has_run_id_unless_raw() {
        let mut names: Vec<_> = TABLES.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
        for t in TABLES.iter() {
            let raw = t.name == ATTEMPTS || t.name == QUESTIONS;
            assert_eq!(
                t.file_schema.field_with_name("run_id").is_ok(),
                !raw,
                "{}",
                t.name
            );
            for p in t.partitions {
                assert!(
                    t.file_schema.field_with_name(p).is_err(),
                    "{} stores {p}",
                    t.name
                );
            }
        }
        assert!(table("nope").is_err());
    }
}
