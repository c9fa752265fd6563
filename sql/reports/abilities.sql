-- θ of the students of one shard ($2 <= student_bucket < $3) in one calibration
-- ($1 = run_date) of bank `all`: the student's current θ.
SELECT student_id, theta, se, n_responses
FROM abilities
WHERE run_date = $1 AND bank = 'all'
  AND student_bucket_in(student_id, 0, $2, $3)
ORDER BY student_id
