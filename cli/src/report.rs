//! `irtlake report`: the reports stage from the command line.
//!
//! Writes the week's student reports (all of this shard's students, or one with
//! `--student`) and the cohort report, records them in `report_artifacts`, and prints
//! where they are: a summary line, then `student report: PATH` and `cohort report: PATH`
//! (with their URLs) as the last lines, so scripts (`make demo`) can pick them up.

use std::time::Duration;

use anyhow::{Context, Result};
use lake::Lake;

/// Options of `irtlake report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The report week: its Monday, or any day of it. Default: the week of --run-date.
    #[arg(long, value_parser = crate::bounds::date)]
    pub week: Option<chrono::NaiveDate>,
    /// Show data as of this day (inside the week). Default: the week's Sunday, or today
    /// when neither option is given.
    #[arg(long, value_parser = crate::bounds::date)]
    pub run_date: Option<chrono::NaiveDate>,
    /// Only this student's report (also when they were not active that week).
    #[arg(long)]
    pub student: Option<String>,
    /// Also students not active that week (everyone with a θ in the calibration).
    #[arg(long)]
    pub all_students: bool,
    /// Language of the text: en or ko.
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// This shard, 0 to --shards − 1: the lake's student shard (the students whose
    /// `student_bucket(student_id, 0)` lies in its bucket range, as in every stage).
    #[arg(long, value_parser = crate::bounds::u32_in(0, u64::from(reports::MAX_SHARDS) - 1), default_value_t = 0)]
    pub shard: u32,
    /// Number of shards (1 to 1024, `reports::MAX_SHARDS`).
    #[arg(long, value_parser = crate::bounds::u32_in(1, u64::from(reports::MAX_SHARDS)), default_value_t = 1)]
    pub shards: u32,
    /// Lifetime of presigned URLs on S3, in seconds: default 1 day
    /// (`lake::DEFAULT_URL_EXPIRY`), at most 7 days.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=lake::MAX_URL_EXPIRY.as_secs()), env = "REPORT_URL_EXPIRY_SECS", default_value_t = reports::DEFAULT_URL_EXPIRY.as_secs())]
    pub url_expiry_secs: u64,
    /// Id written on every report_artifacts row (default reports-<as-of day>).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Time written on every row and in the reports (RFC 3339; default now).
    #[arg(long)]
    pub run_ts: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs `irtlake report`.
pub async fn run(lake: &Lake, args: ReportArgs) -> Result<()> {
    let run_date = match (args.week, args.run_date) {
        (None, None) => Some(chrono::Utc::now().date_naive()),
        (_, d) => d,
    };
    let input = reports::ReportsInput {
        run_date,
        run_ts: args.run_ts,
        week_start: args.week,
        shard: Some(args.shard),
        shards: Some(args.shards),
        student: args.student.clone(),
        lang: Some(args.lang.clone()),
        run_id: args.run_id,
        all_students: Some(args.all_students),
    };
    let out = reports::run(lake, &input, Duration::from_secs(args.url_expiry_secs))
        .await
        .with_context(|| format!("writing reports on {}", lake.uri()))?;
    println!(
        "reports for the week of {} (data as of {}, {}): {} student report(s) ({} student(s) active in the week){}, {:.1} MB in {:.2} s; {} row(s) in report_artifacts week_start={}",
        out.week_start,
        out.as_of,
        out.lang,
        out.student_reports,
        out.students_in_week,
        if out.shards > 1 {
            format!(" (shard {} of {})", out.shard, out.shards)
        } else {
            String::new()
        },
        out.bytes as f64 / 1e6,
        out.elapsed_ms as f64 / 1000.0,
        out.artifact_rows,
        out.week_start
    );
    for note in &out.notes {
        println!("note: {note}");
    }
    // Where the time went (`bench/stages.sh` prints this line under the wall time).
    println!("phases: {}", out.phases_ms);
    // URLs first, the two paths last (what `make demo` ends with).
    if let Some(a) = &out.first_student_report {
        println!("student report url: {}", a.url);
    }
    if let Some(a) = &out.cohort_report {
        println!("cohort report url: {}", a.url);
    }
    if let Some(a) = &out.first_student_report {
        println!(
            "student report ({}): {}",
            a.student_id.as_deref().unwrap_or_default(),
            a.location
        );
    }
    if let Some(a) = &out.cohort_report {
        println!("cohort report: {}", a.location);
    }
    Ok(())
}
