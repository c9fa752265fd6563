-- The estimated items of calibration run $2 of run date $1, on the calibration's final
-- scale: not excluded, with a slope. An item left out here is left out of scoring.
SELECT item_id, a, b, c
FROM item_params
WHERE run_date = $1 AND run_id = $2 AND excluded_reason IS NULL AND a IS NOT NULL
ORDER BY item_id
