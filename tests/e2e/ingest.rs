//! Ingest: happy paths (CSV and Parquet, idempotence) and every bad input of the
//! contract, each leaving the lake exactly as it was.

use lake::ingest::{ingest_attempts, ingest_questions};

use crate::support::count;
use crate::support::{ATTEMPTS_CSV, QUESTIONS_CSV, temp_lake, write_file};

#[tokio::test]
async fn csv_ingest_partitions_by_day_fills_topics_and_is_idempotent() {
    let (dir, lake) = temp_lake();
    let q = write_file(dir.path(), "questions.csv", QUESTIONS_CSV);
    let r = ingest_questions(&lake, &q).await.unwrap();
    assert_eq!((r.rows_read, r.inserted, r.anchors, r.total), (4, 4, 1, 4));
    let a = write_file(dir.path(), "attempts.csv", ATTEMPTS_CSV);
    let r = ingest_attempts(&lake, &a).await.unwrap();
    assert_eq!(r.rows_written, 4);
    assert_eq!(r.partitions_written, vec!["2026-03-02", "2026-03-03"]);
    assert_eq!(count(&lake, "SELECT count(*) FROM attempts WHERE dt = '2026-03-03' AND topic_id = 'geo' AND subject_id = 'math'").await, 2);
    assert_eq!(
        count(
            &lake,
            "SELECT count(*) FROM questions WHERE is_anchor AND irt_a = 1.2 AND irt_c = 0"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &lake,
            "SELECT count(*) FROM questions WHERE array_has(tags, 'hard')"
        )
        .await,
        1
    );
    // the same files again: all duplicates, the lake does not change at all
    let before = lake.list("").await.unwrap();
    let r = ingest_attempts(&lake, &a).await.unwrap();
    assert_eq!((r.rows_written, r.duplicates_dropped), (0, 4));
    let r = ingest_questions(&lake, &q).await.unwrap();
    assert_eq!((r.inserted, r.updated), (0, 4));
    assert_eq!(lake.list("").await.unwrap(), before);
}

