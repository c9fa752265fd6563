-- Attempts of the days [$1, $2] (the weeks of one scan and the week before them) of the
-- students of one shard (student_bucket(student_id, 0) in [$3, $4), lake::shard): what
-- the weekly KPIs are computed from. Not sorted here: the stage keeps the attempts in a
-- compact form (ids interned) and sorts each student's attempts in time order
-- (completed_at, then attempt_id) by integer keys, several times faster than a sort of
-- these rows by their strings (kpis::ShardAttempts).
-- The range on shard_bucket, the lake's copy of that bucket (null in objects written
-- before it), lets the scan skip other shards' pages: attempts are stored clustered
-- by it (README, Shards).
SELECT student_id, dt, question_id, topic_id, session_id, correct, time_spent_ms,
       completed_at, attempt_id
FROM attempts
WHERE dt >= $1 AND dt <= $2
  AND student_bucket_in(student_id, 0, $3, $4)
  AND (shard_bucket IS NULL OR (shard_bucket >= $3 AND shard_bucket < $4))
