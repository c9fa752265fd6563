//! The per-student stages score_topics, features, kpis and segments run in 4 shards
//! write exactly the rows of one unsharded run, each shard to its own objects; and
//! `kpis::weekly_thetas` of the 4 shards adds up to the unsharded one.

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::future::try_join_all;
use lake::Lake;
use lake::runs::StageInput;
use lake::shard::Shard;

use crate::stage_forecast::{DEMO_LAST_DAY, demo_lake, input};
use crate::support::day;

const SHARDS: u32 = 4;

/// The tables the four stages write, each with every column and a total order.
const TABLES: [(&str, &str); 4] = [
    (
        "student_topic_theta",
        "SELECT * FROM student_topic_theta ORDER BY run_date, student_id, topic_id",
    ),
    (
        "features_topic_daily",
        "SELECT * FROM features_topic_daily ORDER BY dt, student_id, topic_id",
    ),
    (
        "weekly_kpi",
        "SELECT * FROM weekly_kpi ORDER BY week_start, student_id",
    ),
    (
        "user_segment",
        "SELECT * FROM user_segment ORDER BY run_date, student_id",
    ),
];

/// Every row of `batches` as one line; floats in their shortest round-trip form, so
/// two lines are equal exactly when every value is.
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let opts = FormatOptions::default().with_null("∅");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter<'_>> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            let cells: Vec<String> = fmts.iter().map(|f| f.value(r).to_string()).collect();
            out.push(cells.join(" | "));
        }
    }
    out
}

async fn table_lines(lake: &Lake) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (_, sql) in TABLES {
        out.push(lines(&lake.sql(sql).await.unwrap()));
    }
    out
}

fn sharded(run_date: &str, from: Option<&str>, shard: u32) -> StageInput {
    StageInput {
        shard: Some(shard),
        shards: Some(SHARDS),
        ..input(run_date, from)
    }
}

#[tokio::test]
async fn four_shards_write_the_rows_of_one_unsharded_run() {
    // Unsharded: score_topics, features and kpis (in demo_lake), then segments.
    let (_dir, lake) = demo_lake().await;
    let whole_seg = segments::run(&lake, &input(DEMO_LAST_DAY, None))
        .await
        .unwrap();
    assert_eq!(whole_seg.status, "segmented", "{}", whole_seg.message);
    assert_eq!(
        whole_seg.fit_sample,
        "student_bucket<4096/4096 seed=20260105"
    );
    let whole = table_lines(&lake).await;
    for ((name, _), rows) in TABLES.iter().zip(&whole) {
        assert!(!rows.is_empty(), "{name} is empty");
    }
    let whole_thetas = kpis::weekly_thetas(
        &lake.session().unwrap(),
        day(DEMO_LAST_DAY),
        9,
        Shard::WHOLE,
    )
    .await
    .unwrap();
    assert!(!whole_thetas.is_empty());

    // The same stages in 4 shards over the same lake, the shards of each stage at once.
    let day_inputs: Vec<StageInput> = (0..SHARDS)
        .map(|k| sharded(DEMO_LAST_DAY, None, k))
        .collect();
    let range_inputs: Vec<StageInput> = (0..SHARDS)
        .map(|k| sharded(DEMO_LAST_DAY, Some("2026-01-05"), k))
        .collect();
    let st = try_join_all(day_inputs.iter().map(|i| score_topics::run(&lake, i)))
        .await
        .unwrap();
    let ft = try_join_all(range_inputs.iter().map(|i| features::run(&lake, i)))
        .await
        .unwrap();
    let kp = try_join_all(range_inputs.iter().map(|i| kpis::run(&lake, i)))
        .await
        .unwrap();
    let sg = try_join_all(day_inputs.iter().map(|i| segments::run(&lake, i)))
        .await
        .unwrap();

    // Each shard did its own part: the shards' counts add up to the whole's rows.
    let [topic_rows, feature_rows, kpi_rows, segment_rows] = [0, 1, 2, 3].map(|i| whole[i].len());
    assert_eq!(st.iter().map(|o| o.rows).sum::<usize>(), topic_rows);
    assert_eq!(ft.iter().map(|o| o.rows).sum::<usize>(), feature_rows);
    assert_eq!(kp.iter().map(|o| o.rows).sum::<usize>(), kpi_rows);
    assert_eq!(sg.iter().map(|o| o.students).sum::<usize>(), segment_rows);
    // The shards ran at once in one process under one memo key (lake::memo): one began
    // the run's shared work, the others found it (kpis' rewrite of weekly_kpi above
    // made it a new key, so none found the unsharded run's).
    assert_eq!(
        sg.iter().filter(|o| !o.reused_shared_work).count(),
        1,
        "{:?}",
        sg.iter().map(|o| o.reused_shared_work).collect::<Vec<_>>()
    );
    assert_eq!(
        sg.iter().map(|o| o.active_students).sum::<usize>(),
        whole_seg.active_students
    );
    for (i, o) in st.iter().enumerate() {
        assert!(
            o.rows > 0 && o.rows < topic_rows,
            "score_topics shard {i}: {} rows",
            o.rows
        );
        assert_eq!(o.shard, format!("shard {i} of {SHARDS}"));
    }
    // Cohort-wide quantities are the same on every shard: the reference time and the
    // clustering (fitted on the same sample, here everyone).
    for o in &kp {
        assert_eq!(o.t_ref_ms, kp[0].t_ref_ms);
    }
    for o in &sg {
        assert_eq!(o.status, "segmented", "{}", o.message);
        assert_eq!(
            (&o.fit_sample, o.fit_students, o.k, o.silhouette),
            (
                &whole_seg.fit_sample,
                whole_seg.fit_students,
                whole_seg.k,
                whole_seg.silhouette
            )
        );
        let centres: Vec<_> = o.clusters.iter().map(|c| (&c.centre, &c.label)).collect();
        let whole_centres: Vec<_> = whole_seg
            .clusters
            .iter()
            .map(|c| (&c.centre, &c.label))
            .collect();
        assert_eq!(centres, whole_centres);
    }

    // The same rows, value for value.
    let after = table_lines(&lake).await;
    for (((name, _), w), s) in TABLES.iter().zip(&whole).zip(&after) {
        assert_eq!(w.len(), s.len(), "{name}: rows");
        if let Some((i, (a, b))) = w.iter().zip(s).enumerate().find(|(_, (a, b))| a != b) {
            panic!("{name}: row {i} differs:\n unsharded {a}\n sharded   {b}");
        }
    }

    // Written as the shards' own objects; the unsharded objects were swept.
    for (name, _) in TABLES {
        let objects = lake.list(name).await.unwrap();
        assert!(!objects.is_empty(), "{name}");
        for o in &objects {
            assert!(
                o.key.ends_with(&format!("-of-{SHARDS:04}.parquet")),
                "{name}: {}",
                o.key
            );
        }
    }

    // weekly_thetas (growth, reports) of the shards adds up to the unsharded one.
    let mut by_shard = Vec::new();
    for k in 0..SHARDS {
        let shard = Shard::new(k, SHARDS).unwrap();
        let part = kpis::weekly_thetas(&lake.session().unwrap(), day(DEMO_LAST_DAY), 9, shard)
            .await
            .unwrap();
        assert!(part.iter().all(|w| shard.contains(&w.student_id)));
        by_shard.extend(part);
    }
    by_shard.sort_by(|a, b| (&a.student_id, a.week_start).cmp(&(&b.student_id, b.week_start)));
    assert_eq!(by_shard, whole_thetas);
}

