-- Items excluded from each bank's calibration of one run date ($1), by reason, with
-- the full bank id from fit_meta (the `bank` partition value is shortened when long).
SELECT coalesce(f.bank_id, f.bank) AS bank, p.excluded_reason, count(*) AS items
FROM item_params p
JOIN fit_meta f ON f.run_date = p.run_date AND f.bank = p.bank
WHERE p.run_date = $1 AND p.excluded_reason IS NOT NULL
GROUP BY coalesce(f.bank_id, f.bank), p.excluded_reason
ORDER BY coalesce(f.bank_id, f.bank), p.excluded_reason
