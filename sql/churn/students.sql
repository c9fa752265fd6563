-- Per student of a bucket range, from the attempts of the churn window [$2, $1] (dt,
-- inclusive; $1 = the run date, $2 = its first day): first and last active day in the
-- window, distinct sessions (attempts without a session id count one session per
-- day, as in the kpis stage), attempts, correct attempts and hints used (missing hint
-- counts are 0). Only students whose buckets student_bucket(student_id, 0) lie in
-- [$3, $4) (a shard, or the fit sample: buckets 0..k) and whose last active day is on
-- or after $5 (the run date's Monday for the scored students, $2 for the whole cohort).
-- The churn cohort and three of its covariates.
--
-- Memory: the bucket filter runs in the scan, before any aggregation. The sessions are
-- counted in two steps, one group per (student, session) and then one per student,
-- instead of a count(DISTINCT ...) per student: plain groups spill to disk under the
-- session's memory pool, distinct sets do not. Counts are integers so the result does
-- not depend on the order in which rows are aggregated.
-- The range on shard_bucket, the lake's copy of that bucket (null in objects written
-- before it), lets the scan skip other shards' pages: attempts are stored clustered
-- by it (README, Shards).
SELECT student_id,
       min(first_day) AS first_day,
       max(last_day) AS last_day,
       count(*) AS sessions,
       sum(attempts) AS attempts,
       sum(correct) AS correct,
       sum(hints) AS hints
FROM (
    SELECT student_id,
           min(dt) AS first_day,
           max(dt) AS last_day,
           count(*) AS attempts,
           sum(CASE WHEN correct THEN 1 ELSE 0 END) AS correct,
           sum(coalesce(hints_used, 0)) AS hints
    FROM attempts
    WHERE dt >= $2 AND dt <= $1
      AND student_bucket_in(student_id, 0, $3, $4)
      AND (shard_bucket IS NULL OR (shard_bucket >= $3 AND shard_bucket < $4))
    GROUP BY student_id, coalesce(session_id, concat('day:', dt))
) per_session
GROUP BY student_id
HAVING max(last_day) >= $5
ORDER BY student_id