/// Segments fitted on a sample (a cap of 1000 of the demo's 3000 active students): the
/// shards draw the same sample and fit the same centres, so 4 shards still write the
/// rows of the unsharded run, and every student is assigned.
#[tokio::test]
async fn segments_on_a_fit_sample_agree_across_shards() {
    // Every invocation fits its own centres, as separate processes do.
    lake::memo::set_enabled(false);
    let (_dir, lake) = demo_lake().await;
    let cap = 1000;
    let whole = segments::run_with_fit_cap(&lake, &input(DEMO_LAST_DAY, None), cap)
        .await
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&whole).unwrap());
    assert_eq!(whole.status, "segmented", "{}", whole.message);
    assert!(
        whole.fit_sample.starts_with("student_bucket<") && !whole.fit_sample.contains("<4096/"),
        "{}",
        whole.fit_sample
    );
    // Buckets hold ~0.7 students each here: the sample stops within a few of the cap.
    assert!(
        whole.fit_students <= cap as usize && whole.fit_students > cap as usize - 20,
        "{} students in the fit sample",
        whole.fit_students
    );
    assert_eq!(
        whole.students,
        whole.active_students - whole.excluded_no_kpis
    );
    let sql = "SELECT * FROM user_segment ORDER BY run_date, student_id";
    let before = lines(&lake.sql(sql).await.unwrap());
    assert_eq!(before.len(), whole.students);

    let inputs: Vec<StageInput> = (0..SHARDS)
        .map(|k| sharded(DEMO_LAST_DAY, None, k))
        .collect();
    // the shards at once
    let all_shards = || {
        try_join_all(
            inputs
                .iter()
                .map(|i| segments::run_with_fit_cap(&lake, i, cap)),
        )
    };
    let sg = all_shards().await.unwrap();
    for o in &sg {
        assert_eq!(
            (&o.status, &o.fit_sample, o.fit_students, o.k, o.silhouette),
            (
                &whole.status,
                &whole.fit_sample,
                whole.fit_students,
                whole.k,
                whole.silhouette
            )
        );
    }
    assert_eq!(sg.iter().map(|o| o.students).sum::<usize>(), whole.students);
    let after = lines(&lake.sql(sql).await.unwrap());
    assert_eq!(before.len(), after.len());
    if let Some((i, (a, b))) = before
        .iter()
        .zip(&after)
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!("user_segment row {i} differs:\n unsharded {a}\n sharded   {b}");
    }

    // With the memo, the shards share one run's work: the same rows.
    lake::memo::set_enabled(true);
    let memo = all_shards().await.unwrap();
    assert_eq!(memo.iter().filter(|o| !o.reused_shared_work).count(), 1);
    assert_eq!(lines(&lake.sql(sql).await.unwrap()), after);
}
