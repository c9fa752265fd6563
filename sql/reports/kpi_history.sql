-- Weekly KPIs of the weeks [$1, $2] (week_start values) of the students of one shard
-- ($3 <= student_bucket < $4): the sparklines, and in the last week (the report week)
-- who gets a report and what it shows.
SELECT student_id, week_start, i_t, a_t, e_t, r_t, s, p, sigma, method, n_responses, p_model
FROM weekly_kpi
WHERE week_start >= $1 AND week_start <= $2
  AND student_bucket_in(student_id, 0, $3, $4)
ORDER BY student_id, week_start
