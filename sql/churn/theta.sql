-- Global θ from the `all`-bank abilities of the calibration run $1 (the latest one on
-- or before the run date) of the students whose student_bucket(student_id, 0) lies in
-- [$2, $3) (a shard, or the fit sample).
SELECT student_id, theta
FROM abilities
WHERE run_date = $1 AND bank = 'all'
  AND student_bucket_in(student_id, 0, $2, $3)
