-- KPIs of every student of one week ($1 = week_start): who gets a report, and the
-- cohort's KPI distributions.
SELECT student_id, i_t, a_t, e_t, r_t, s, p, sigma, method, n_responses
FROM weekly_kpi
WHERE week_start = $1
ORDER BY student_id
