//! Churn and growth split into student shards: four shard invocations write the same
//! per-student `s`, `p`, `sigma` as one unsharded run, each into its own object of the
//! week's `weekly_kpi` partition, and shard 0 writes the same `churn_fit` and
//! `growth_fit` — with the fit sample the whole cohort (the demo's size) and with a
//! fit sample smaller than the cohort (a cap below it), where most shards' students are
//! scored with a model fitted on other students. Every shard computes its own fits
//! (`lake::memo` off), as separate processes do; then, with the memo on, shards after
//! the first take growth's shared work from it and write the same bytes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch};
use chrono::{DateTime, Utc};
use lake::Lake;
use lake::catalog::WEEKLY_KPI;
use lake::runs::StageInput;
use lake::shard::Shard;

use crate::support::{day, render, temp_lake, values};

/// Run date (a Sunday) and its week.
const RUN: &str = "2026-02-15";
const WEEK: &str = "2026-02-09";
/// weekly_kpi columns in file order.
const KPI_COLUMNS: &str =
    "run_id, student_id, i_t, a_t, e_t, r_t, s, p, sigma, method, n_responses, updated_at, p_model";

fn input(shard: Shard) -> StageInput {
    StageInput {
        run_date: Some(day(RUN)),
        run_ts: Some("2026-02-16T03:00:00Z".parse::<DateTime<Utc>>().unwrap()),
        shard: Some(shard.index),
        shards: Some(shard.count),
        ..Default::default()
    }
}

/// Rewrites the week's `weekly_kpi` partition as `shards` shard objects (what kpis
/// writes with that shard count) with `s`, `p`, `sigma` cleared, so every value the
/// test reads afterwards was written by the runs under test.
async fn relayout(lake: &Lake, shards: u32) {
    let sql = format!(
        "SELECT {KPI_COLUMNS} FROM weekly_kpi WHERE week_start = '{WEEK}' ORDER BY student_id"
    );
    let rows = lake.sql(&sql).await.unwrap();
    let cleared: Vec<RecordBatch> = rows
        .into_iter()
        .map(|b| {
            let mut cols = b.columns().to_vec();
            for c in [6, 7, 8] {
                cols[c] = Arc::new(Float64Array::from(vec![None; b.num_rows()]));
            }
            cols[12] = Arc::new(arrow::array::StringArray::from(vec![
                None::<&str>;
                b.num_rows()
            ]));
            RecordBatch::try_new(b.schema(), cols).unwrap()
        })
        .collect();
    for k in 0..shards {
        let shard = Shard::new(k, shards).unwrap();
        let mine: Vec<RecordBatch> = cleared
            .iter()
            .map(|b| {
                let ids = b.column(1).as_string::<i32>();
                let keep: arrow::array::BooleanArray = (0..b.num_rows())
                    .map(|r| Some(shard.contains(ids.value(r))))
                    .collect();
                arrow::compute::filter_record_batch(b, &keep).unwrap()
            })
            .collect();
        lake.write_partition_shard(WEEKLY_KPI, &[("week_start", WEEK)], shard, &mine)
            .await
            .unwrap();
    }
    let objects = lake
        .list(&format!("weekly_kpi/week_start={WEEK}/"))
        .await
        .unwrap();
    assert_eq!(objects.len(), shards as usize, "{objects:?}");
}

/// Per-student values and cohort tables after one configuration of runs.
#[derive(Debug, PartialEq)]
struct Outcome {
    s: HashMap<String, f64>,
    p: HashMap<String, f64>,
    sigma: HashMap<String, f64>,
    p_model: String,
    churn_fit: String,
    growth_fit: String,
}

async fn outcome(lake: &Lake) -> Outcome {
    let col =
        |c: &str| format!("SELECT student_id, {c} FROM weekly_kpi WHERE week_start = '{WEEK}'");
    Outcome {
        s: values(lake, &col("s")).await,
        p: values(lake, &col("p")).await,
        sigma: values(lake, &col("sigma")).await,
        p_model: render(lake, &format!("{} ORDER BY student_id", col("p_model"))).await,
        churn_fit: render(
            lake,
            "SELECT * FROM churn_fit ORDER BY kind, term, time_days",
        )
        .await,
        growth_fit: render(
            lake,
            "SELECT * FROM growth_fit ORDER BY model, kind, term, group_id",
        )
        .await,
    }
}

