-- Topic θ of the students of one shard ($2 <= student_bucket < $3) in one
-- score_topics run ($1 = run_date).
SELECT t.student_id, t.topic_id, t.theta, t.se, t.n_responses
FROM student_topic_theta t
WHERE t.run_date = $1
  AND student_bucket_in(t.student_id, 0, $2, $3)
ORDER BY t.student_id, t.topic_id
