-- Weekly KPIs of the weeks [$1, $2] (week_start values) for the sparklines.
SELECT student_id, week_start, i_t, a_t, e_t, r_t, s, p
FROM weekly_kpi
WHERE week_start >= $1 AND week_start <= $2
ORDER BY student_id, week_start
