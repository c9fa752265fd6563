//! `irtlake demo-data`: writes the simulated platform of `models::sim::platform` into
//! the lake (`questions`, `attempts`) and its truth beside the lake (`truth/`).
//!
//! Day 0 of the simulation is `--start-date` (default 2026-01-05, a Monday, so weeks
//! line up with the lake's Monday weeks). The data are a pure function of the options.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use arrow::array::{
    ArrayRef, Float64Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use chrono::{Days, NaiveDate};
use futures::StreamExt;
use lake::Lake;
use lake::catalog::{self, ATTEMPTS, QUESTIONS};
use lake::columns::TableBatch;
use models::sim::platform::{Platform, PlatformConfig, SimAttempt, simulate_platform};

/// Options of `irtlake demo-data`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of students (1 to 10,000,000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 10_000_000), default_value_t = 10_000)]
    pub students: usize,
    /// Number of questions (1 to 100,000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 100_000), default_value_t = 400)]
    pub items: usize,
    /// Number of days of activity (1 to 3660).
    #[arg(long, value_parser = crate::bounds::u32_in(1, 3660), default_value_t = 60)]
    pub days: u32,
    /// Random seed (same seed, same platform).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of anchor questions (tagged `anchor`, with known parameters), 0 to --items.
    #[arg(long, value_parser = crate::bounds::usize_in(0, 100_000), default_value_t = 50)]
    pub anchors: usize,
    /// Anchors whose true difficulty drifts (planted for the drift screen; at most a
    /// tenth of --anchors drift; `truth/items.csv` says which and from when).
    #[arg(long, value_parser = crate::bounds::usize_in(0, 100_000), default_value_t = 3)]
    pub drifted_anchors: usize,
    /// Day (index, 0 = --start-date) from which the drifted anchors answer with the shift.
    #[arg(long, value_parser = crate::bounds::u32_in(0, 3660), default_value_t = 11)]
    pub drift_from_day: u32,
    /// Shift of the drifted anchors' true b, θ units (−5 to 5; negative: easier).
    #[arg(long, value_parser = crate::bounds::f64_in(-5.0, 5.0), default_value_t = -1.0, allow_hyphen_values = true)]
    pub drift_b_shift: f64,
    /// Date of day 0 (UTC).
    #[arg(long, value_parser = crate::bounds::date, default_value = "2026-01-05")]
    pub start_date: NaiveDate,
    /// Folder for the true parameters and abilities (not a lake table). Default:
    /// `truth` beside a local lake's folder, `./truth` for an S3 lake. A folder holding
    /// another lake's truth is never overwritten.
    #[arg(long)]
    pub truth_dir: Option<PathBuf>,
}

/// Where the truth files go: `--truth-dir`, else `truth` beside a local lake's folder,
/// else `./truth`.
fn truth_dir(lake: &Lake, args: &DemoArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.truth_dir {
        return Ok(dir.clone());
    }
    let root = lake.local_path("")?;
    Ok(root
        .as_deref()
        .and_then(std::path::Path::parent)
        .map_or_else(|| PathBuf::from("truth"), |p| p.join("truth")))
}

/// Refuses a truth folder that holds another lake's truth (its `platform.json` names
/// another lake); a folder without one, or of this lake, is rewritten.
fn check_truth_dir(dir: &std::path::Path, lake_uri: &str) -> Result<()> {
    let meta = dir.join("platform.json");
    let Ok(text) = std::fs::read_to_string(&meta) else {
        return Ok(());
    };
    let owner = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("lake").and_then(|l| l.as_str()).map(str::to_string));
    match owner {
        Some(other) if other != lake_uri => anyhow::bail!(
            "{} holds the truth of lake {other}, not of {lake_uri}: pass --truth-dir DIR \
             (or remove that folder); nothing was written",
            dir.display()
        ),
        _ => Ok(()),
    }
}

