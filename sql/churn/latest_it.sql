-- Each student's latest non-null I_t among the weeks starting on or before $1
-- (the run date's week).
SELECT student_id, i_t
FROM (
    SELECT student_id, i_t,
           row_number() OVER (PARTITION BY student_id ORDER BY week_start DESC) AS rn
    FROM weekly_kpi
    WHERE week_start <= $1 AND i_t IS NOT NULL
) latest
WHERE rn = 1
