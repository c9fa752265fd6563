//! A sharded pipeline equals an unsharded one (issue 13): the same small demo platform
//! in two lakes, `irtlake run` from calibrate with backfill, once with one shard and
//! once with four (every per-student stage then runs as four invocations of a
//! Distributed Map, each reading and writing only its students), and every table of the
//! two lakes holds the same rows.
//!
//! Exactly the same: at this size every cohort-fitted model (churn's Cox fit, growth's
//! cohort parameters, the k-means centroids) is fitted on its whole cohort in both runs
//! (the fit samples cap at tens of thousands of students), and every per-student value
//! is computed from the same inputs, so no tolerance is needed. The only text that
//! differs is the lake's own location inside report URLs, replaced before comparing, and
//! the measured wall time of a calibration (`fit_meta.elapsed_ms`), left out.

use std::path::Path;

use lake::Lake;

use crate::support::{irtlake_run, small_demo, temp_lake};

fn run(lake: &Lake, shards: &str) {
    let from = ["--from", "calibrate", "--all-subjects"];
    let backfill = ["--backfill-from", "2026-01-05", "--shards", shards];
    let out = irtlake_run(lake, &[&from[..], &backfill[..]].concat());
    assert!(
        out.status.success(),
        "irtlake run --shards {shards}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every row of `table`, one line each, sorted, with the lake's location replaced. Wall
/// times (`elapsed_ms`) are left out: they are measurements, not results.
async fn rows(lake: &Lake, dir: &Path, def: &lake::TableDef) -> Vec<String> {
    let table = def.name;
    let columns: Vec<String> = def
        .file_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .chain(def.partitions.iter().copied())
        .filter(|c| !c.contains("elapsed"))
        .map(|c| format!("\"{c}\""))
        .collect();
    let batches = lake
        .sql(&format!("SELECT {} FROM {table}", columns.join(", ")))
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"));
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    let root = dir.to_string_lossy().into_owned();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1) // the header
        .map(|l| l.replace(&root, "<lake>"))
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn four_shards_write_the_same_rows_as_one() {
    let (dir1, lake1) = temp_lake();
    let (dir4, lake4) = temp_lake();
    small_demo(&lake1, dir1.path(), 800, 11);
    small_demo(&lake4, dir4.path(), 800, 11);
    run(&lake1, "1");
    run(&lake4, "4");
    // The sharded lake holds per-shard objects; the unsharded one the single object.
    let objects = lake4.list("weekly_kpi/").await.unwrap();
    assert!(
        objects
            .iter()
            .any(|o| o.key.ends_with("part-0003-of-0004.parquet")),
        "no shard object in weekly_kpi: {objects:?}"
    );
    let mut compared = 0;
    for def in lake::TABLES.iter() {
        let one = rows(&lake1, dir1.path(), def).await;
        let four = rows(&lake4, dir4.path(), def).await;
        assert_eq!(
            one.len(),
            four.len(),
            "{}: {} rows unsharded, {} with 4 shards",
            def.name,
            one.len(),
            four.len()
        );
        if let Some((a, b)) = one.iter().zip(&four).find(|(a, b)| a != b) {
            panic!(
                "{}: rows differ\n  1 shard:  {a}\n  4 shards: {b}",
                def.name
            );
        }
        compared += one.len();
    }
    assert!(compared > 10_000, "only {compared} rows compared");
}
