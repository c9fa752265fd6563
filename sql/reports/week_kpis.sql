-- KPIs of one week ($1 = week_start) of the students of one shard
-- ($2 <= student_bucket < $3): who gets a report, and what it shows.
SELECT student_id, i_t, a_t, e_t, r_t, s, p, sigma, method, n_responses
FROM weekly_kpi
WHERE week_start = $1
  AND student_bucket(student_id, 0) >= $2 AND student_bucket(student_id, 0) < $3
ORDER BY student_id
