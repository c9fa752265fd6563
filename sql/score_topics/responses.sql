-- Topic responses of the window [$1, $2] of the students of one shard
-- (student_bucket(student_id, 0) in [$3, $4), lake::shard; the predicate sits in the
-- scan, before the sort): every attempt on a question with a topic, sorted by student,
-- question and time. The stage reads the result as a stream, one student at a time,
-- and keeps the first row of each (student, question) — the student's first attempt on
-- it, as calibrate uses — instead of a window function over every attempt.
SELECT student_id, question_id, topic_id, correct
FROM attempts
WHERE dt >= $1 AND dt <= $2 AND topic_id IS NOT NULL
  AND student_bucket(student_id, 0) >= $3 AND student_bucket(student_id, 0) < $4
ORDER BY student_id, question_id, completed_at, attempt_id
