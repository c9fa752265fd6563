//! Stage **features** → `features_topic_daily`.
//!
//! Per student, topic and day: attempts, correct, accuracy, mean time (ms), hints, and
//! θ with its source — the topic θ (`student_topic_theta`) when present, else the
//! student's global θ (`abilities`, bank `all`), else null. θ is taken **as of the run**:
//! the latest `score_topics` and `calibrate` runs on or before the range's last day, for
//! every day of the range (a backfill shows today's best estimate of each student, not
//! the estimate that existed on the day). The range is `from..=to` (default: the run
//! date); each day is one partition, rewritten whole, so re-running changes nothing.
//!
//! # Shards and memory
//!
//! An invocation computes the rows of the students of its shard (`shard`/`shards` of
//! the input, [`lake::shard::Shard`]): every scan of the query (attempts, topic θ,
//! global θ) is restricted to the shard's student buckets before the aggregation and
//! the joins, the result (sorted by day) is read as a stream, and each day is encoded as
//! the shard's own object of its partition as soon as its rows are complete; the
//! encoded days are written together ([`Lake::write_partitions`], every
//! [`MAX_PENDING_BYTES`] and at the end; each day's object is atomic). A run in N shards
//! writes the same rows as one unsharded run.
//!
//! Memory per invocation: DataFusion's query pool (`IRTLAKE_QUERY_MEMORY_MB`, default
//! 1 GiB; the aggregation, the joins' θ tables of the shard and the sort spill to disk
//! beyond it) plus one day's rows of the shard (about 200 bytes per student-topic
//! active that day) and at most [`MAX_PENDING_BYTES`] of encoded days: **≤ 1 GB for a
//! 12.5k-student shard** (and for a 100k-student one), whatever the size of the
//! platform.

use arrow::array::RecordBatch;
use arrow::compute::{cast, concat_batches};

use datafusion::scalar::ScalarValue;
use lake::catalog::{self, ABILITIES, FEATURES_TOPIC_DAILY, STUDENT_TOPIC_THETA};
use lake::columns::{Columns, TableBatch, opt_day};
use lake::phases::Phases;
use lake::runs::{RunContext, StageError, StageInput, day_param, day_str, latest_run_date};
use lake::stream::{Runs, query_stream};
use lake::{EncodedPartition, Lake};
use serde::Serialize;

const DAILY_SQL: &str = include_str!("../../../sql/features/daily.sql");

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct FeaturesOutput {
    /// Run id.
    pub run_id: String,
    /// The shard of the students this invocation processed (`"shard K of N"`).
    pub shard: String,
    /// First and last day computed.
    pub from: String,
    /// Last day.
    pub to: String,
    /// Day partitions written (days without attempts have none).
    pub days_written: usize,
    /// Rows written.
    pub rows: usize,
    /// Rows by θ source: topic, global, none.
    pub theta_sources: [usize; 3],
    /// The runs θ came from.
    pub topic_theta_run: Option<String>,
    /// The abilities run (bank all).
    pub abilities_run: Option<String>,
    /// Wall time of the stage's phases (ms): read (the θ runs, planning the query),
    /// features (the daily query — scan, aggregation and θ joins — streamed day by day,
    /// and each day encoded as Parquet), write (the encoded days, together).
    pub phases_ms: Phases,
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<FeaturesOutput, StageError> {
    let mut phases = Phases::start();
    let rc = input.context("features")?;
    let ctx = lake.session()?;
    let topic_run = latest_run_date(&ctx, STUDENT_TOPIC_THETA, rc.to).await?;
    let abilities_run = latest_run_date(&ctx, ABILITIES, rc.to).await?;
    let [lo, hi] = rc.shard.sql_params();
    let stream = query_stream(
        &ctx,
        DAILY_SQL,
        vec![
            day_param(rc.from),
            day_param(rc.to),
            ScalarValue::Utf8(topic_run.clone()),
            ScalarValue::Utf8(abilities_run.clone()),
            lo,
            hi,
        ],
    )
    .await?;
    phases.mark("read");
    let mut out = FeaturesOutput {
        run_id: rc.run_id.clone(),
        shard: rc.shard.label(),
        from: day_str(rc.from),
        to: day_str(rc.to),
        days_written: 0,
        rows: 0,
        theta_sources: [0; 3],
        topic_theta_run: topic_run,
        abilities_run,
        phases_ms: Phases::start(),
    };
    // The rows of one day at a time (the stream is sorted by day): a day is encoded
    // before the next one is read, and the encoded days are written together.
    let mut days = Runs::new(stream, 0);
    let mut pending: Vec<EncodedPartition> = Vec::new();
    let mut pending_bytes = 0;
    while let Some(day) = days.next().await? {
        if let Some(encoded) = encode_day(lake, &rc, &day, &mut out)? {
            pending_bytes += encoded.bytes();
            pending.push(encoded);
        }
        phases.mark("features");
        if pending_bytes >= MAX_PENDING_BYTES {
            out.days_written += lake
                .write_partitions(std::mem::take(&mut pending))
                .await?
                .len();
            pending_bytes = 0;
            phases.mark("write");
        }
    }
    out.days_written += lake.write_partitions(pending).await?.len();
    phases.mark("write");
    out.phases_ms = phases;
    Ok(out)
}

/// Encoded days held before they are written together ([`Lake::write_partitions`]:
/// on a local lake one `syncfs` pair for all of them instead of two `fsync`s per day).
/// A day of a 12.5k-student shard encodes to well under 1 MB (≈ 35 bytes per row).
const MAX_PENDING_BYTES: usize = 32 << 20;

/// One day's rows (query columns of `sql/features/daily.sql`, all of one `dt`) as the
/// shard's object of the day's partition, encoded; counts the rows into `out`.
fn encode_day(
    lake: &Lake,
    rc: &RunContext,
    parts: &[RecordBatch],
    out: &mut FeaturesOutput,
) -> Result<Option<EncodedPartition>, StageError> {
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    let day = opt_day(Columns::of(first).days("dt")?, 0)
        .map(day_str)
        .ok_or_else(|| StageError::InvalidInput("features query: a row without dt".into()))?;
    let part = concat_batches(&first.schema(), parts)?;
    let n = part.num_rows();
    let query = Columns::of(&part);
    let src = query.strings("theta_source")?;
    for s in src.iter() {
        out.theta_sources[match s {
            Some("topic") => 0,
            Some(_) => 1,
            None => 2,
        }] += 1;
    }
    // every column of the table but the run's own comes from the query column of its
    // name, cast to the table's type (the query's sums are wider)
    let def = catalog::table(FEATURES_TOPIC_DAILY)?;
    let mut batch = TableBatch::new(FEATURES_TOPIC_DAILY, n)?
        .text("run_id", &rc.run_id)?
        .timestamp("computed_at", rc.run_ts)?;
    for field in def.file_schema.fields() {
        if !matches!(field.name().as_str(), "run_id" | "computed_at") {
            let values = cast(query.column(field.name())?, field.data_type())?;
            batch = batch.set(field.name(), values)?;
        }
    }
    let batch = batch.finish()?;
    let encoded =
        lake.encode_partition(FEATURES_TOPIC_DAILY, &[("dt", &day)], rc.shard, &[batch])?;
    out.rows += n;
    Ok(Some(encoded))
}
