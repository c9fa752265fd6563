-- Students active in the window [$1, $2] (days, inclusive) per fit bucket
-- student_bucket(student_id, $3) ($3 = the fit sample's seed, lake::shard): the segments
-- stage grows its k-means fit sample bucket by bucket from these counts, so every shard
-- draws the same sample. One group per active student inside (spilled to disk past the
-- query pool), 4096 rows out.
SELECT bucket, CAST(count(*) AS BIGINT) AS students
FROM (
    SELECT student_bucket(student_id, $3) AS bucket
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
    GROUP BY student_id
) s
GROUP BY bucket
