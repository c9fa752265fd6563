-- Students with attempts in at least two weeks (Monday-based) of the growth window
-- [$1, $2] (dt, inclusive; $1 = the Monday of the first week, $2 = the run date) per
-- student bucket, student_bucket(student_id, 0): an upper bound of the students with
-- two weekly θ (a weekly θ also needs enough calibrated responses in its week), from
-- which the stage draws its fit sample as a prefix of buckets. Memory: one group per
-- (student, week), then one per student, then one per bucket; plain aggregations,
-- which spill under the session's memory pool.
SELECT student_bucket(student_id, 0) AS bucket, count(*) AS students
FROM (
    SELECT student_id
    FROM (
        SELECT student_id, date_trunc('week', CAST(dt AS TIMESTAMP)) AS week
        FROM attempts
        WHERE dt >= $1 AND dt <= $2
        GROUP BY student_id, date_trunc('week', CAST(dt AS TIMESTAMP))
    ) student_weeks
    GROUP BY student_id
    HAVING count(*) >= 2
) modelled
GROUP BY student_bucket(student_id, 0)
