-- Attempts of the days [$1, $2] (the report week up to its as-of day) of the students
-- of one shard ($3 <= student_bucket < $4), with each attempt's subject (the attempt's
-- own, else its question's).
-- The range on shard_bucket, the lake's copy of that bucket (null in objects written
-- before it), lets the scan skip other shards' pages: attempts are stored clustered
-- by it (README, Shards).
SELECT a.student_id, a.question_id, COALESCE(a.subject_id, q.subject_id) AS subject_id,
       a.correct
FROM attempts a
LEFT JOIN questions q ON a.question_id = q.question_id
WHERE a.dt >= $1 AND a.dt <= $2
  AND student_bucket_in(a.student_id, 0, $3, $4)
  AND (a.shard_bucket IS NULL OR (a.shard_bucket >= $3 AND a.shard_bucket < $4))
ORDER BY a.student_id, a.completed_at, a.attempt_id
