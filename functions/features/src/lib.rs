//! Stage **features** → `features_topic_daily`.
//!
//! Per student, topic and day: attempts, correct, accuracy, mean time (ms), hints, and
//! θ with its source — the topic θ (`student_topic_theta`) when present, else the
//! student's global θ (`abilities`, bank `all`), else null. θ is taken **as of the run**:
//! the latest `score_topics` and `calibrate` runs on or before the range's last day, for
//! every day of the range (a backfill shows today's best estimate of each student, not
//! the estimate that existed on the day). The range is `from..=to` (default: the run
//! date); each day is one partition, rewritten whole, so re-running changes nothing.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::{cast, filter_record_batch};

use datafusion::scalar::ScalarValue;
use lake::Lake;
use lake::catalog::{self, ABILITIES, FEATURES_TOPIC_DAILY, STUDENT_TOPIC_THETA};
use lake::runs::{StageError, StageInput, day_str, latest_run_date};
use serde::Serialize;

const DAILY_SQL: &str = include_str!("../../../sql/features/daily.sql");

/// What the stage did.
#[derive(Debug, Clone, Serialize)]
pub struct FeaturesOutput {
    /// Run id.
    pub run_id: String,
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
}

/// Runs the stage.
pub async fn run(lake: &Lake, input: &StageInput) -> Result<FeaturesOutput, StageError> {
    let rc = input.context("features")?;
    let ctx = lake.session()?;
    let topic_run = latest_run_date(&ctx, STUDENT_TOPIC_THETA, rc.to).await?;
    let abilities_run = latest_run_date(&ctx, ABILITIES, rc.to).await?;
    let batches = ctx
        .sql(DAILY_SQL)
        .await?
        .with_param_values(vec![
            ScalarValue::Utf8(Some(day_str(rc.from))),
            ScalarValue::Utf8(Some(day_str(rc.to))),
            ScalarValue::Utf8(topic_run.clone()),
            ScalarValue::Utf8(abilities_run.clone()),
        ])?
        .collect()
        .await?;
    let all = arrow::compute::concat_batches(
        &batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty())),
        &batches,
    )?;
    let mut out = FeaturesOutput {
        run_id: rc.run_id.clone(),
        from: day_str(rc.from),
        to: day_str(rc.to),
        days_written: 0,
        rows: 0,
        theta_sources: [0; 3],
        topic_theta_run: topic_run,
        abilities_run,
    };
    if all.num_rows() == 0 {
        return Ok(out);
    }
    let def = catalog::table(FEATURES_TOPIC_DAILY)?;
    let dt = all.column(0).as_string::<i32>().clone();
    let mut days: Vec<String> = (0..dt.len()).map(|i| dt.value(i).to_string()).collect();
    days.dedup();
    for day in days {
        let mask = arrow::compute::kernels::cmp::eq(&dt, &StringArray::new_scalar(day.as_str()))?;
        let part = filter_record_batch(&all, &mask)?;
        let n = part.num_rows();
        let src = part.column(10).as_string::<i32>();
        for i in 0..n {
            let k = if src.is_null(i) {
                2
            } else if src.value(i) == "topic" {
                0
            } else {
                1
            };
            out.theta_sources[k] += 1;
        }
        let mut cols: Vec<ArrayRef> =
            vec![Arc::new(StringArray::from(vec![rc.run_id.as_str(); n]))];
        for (field, src_col) in def.file_schema.fields().iter().skip(1).take(10).zip(1..=10) {
            cols.push(cast(part.column(src_col), field.data_type())?);
        }
        cols.push(Arc::new(
            TimestampMicrosecondArray::from(vec![rc.run_ts; n]).with_timezone("UTC"),
        ));
        let batch = RecordBatch::try_new(def.file_schema.clone(), cols)?;
        lake.write_partition(FEATURES_TOPIC_DAILY, &[("dt", &day)], &[batch])
            .await?;
        out.days_written += 1;
        out.rows += n;
    }
    Ok(out)
}