/// Unsharded, then 4 shards (in reverse order, so shard 0 writes the cohort tables
/// last and a stale table could not go unnoticed), for one fit-sample cap; with `memo`
/// off every invocation fits its own models.
async fn compare(lake: &Lake, max_fit_students: u64, memo: bool) -> Outcome {
    lake::memo::set_enabled(memo);
    let churn_cfg = churn::ChurnConfig { max_fit_students };
    let growth_cfg = growth::GrowthConfig {
        max_fit_students,
        ..Default::default()
    };
    relayout(lake, 1).await;
    let c = churn::run_with(lake, &input(Shard::WHOLE), &churn_cfg)
        .await
        .unwrap();
    let g = growth::run_with(lake, &input(Shard::WHOLE), &growth_cfg)
        .await
        .unwrap();
    assert_eq!((c.status.as_str(), g.status.as_str()), ("fitted", "fitted"));
    assert!(
        !c.reused_shared_work && !g.reused_shared_work,
        "the first invocation of a run computes"
    );
    assert!(g.p_published, "{g:?}");
    let whole = outcome(lake).await;
    assert_eq!(whole.s.len(), c.s_written);
    assert_eq!(whole.p.len(), g.p_written);
    eprintln!(
        "cap {max_fit_students}: churn {} of {} students in the sample ({}), {} scored; growth {} of {} ({}), {} scored",
        c.students,
        c.cohort_students,
        c.fit_sample,
        c.scored,
        g.students,
        g.cohort_students,
        g.fit_sample,
        g.scored
    );

    relayout(lake, 4).await;
    let (mut s_written, mut p_written) = (0, 0);
    for k in (0..4).rev() {
        let shard = Shard::new(k, 4).unwrap();
        let cs = churn::run_with(lake, &input(shard), &churn_cfg)
            .await
            .unwrap();
        let gs = growth::run_with(lake, &input(shard), &growth_cfg)
            .await
            .unwrap();
        // with the memo, every invocation after the unsharded one takes its shared work
        assert_eq!(cs.reused_shared_work, memo, "{cs:?}");
        assert_eq!(gs.reused_shared_work, memo, "{gs:?}");
        // every shard fits the same models on the same sample
        assert_eq!(
            (cs.students, cs.events, cs.concordance, &cs.fit_sample),
            (c.students, c.events, c.concordance, &c.fit_sample),
            "{cs:?}"
        );
        assert_eq!(
            (gs.students, &gs.bayes.as_ref().unwrap().sigma, gs.goal),
            (g.students, &g.bayes.as_ref().unwrap().sigma, g.goal),
            "{gs:?}"
        );
        assert!(cs.scored > 0 && gs.scored > 0, "{cs:?} {gs:?}");
        let writes_fits = k == 0;
        assert_eq!(cs.churn_fit_rows > 0, writes_fits, "{cs:?}");
        assert_eq!(gs.growth_fit_rows > 0, writes_fits, "{gs:?}");
        assert_eq!(gs.reml.is_some(), writes_fits, "{gs:?}");
        if !writes_fits {
            assert!(
                cs.notes.iter().any(|n| n.contains("shard 0 writes")),
                "{cs:?}"
            );
            assert!(
                gs.notes.iter().any(|n| n.contains("shard 0 fits")),
                "{gs:?}"
            );
        }
        s_written += cs.s_written;
        p_written += gs.p_written;
    }
    assert_eq!((s_written, p_written), (c.s_written, g.p_written));
    let sharded = outcome(lake).await;
    assert_eq!(
        whole.s, sharded.s,
        "s differs between the sharded and unsharded runs"
    );
    assert_eq!(
        whole.p, sharded.p,
        "p differs between the sharded and unsharded runs"
    );
    assert_eq!(whole.sigma, sharded.sigma);
    assert_eq!(whole.p_model, sharded.p_model);
    assert_eq!(whole.churn_fit, sharded.churn_fit);
    assert_eq!(whole.growth_fit, sharded.growth_fit);
    whole
}

/// Growth alone in 4 shards (the production order: no unsharded run first), for one
/// cap; with `memo` on, shard 3 computes the run's shared work and shards 2..0 find it.
async fn growth_shards_only(lake: &Lake, max_fit_students: u64, memo: bool) -> Outcome {
    lake::memo::set_enabled(memo);
    let growth_cfg = growth::GrowthConfig {
        max_fit_students,
        ..Default::default()
    };
    relayout(lake, 4).await;
    for k in (0..4).rev() {
        let gs = growth::run_with(lake, &input(Shard::new(k, 4).unwrap()), &growth_cfg)
            .await
            .unwrap();
        assert_eq!(gs.reused_shared_work, memo && k != 3, "{gs:?}");
    }
    outcome(lake).await
}

/// 2,000 students over 42 days, calibrated and kpis'd at the last day; churn and growth
/// unsharded and in 4 shards, with the whole cohort as fit sample and with a cap of 700
/// students.
#[tokio::test]
async fn sharded_churn_and_growth_write_what_an_unsharded_run_writes() {
    let (dir, lake) = temp_lake();
    crate::support::demo_platform(&lake, &dir.path().join("truth"), [2000, 100, 42, 20], &[]);
    calibrate::run(&lake, &calibrate::CalibrateInput::new(day(RUN)))
        .await
        .unwrap();
    let kpi_input = StageInput {
        from: Some(day("2026-01-05")),
        ..input(Shard::WHOLE)
    };
    kpis::run(&lake, &kpi_input).await.unwrap();

    let everyone = compare(&lake, churn::DEFAULT_MAX_FIT_STUDENTS, false).await;
    let sampled = compare(&lake, 700, false).await;
    // the memo changes no byte: after an unsharded run, and with shards only
    assert_eq!(compare(&lake, 700, true).await, sampled);
    assert_eq!(
        growth_shards_only(&lake, 650, true).await,
        growth_shards_only(&lake, 650, false).await
    );
    // With the cap, the models are fitted on fewer students: other coefficients and
    // other scores, for the same students.
    assert_ne!(everyone.churn_fit, sampled.churn_fit);
    assert_eq!(
        everyone.s.keys().collect::<std::collections::BTreeSet<_>>(),
        sampled.s.keys().collect()
    );
    assert_ne!(everyone.s, sampled.s);
    assert_ne!(everyone.p, sampled.p);
    let n_blups = |fit: &str| fit.lines().filter(|l| l.contains("| blup ")).count();
    assert!(
        n_blups(&sampled.growth_fit) < n_blups(&everyone.growth_fit),
        "BLUPs are written for the fit sample's students only"
    );
}
