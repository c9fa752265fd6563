-- Topic responses of the window [$1, $2] of the students of one shard
-- (student_bucket(student_id, 0) in [$3, $4), lake::shard; the predicate sits in the
-- scan): every attempt on a question with a topic, with what decides a student's first
-- attempt on a question (completed_at, then attempt_id, as calibrate uses). Not sorted
-- here: the stage keeps the first attempt of each (student, question) as the rows come
-- (interned ids, one hash lookup per row) and orders the kept ones by integer keys,
-- instead of a sort of every attempt by its strings.
-- The range on shard_bucket, the lake's copy of that bucket (null in objects written
-- before it), lets the scan skip other shards' pages: attempts are stored clustered
-- by it (README, Shards).
SELECT student_id, question_id, topic_id, correct, completed_at, attempt_id
FROM attempts
WHERE dt >= $1 AND dt <= $2 AND topic_id IS NOT NULL
  AND student_bucket_in(student_id, 0, $3, $4)
  AND (shard_bucket IS NULL OR (shard_bucket >= $3 AND shard_bucket < $4))
