-- θ of every student in one calibration ($1 = run_date) of bank `all`: the student's
-- current θ and the cohort it is ranked in.
SELECT student_id, theta, se, n_responses
FROM abilities
WHERE run_date = $1 AND bank = 'all'
ORDER BY student_id