/// Generates the platform and writes it; prints a summary.
pub async fn demo_data(lake: &Lake, args: &DemoArgs) -> Result<()> {
    let truth = truth_dir(lake, args)?;
    check_truth_dir(&truth, &lake.uri().to_uri_string())?;
    let config = PlatformConfig {
        students: args.students,
        items: args.items,
        days: args.days,
        seed: args.seed,
        anchors: args.anchors,
        drifted_anchors: args.drifted_anchors,
        drift_from_day: args.drift_from_day,
        drift_b_shift: args.drift_b_shift,
        ..PlatformConfig::default()
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid demo options: {e}"))?;
    let t0 = Instant::now();
    let platform = simulate_platform(&config);
    let t_sim = t0.elapsed();
    tracing::info!(
        attempts = platform.attempts.len(),
        ?t_sim,
        "simulated the platform"
    );

    let questions = questions_batch(&platform)?;
    lake.write_partition(QUESTIONS, &[], &[questions])
        .await
        .context("writing table questions")?;

    let mut by_day: Vec<Vec<&SimAttempt>> = vec![Vec::new(); args.days as usize];
    for a in &platform.attempts {
        by_day[a.day as usize].push(a);
    }
    let bar = indicatif::ProgressBar::new(args.days as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} days")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("attempts");
    let start = args.start_date;
    let platform_ref = &platform;
    let mut writes = futures::stream::iter(
        by_day
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty()),
    )
    .map(|(day, rows)| async move {
        let date = start
            .checked_add_days(Days::new(day as u64))
            .context("date out of range")?;
        let dt = date.format("%Y-%m-%d").to_string();
        let batch = attempts_batch(platform_ref, &rows, date)?;
        lake.write_partition(ATTEMPTS, &[("dt", &dt)], &[batch])
            .await
            .with_context(|| format!("writing attempts partition dt={dt}"))?;
        anyhow::Ok(rows.len())
    })
    .buffer_unordered(4);
    let mut written = 0usize;
    while let Some(n) = writes.next().await {
        written += n?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    write_truth(&platform, args, &truth, &lake.uri().to_uri_string())
        .with_context(|| format!("writing truth files to {}", truth.display()))?;
    let anchors = platform.items.iter().filter(|i| i.is_anchor).count();
    println!(
        "demo platform: {} students, {} questions ({} anchors), {} attempts over {} days from {} (seed {}) in {:.2} s (simulation {:.2} s)",
        platform.students.len(),
        platform.items.len(),
        anchors,
        written,
        args.days,
        args.start_date,
        args.seed,
        t0.elapsed().as_secs_f64(),
        t_sim.as_secs_f64()
    );
    println!("lake: {}; truth: {}", lake.uri(), truth.display());
    Ok(())
}

fn questions_batch(p: &Platform) -> Result<RecordBatch> {
    let def = catalog::table(QUESTIONS)?;
    let mut tags = ListBuilder::new(StringBuilder::new()).with_field(
        match def.file_schema.field_with_name("tags")?.data_type() {
            arrow::datatypes::DataType::List(f) => f.clone(),
            other => anyhow::bail!("catalog: tags is {other}, expected a list"),
        },
    );
    for it in &p.items {
        for t in &it.tags {
            tags.values().append_value(t);
        }
        tags.append(true);
    }
    let known = |f: fn(&models::irt::ItemParams) -> f64| -> ArrayRef {
        Arc::new(
            p.items
                .iter()
                .map(|it| it.is_anchor.then(|| f(&it.params)))
                .collect::<Float64Array>(),
        )
    };
    let items = p.items.as_slice();
    Ok(TableBatch::new(QUESTIONS, p.items.len())?
        .set("question_id", text_column(items, |it| it.id.as_str()))?
        .set(
            "subject_id",
            text_column(items, |it| p.subjects[it.subject].id.as_str()),
        )?
        .set(
            "topic_id",
            text_column(items, |it| p.topics[it.topic].id.as_str()),
        )?
        .set("tags", Arc::new(tags.finish()))?
        .set("irt_a", known(|x| x.a))?
        .set("irt_b", known(|x| x.b))?
        .set("irt_c", known(|x| x.c))?
        .bools(
            "is_anchor",
            p.items.iter().map(|it| Some(it.is_anchor)).collect(),
        )?
        .finish()?)
}

/// A text column of one value per element of `items`.
fn text_column<'a, T>(items: &'a [T], f: impl Fn(&'a T) -> &'a str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(items.iter().map(f)))
}

