-- Misfitting items of every calibration on or before $1 (the as-of day), every bank: S-X²
-- p below 0.01 (where the bank has S-X²), or an infit or outfit mean square outside
-- [0.7, 1.3] (Wright & Linacre's range for productive measurement), with the full bank
-- id. The report lists those of each bank's latest run and charts their count by run.
SELECT coalesce(f.bank_id, f.bank) AS bank, p.run_date, p.item_id, p.s_x2, p.df_s_x2, p.p_s_x2,
       p.infit, p.outfit
FROM item_params p
JOIN fit_meta f ON f.run_date = p.run_date AND f.bank = p.bank
WHERE p.run_date <= $1
  AND p.excluded_reason IS NULL
  AND (p.p_s_x2 < 0.01 OR p.infit NOT BETWEEN 0.7 AND 1.3 OR p.outfit NOT BETWEEN 0.7 AND 1.3)
ORDER BY coalesce(f.bank_id, f.bank), p.run_date, p.item_id
