-- History of the mean-θ forecast series over the days [$1, $2], as the forecast stage
-- defines it: a student's θ on a day in a subject is the mean topic θ
-- (features_topic_daily.theta_mean) over their topics of the subject that day; the
-- series is the mean over the students that have one.
WITH topic_subject AS (
  SELECT DISTINCT topic_id, subject_id FROM questions
  WHERE topic_id IS NOT NULL AND subject_id IS NOT NULL
),
per_student AS (
  SELECT f.dt, ts.subject_id, f.student_id, avg(f.theta_mean) AS theta
  FROM features_topic_daily f
  JOIN topic_subject ts ON f.topic_id = ts.topic_id
  WHERE f.dt >= $1 AND f.dt <= $2 AND f.theta_mean IS NOT NULL
  GROUP BY f.dt, ts.subject_id, f.student_id
)
SELECT dt, subject_id, avg(theta) AS mean_theta
FROM per_student
GROUP BY dt, subject_id
ORDER BY dt, subject_id
