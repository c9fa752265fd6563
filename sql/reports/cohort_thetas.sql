-- Every finite θ of one calibration ($1 = run_date) of bank `all`, all shards, of the
-- students with a θ and an SE: the cohort the reports rank a θ in and whose
-- distribution the cohort report shows. One row per student: series 'theta', value θ
-- (the stage streams it sorted by value).
SELECT 'theta' AS series, theta AS value
FROM abilities
WHERE run_date = $1 AND bank = 'all'
  AND student_id IS NOT NULL AND theta IS NOT NULL AND se IS NOT NULL
  AND NOT isnan(theta) AND abs(theta) < CAST('inf' AS DOUBLE)
