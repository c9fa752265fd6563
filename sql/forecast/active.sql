-- Active students per subject and day over the days [$1, $2] (days, inclusive), each with
-- their I_t of the week holding the day. $3 is the Monday of the week of $1 (first
-- weekly_kpi partition that can matter).
--
-- A student is active on a day in a subject when they made at least one attempt in it
-- (the attempt's subject, else its question's). `i_t` is the student's weekly_kpi.i_t
-- of the week (Monday, UTC) holding the day, null without one.
--
-- No floating-point aggregation here: means are taken by the stage in this row order,
-- so a re-run adds the same numbers in the same order (SQL aggregates merge partial
-- sums from parallel partitions in arrival order, which changes the last bits).
WITH active AS (
    SELECT DISTINCT a.dt,
           coalesce(a.subject_id, q.subject_id) AS subject_id,
           a.student_id
    FROM attempts a
    LEFT JOIN questions q ON q.question_id = a.question_id
    WHERE a.dt >= $1 AND a.dt <= $2
),
kpi AS (
    SELECT week_start, student_id, i_t
    FROM weekly_kpi
    WHERE week_start >= $3 AND week_start <= $2 AND i_t IS NOT NULL
)
SELECT ac.subject_id, ac.dt, ac.student_id, k.i_t
FROM active ac
LEFT JOIN kpi k
       ON k.student_id = ac.student_id
      AND k.week_start = CAST(date_trunc('week', ac.dt) AS DATE)
WHERE ac.subject_id IS NOT NULL
ORDER BY ac.subject_id, ac.dt, ac.student_id
