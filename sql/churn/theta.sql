-- Global θ of every student from the `all`-bank abilities of the calibration run $1
-- (the latest one on or before the run date).
SELECT student_id, theta
FROM abilities
WHERE run_date = $1 AND bank = 'all'