fn attempts_batch(p: &Platform, rows: &[&SimAttempt], date: NaiveDate) -> Result<RecordBatch> {
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp_micros();
    let item = |a: &SimAttempt| &p.items[a.item as usize];
    let text = |values: Vec<String>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    let ints = |f: &dyn Fn(&SimAttempt) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|a| f(a))))
    };
    Ok(TableBatch::new(ATTEMPTS, rows.len())?
        .set(
            "attempt_id",
            text(
                rows.iter()
                    .map(|a| format!("att-{:08}", a.attempt_id))
                    .collect(),
            ),
        )?
        .set(
            "student_id",
            text_column(rows, |a| p.students[a.student as usize].id.as_str()),
        )?
        .set("question_id", text_column(rows, |a| item(a).id.as_str()))?
        .set(
            "subject_id",
            text_column(rows, |a| p.subjects[item(a).subject].id.as_str()),
        )?
        .set(
            "topic_id",
            text_column(rows, |a| p.topics[item(a).topic].id.as_str()),
        )?
        .set(
            "session_id",
            text(
                rows.iter()
                    .map(|a| format!("sess-{:07}", a.session))
                    .collect(),
            ),
        )?
        .bools("correct", rows.iter().map(|a| Some(a.correct)).collect())?
        .set(
            "completed_at",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    rows.iter()
                        .map(|a| midnight + a.second_of_day as i64 * 1_000_000),
                )
                .with_timezone("UTC"),
            ),
        )?
        .set("time_spent_ms", ints(&|a| a.time_spent_ms as i64))?
        .set("hints_used", ints(&|a| a.hints_used as i64))?
        .finish()?)
}

/// Writes `items.csv`, `students.csv`, `student_topics.csv` and `platform.json`.
fn write_truth(p: &Platform, args: &DemoArgs, dir: &std::path::Path, lake_uri: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut w = csv_file(dir, "items.csv")?;
    writeln!(
        w,
        "question_id,subject_id,topic_id,model,a,b,c,is_anchor,n_attempts,drift_from_date,drift_b_shift"
    )?;
    let counts = p.attempts_per_item();
    let date = |d: u32| {
        args.start_date
            .checked_add_days(Days::new(d as u64))
            .map(|x| x.to_string())
            .unwrap_or_default()
    };
    for (i, it) in p.items.iter().enumerate() {
        let (drift_from, drift_shift) = it
            .drift
            .map(|d| (date(d.from_day), format!("{:.6}", d.b_shift)))
            .unwrap_or_default();
        writeln!(
            w,
            "{},{},{},{},{:.6},{:.6},{:.6},{},{},{drift_from},{drift_shift}",
            it.id,
            p.subjects[it.subject].id,
            p.topics[it.topic].id,
            it.model,
            it.params.a,
            it.params.b,
            it.params.c,
            it.is_anchor,
            counts[i]
        )?;
    }
    let mut w = csv_file(dir, "students.csv")?;
    writeln!(
        w,
        "student_id,theta0,trajectory,slope_per_week,theta_end,primary_subject,sessions_per_week,hint_propensity,speed,start_day,start_date,churn_day,churn_date"
    )?;
    for s in &p.students {
        writeln!(
            w,
            "{},{:.6},{},{:.6},{:.6},{},{:.4},{:.4},{:.4},{},{},{},{}",
            s.id,
            s.theta0,
            s.trajectory.as_str(),
            s.slope_per_week,
            s.theta_at(args.days as f64 - 1.0),
            p.subjects[s.primary_subject].id,
            s.sessions_per_week,
            s.hint_propensity,
            s.speed,
            s.start_day,
            date(s.start_day),
            s.churn_day.map(|d| d.to_string()).unwrap_or_default(),
            s.churn_day.map(date).unwrap_or_default(),
        )?;
    }
    let mut w = csv_file(dir, "student_topics.csv")?;
    writeln!(w, "student_id,topic_id,offset")?;
    for s in &p.students {
        for (t, off) in s.topic_offsets.iter().enumerate() {
            writeln!(w, "{},{},{:.6}", s.id, p.topics[t].id, off)?;
        }
    }
    let meta = serde_json::json!({
        "lake": lake_uri,
        "seed": args.seed,
        "students": p.students.len(),
        "items": p.items.len(),
        "anchors": p.items.iter().filter(|i| i.is_anchor).count(),
        "drifted_anchors": p.items.iter().filter_map(|i| i.drift.map(|d| serde_json::json!({
            "question_id": i.id, "from_date": date(d.from_day), "b_shift": d.b_shift,
        }))).collect::<Vec<_>>(),
        "days": args.days,
        "attempts": p.attempts.len(),
        "start_date": args.start_date.to_string(),
        "end_date": date(args.days.saturating_sub(1)),
        "theta_at_day": "theta0 + slope_per_week * max(0, day - start_day) / 7; topic theta adds the topic offset",
    });
    std::fs::write(
        dir.join("platform.json"),
        serde_json::to_string_pretty(&meta)?,
    )?;
    Ok(())
}

fn csv_file(dir: &Path, name: &str) -> Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::new(
        std::fs::File::create(dir.join(name)).with_context(|| format!("creating {name}"))?,
    ))
}
