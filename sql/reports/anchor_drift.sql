-- Drift screen history of every anchor the screen flagged in a calibration on or before
-- $1 (the as-of day), every bank: one row per calibration that screened it, oldest
-- first, with the full bank id from fit_meta and the time-split test's shift where that
-- test flagged it (null otherwise, and in calibrations written before it existed).
WITH ever_flagged AS (
    SELECT DISTINCT bank, item_id
    FROM anchor_drift
    WHERE flagged AND run_date <= $1
)
SELECT coalesce(f.bank_id, f.bank) AS bank, d.item_id, d.run_date, d.diff_b, d.z_b, d.flagged,
       CASE WHEN d.flagged_recent THEN d.recent_shift_b END AS recent_shift_b
FROM anchor_drift d
JOIN ever_flagged g ON g.bank = d.bank AND g.item_id = d.item_id
JOIN fit_meta f ON f.run_date = d.run_date AND f.bank = d.bank
WHERE d.run_date <= $1
ORDER BY coalesce(f.bank_id, f.bank), d.item_id, d.run_date
