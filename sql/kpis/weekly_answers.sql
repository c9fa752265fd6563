-- Answers of the days [$1, $2] of the students of one shard (student_bucket(student_id, 0)
-- in [$3, $4), lake::shard), with only what a weekly θ and accuracy need
-- (kpis::weekly_records, read by growth and reports): the student, the day (a date: its
-- week is computed from it), the question, the outcome, and what orders a student's
-- answers in time (completed_at, then attempt_id). Not sorted here: the stage keeps the
-- answers in a compact form and sorts them by interned ids, several times faster than a
-- sort of these rows by their strings.
-- The range on shard_bucket, the lake's copy of that bucket (null in objects written
-- before it), lets the scan skip other shards' pages: attempts are stored clustered
-- by it (README, Shards).
SELECT student_id, dt, question_id, correct, completed_at, attempt_id
FROM attempts
WHERE dt >= $1 AND dt <= $2
  AND student_bucket_in(student_id, 0, $3, $4)
  AND (shard_bucket IS NULL OR (shard_bucket >= $3 AND shard_bucket < $4))
