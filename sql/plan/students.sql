-- Students with at least one attempt in the window [$1, $2] (dates, inclusive): the
-- population the sharded stages split. A count over a GROUP BY: the aggregation holds
-- one entry per student and spills to disk beyond the session's memory pool.
SELECT count(*) AS students
FROM (
    SELECT student_id
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
    GROUP BY student_id
) AS active
