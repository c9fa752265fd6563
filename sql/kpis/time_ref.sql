-- The bank's reference time per item (ms) is the median time of every attempt of the
-- window [$1, $2] (all students, whatever the shard, so every shard uses the same
-- reference). The median is taken by the stage from these counts per distinct time:
-- one group per distinct time_spent_ms (bounded by the range of times, not by the
-- number of students or attempts), where SQL median would hold every attempt's time.
SELECT time_spent_ms, count(*) AS attempts
FROM attempts
WHERE dt >= $1 AND dt <= $2 AND time_spent_ms IS NOT NULL
GROUP BY time_spent_ms
