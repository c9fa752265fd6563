-- Per student active in the window [$1, $2] (days, inclusive): attempts, hints and
-- sessions, the activity inputs of the segment features; of the students of one shard
-- (student_bucket(student_id, 0) in [$3, $4)) and of the fit sample's buckets
-- (student_bucket(student_id, $5) < $6; $6 = 4096 takes every student), filtered in the
-- scan before any aggregation. One row per student, sorted by id.
--
-- Sessions: one per distinct session id of the student; attempts without a session id
-- count one session per day (as the kpis stage counts them). A session starts at its
-- first attempt (`completed_at`) inside the window.
-- Hints: hints used (null = 0).
-- Integer and min/max aggregates only: exact, so a re-run reads the same numbers.
-- The range on shard_bucket, the lake's copy of that bucket (null in objects written
-- before it), lets the scan skip other shards' pages: attempts are stored clustered
-- by it (README, Shards).
WITH att AS (
    SELECT student_id, dt, session_id, completed_at, coalesce(hints_used, 0) AS hints
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
      AND student_bucket_in(student_id, 0, $3, $4)
      AND (shard_bucket IS NULL OR (shard_bucket >= $3 AND shard_bucket < $4))
      AND student_bucket_in(student_id, $5, 0, $6)
),
session_starts AS (
    SELECT student_id, min(completed_at) AS started
    FROM att
    GROUP BY student_id, coalesce(session_id, concat('day:', dt))
),
sessions AS (
    SELECT student_id,
           count(*) AS sessions,
           min(started) AS first_start,
           max(started) AS last_start
    FROM session_starts
    GROUP BY student_id
),
activity AS (
    SELECT student_id, count(*) AS attempts, sum(hints) AS hints
    FROM att
    GROUP BY student_id
)
SELECT a.student_id,
       CAST(a.attempts AS BIGINT) AS attempts,
       CAST(a.hints AS BIGINT) AS hints,
       CAST(s.sessions AS BIGINT) AS sessions,
       s.first_start,
       s.last_start
FROM activity a
JOIN sessions s ON s.student_id = a.student_id
ORDER BY a.student_id
