-- Segment of every student in one segments run ($1 = run_date).
SELECT student_id, segment_label
FROM user_segment
WHERE run_date = $1
ORDER BY student_id
