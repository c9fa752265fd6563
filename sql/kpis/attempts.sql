-- Attempts of the days [$1, $2] (a target week and the week before it) of the students
-- of one shard (student_bucket(student_id, 0) in [$3, $4), lake::shard) in time order
-- per student: what the weekly KPIs are computed from. The shard predicate sits in the
-- WHERE of the scan, so only the shard's rows are sorted; the stage reads the sorted
-- result as a stream, one student at a time. `dt` as its `YYYY-MM-DD` text: a session
-- without an id is the day's session `day:<dt>`, a string key (kpis::Attempt).
SELECT student_id, CAST(dt AS VARCHAR) AS dt, question_id, topic_id, session_id, correct, time_spent_ms
FROM attempts
WHERE dt >= $1 AND dt <= $2
  AND student_bucket_in(student_id, 0, $3, $4)
ORDER BY student_id, completed_at, attempt_id
