-- Item parameters of one calibration ($1 = run_date, $2 = bank), excluded items too.
SELECT item_id, a, b, c, excluded_reason, is_anchor
FROM item_params
WHERE run_date = $1 AND bank = $2
ORDER BY item_id
