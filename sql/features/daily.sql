-- Daily features per student and topic for the days [$1, $2], with θ:
-- the topic θ of the student_topic_theta run $3 when present, else the student's
-- global θ of the `all`-bank abilities run $4, else null; of the students of one shard
-- (student_bucket(student_id, 0) in [$5, $6), lake::shard), the predicate in the WHERE
-- of every scan so that only the shard's rows are aggregated, joined and sorted. Sorted
-- by day: the stage reads the result as a stream and writes each day as it completes.
-- The range on shard_bucket, the lake's copy of that bucket (null in objects written
-- before it), lets the scan skip other shards' pages: attempts are stored clustered
-- by it (README, Shards).
WITH daily AS (
    SELECT dt, student_id, topic_id,
           count(*) AS attempts,
           sum(CASE WHEN correct THEN 1 ELSE 0 END) AS correct,
           avg(CAST(time_spent_ms AS DOUBLE)) AS avg_time_ms,
           coalesce(sum(hints_used), 0) AS hints
    FROM attempts
    WHERE dt >= $1 AND dt <= $2 AND topic_id IS NOT NULL
      AND student_bucket_in(student_id, 0, $5, $6)
      AND (shard_bucket IS NULL OR (shard_bucket >= $5 AND shard_bucket < $6))
    GROUP BY dt, student_id, topic_id
),
topic_theta AS (
    SELECT student_id, topic_id, theta, se FROM student_topic_theta
    WHERE run_date = $3
      AND student_bucket_in(student_id, 0, $5, $6)
),
global_theta AS (
    SELECT student_id, theta, se FROM abilities
    WHERE run_date = $4 AND bank = 'all'
      AND student_bucket_in(student_id, 0, $5, $6)
)
SELECT d.dt, d.student_id, d.topic_id,
       CAST(d.attempts AS BIGINT) AS attempts,
       CAST(d.correct AS BIGINT) AS correct,
       CAST(d.correct AS DOUBLE) / CAST(d.attempts AS DOUBLE) AS accuracy,
       d.avg_time_ms,
       CAST(d.hints AS BIGINT) AS hints,
       coalesce(t.theta, g.theta) AS theta_mean,
       CASE WHEN t.theta IS NOT NULL THEN t.se ELSE g.se END AS theta_sd,
       CASE WHEN t.theta IS NOT NULL THEN 'topic'
            WHEN g.theta IS NOT NULL THEN 'global' END AS theta_source
FROM daily d
LEFT JOIN topic_theta t ON t.student_id = d.student_id AND t.topic_id = d.topic_id
LEFT JOIN global_theta g ON g.student_id = d.student_id
ORDER BY d.dt, d.student_id, d.topic_id
