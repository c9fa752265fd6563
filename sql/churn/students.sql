-- Per student, from every attempt up to the run date $1 (inclusive): first and last
-- active day, distinct sessions (attempts without a session id count one session per
-- day, as in the kpis stage), attempts, accuracy and hints per item (missing hints
-- count 0). The churn cohort and three of its covariates.
SELECT student_id,
       min(dt) AS first_day,
       max(dt) AS last_day,
       count(DISTINCT coalesce(session_id, concat('day:', dt))) AS sessions,
       count(*) AS attempts,
       avg(CASE WHEN correct THEN 1.0 ELSE 0.0 END) AS accuracy,
       avg(CAST(coalesce(hints_used, 0) AS DOUBLE)) AS hints_per_item
FROM attempts
WHERE dt <= $1
GROUP BY student_id
ORDER BY student_id
