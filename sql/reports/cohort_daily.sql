-- History of the forecast series over the days [$1, $2], defined as the forecast stage
-- defines them: per day and subject, the active students (≥ 1 attempt in the subject)
-- and the mean weekly I_t of those that have one that week.
WITH active AS (
  SELECT DISTINCT a.dt, COALESCE(a.subject_id, q.subject_id) AS subject_id, a.student_id
  FROM attempts a
  LEFT JOIN questions q ON a.question_id = q.question_id
  WHERE a.dt >= $1 AND a.dt <= $2
)
SELECT active.dt, active.subject_id, count(*) AS active_students, avg(k.i_t) AS mean_i_t
FROM active
LEFT JOIN weekly_kpi k
  ON k.student_id = active.student_id
 AND k.week_start = CAST(date_trunc('week', active.dt) AS DATE)
WHERE active.subject_id IS NOT NULL
GROUP BY active.dt, active.subject_id
ORDER BY active.dt, active.subject_id
