-- The bank's reference time per item (ms): the median time of the attempts of the
-- window [$1, $2].
SELECT median(time_spent_ms) AS t_ref
FROM attempts
WHERE dt >= $1 AND dt <= $2 AND time_spent_ms IS NOT NULL
