-- Items excluded from each bank's calibration of one run date ($1), by reason.
SELECT bank, excluded_reason, count(*) AS items
FROM item_params
WHERE run_date = $1 AND excluded_reason IS NOT NULL
GROUP BY bank, excluded_reason
ORDER BY bank, excluded_reason