#[tokio::test]
async fn parquet_ingest_and_duplicates_and_unknown_questions() {
    let (dir, lake) = temp_lake();
    ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    ingest_attempts(&lake, &write_file(dir.path(), "a.csv", ATTEMPTS_CSV))
        .await
        .unwrap();
    // a lake partition object is a valid attempts Parquet file (typed columns)
    let obj = lake.list("attempts").await.unwrap()[0].key.clone();
    let pq = dir.path().join("export.parquet");
    std::fs::write(&pq, lake.get_object(&obj).await.unwrap()).unwrap();
    let (_d2, other) = temp_lake();
    ingest_questions(&other, &write_file(dir.path(), "q2.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    let r = ingest_attempts(&other, &pq).await.unwrap();
    assert_eq!(r.rows_written, 2);
    assert_eq!(
        count(&other, "SELECT count(*) FROM attempts WHERE correct").await,
        1
    );
    // duplicates inside a file and unknown questions are dropped and counted
    let csv = "attempt_id,student_id,question_id,correct,completed_at\n\
        b1,s9,q1,1,2026-03-05T10:00:00Z\n\
        b1,s9,q1,0,2026-03-05T10:01:00Z\n\
        b2,s9,zzz,1,2026-03-05T10:02:00Z\n\
        a1,s1,q1,1,2026-03-02T09:00:00Z\n";
    let r = ingest_attempts(&lake, &write_file(dir.path(), "dups.csv", csv))
        .await
        .unwrap();
    assert_eq!(r.rows_written, 1);
    assert_eq!(r.duplicates_dropped, 2);
    assert_eq!(r.unknown_question_rows, 1);
    assert_eq!(r.unknown_question_examples, vec!["zzz"]);
}

/// Each bad file is refused with a message naming file, row and column; the lake is unchanged.
#[tokio::test]
async fn bad_input_is_refused_and_lake_unchanged() {
    let (dir, lake) = temp_lake();
    ingest_questions(&lake, &write_file(dir.path(), "q.csv", QUESTIONS_CSV))
        .await
        .unwrap();
    ingest_attempts(&lake, &write_file(dir.path(), "a.csv", ATTEMPTS_CSV))
        .await
        .unwrap();
    let before = lake.list("").await.unwrap();
    let head = "attempt_id,student_id,question_id,correct,completed_at,time_spent_ms\n";
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "missing.csv",
            "attempt_id,student_id,correct,completed_at\nx,s,1,2026-03-05T10:00:00Z\n".into(),
            &["missing required column", "question_id"],
        ),
        (
            "correct.csv",
            format!("{head}x1,s,q1,1,2026-03-05T10:00:00Z,1\nx2,s,q1,yes,2026-03-05T10:00:00Z,1\n"),
            &["row 2 (line 3)", "'correct'", "'yes'"],
        ),
        (
            "correct2.csv",
            format!("{head}x1,s,q1,2,2026-03-05T10:00:00Z,1\n"),
            &["row 1 (line 2)", "'correct'"],
        ),
        (
            "ts.csv",
            format!("{head}x1,s,q1,1,05/03/2026 10:00,1\n"),
            &["'completed_at'", "05/03/2026"],
        ),
        (
            "year1.csv",
            format!("{head}x1,s,q1,1,0001-01-01T00:00:00Z,1\n"),
            &[
                "row 1 (line 2)",
                "'completed_at'",
                "0001-01-01",
                "outside 2000-01-01",
            ],
        ),
        (
            "future.csv",
            format!("{head}x1,s,q1,1,2999-03-05T10:00:00Z,1\n"),
            &["'completed_at'", "2999-03-05", "outside"],
        ),
        (
            "type.csv",
            format!("{head}x1,s,q1,1,2026-03-05T10:00:00Z,fast\n"),
            &["'time_spent_ms'", "'fast'"],
        ),
        (
            "empty_id.csv",
            format!("{head},s,q1,1,2026-03-05T10:00:00Z,1\n"),
            &["'attempt_id'", "missing"],
        ),
        ("ragged.csv", format!("{head}x1,s,q1,1\n"), &["line 2"]),
        (
            "corrupt.parquet",
            "PAR1 this is not parquet".into(),
            &["corrupt.parquet", "not a readable Parquet file"],
        ),
    ];
    for (name, text, needles) in cases {
        let p = write_file(dir.path(), name, &text);
        let err = ingest_attempts(&lake, &p)
            .await
            .expect_err(name)
            .to_string();
        assert!(err.contains(name), "{name}: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: '{n}' not in: {err}");
        }
        assert_eq!(
            lake.list("").await.unwrap(),
            before,
            "{name} changed the lake"
        );
    }
    let qcases: Vec<(&str, &str, &str)> = vec![
        (
            "q_anchor.csv",
            "question_id,tags,irt_a,irt_b\nqa,anchor,-1,0\n",
            "irt_a > 0",
        ),
        (
            "q_anchor2.csv",
            "question_id,tags,irt_a,irt_b,irt_c\nqa,anchor,1,0,1.5\n",
            "irt_c",
        ),
        (
            "q_anchor3.csv",
            "question_id,tags\nqa,anchor\n",
            "known parameters",
        ),
        (
            "q_dup.csv",
            "question_id\nqa\nqa\n",
            "already appears on row 1",
        ),
        ("q_num.csv", "question_id,irt_b\nqa,hard\n", "'irt_b'"),
    ];
    for (name, text, needle) in qcases {
        let p = write_file(dir.path(), name, text);
        let err = ingest_questions(&lake, &p)
            .await
            .expect_err(name)
            .to_string();
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
        assert_eq!(
            lake.list("").await.unwrap(),
            before,
            "{name} changed the lake"
        );
    }
    // attempts into a lake without questions: refused with advice
    let (_d, empty) = temp_lake();
    let err = ingest_attempts(&empty, &write_file(dir.path(), "a2.csv", ATTEMPTS_CSV))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ingest questions first"), "{err}");
    assert!(empty.list("").await.unwrap().is_empty());
}
