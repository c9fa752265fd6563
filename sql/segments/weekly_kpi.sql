-- Weekly I_t and E_t per student for the weeks overlapping the window: week_start in
-- [$1, $2] ($1 = Monday of the window's first day, $2 = the run date), of the students
-- selected as in students.sql ($3 .. $6). Ordered by
-- student and week: the stage averages them itself in this order (no floating-point
-- SQL aggregate, whose parallel partial sums merge in arrival order), so a re-run
-- writes the same bytes.
SELECT student_id, week_start, i_t, e_t
FROM weekly_kpi
WHERE week_start >= $1 AND week_start <= $2
  AND student_bucket_in(student_id, 0, $3, $4)
  AND student_bucket_in(student_id, $5, 0, $6)
ORDER BY student_id, week_start
