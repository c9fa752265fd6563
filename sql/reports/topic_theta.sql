-- Topic θ of one score_topics run ($1 = run_date) with each topic's subject.
SELECT t.student_id, t.topic_id, t.theta, t.se, t.n_responses
FROM student_topic_theta t
WHERE t.run_date = $1
ORDER BY t.student_id, t.topic_id
