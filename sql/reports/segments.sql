-- Segment of the students of one shard ($2 <= student_bucket < $3) in one segments
-- run ($1 = run_date).
SELECT student_id, segment_label
FROM user_segment
WHERE run_date = $1
  AND student_bucket_in(student_id, 0, $2, $3)
ORDER BY student_id
