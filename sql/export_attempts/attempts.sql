-- The platform's attempts in the window [$1, $2) (PostgreSQL), read in pages through a
-- portal. $1 = first day 00:00 UTC, $2 = the day after the last day, 00:00 UTC.
-- Every value but completed_at is read as text and validated by the stage, so any
-- column type of the view works (integer or uuid ids, boolean or 0/1 correct).
-- Ordered by time, then id: each UTC day arrives in one piece and in the same order on
-- every run, so a re-run writes identical bytes.
SELECT a.id::text                       AS attempt_id,
       a.student_id::text               AS student_id,
       a.question_id::text              AS question_id,
       a.correct::text                  AS correct,
       a.completed_at::timestamptz      AS completed_at,
       a.time_spent_ms::text            AS time_spent_ms,
       a.hints_used::text               AS hints_used,
       a.session_id::text               AS session_id
FROM attempt a
WHERE a.completed_at >= $1::timestamptz
  AND a.completed_at <  $2::timestamptz
ORDER BY a.completed_at, a.id::text
