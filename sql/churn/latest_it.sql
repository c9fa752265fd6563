-- Each student's latest non-null I_t among the weeks starting from $2 (the Monday of
-- the churn window's first day) to $1 (the run date's week), of the students whose
-- student_bucket(student_id, 0) lies in [$3, $4) (a shard, or the fit sample). The
-- filters run in the scan, before the window function.
SELECT student_id, i_t
FROM (
    SELECT student_id, i_t,
           row_number() OVER (PARTITION BY student_id ORDER BY week_start DESC) AS rn
    FROM weekly_kpi
    WHERE week_start <= $1 AND week_start >= $2 AND i_t IS NOT NULL
      AND student_bucket_in(student_id, 0, $3, $4)
) latest
WHERE rn = 1
