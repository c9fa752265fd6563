-- Students per segment in one segments run ($1 = run_date), all shards.
SELECT segment_label, count(*) AS students
FROM user_segment
WHERE run_date = $1 AND student_id IS NOT NULL AND segment_label IS NOT NULL
GROUP BY segment_label
ORDER BY segment_label
