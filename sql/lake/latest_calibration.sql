-- The latest calibration of bank $1 with run_date on or before $2 (a day): its run,
-- and the linking constants that put its N(0, 1) on the anchor scale (null when it was
-- not linked). lake::runs::latest_calibration reads its items with
-- sql/calibrate/fitted_items.sql.
SELECT run_date, run_id, linking_a, linking_b
FROM fit_meta
WHERE bank = $1 AND run_date <= $2
ORDER BY run_date DESC
LIMIT 1
