-- Students with KPIs in one week ($1 = week_start), all shards.
SELECT count(DISTINCT student_id) AS students
FROM weekly_kpi
WHERE week_start = $1
