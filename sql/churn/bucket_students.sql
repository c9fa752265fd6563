-- Students of the churn cohort (at least one attempt in the churn window [$1, $2], dt
-- inclusive) per student bucket, student_bucket(student_id, 0): the stage draws its
-- fit sample as a prefix of these buckets. Memory: one group per student of the window
-- (a plain aggregation, which spills under the session's memory pool), then one per
-- bucket.
SELECT student_bucket(student_id, 0) AS bucket, count(*) AS students
FROM (
    SELECT student_id
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
    GROUP BY student_id
) cohort
GROUP BY student_bucket(student_id, 0)
