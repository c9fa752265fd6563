-- The calibration of bank `all` that `irtlake anchors tag` chooses anchors from: the
-- latest linked one, else the latest (an unlinked calibration then defines the scale).
SELECT run_date, run_id, linking_method
FROM fit_meta
WHERE bank = 'all'
ORDER BY (linking_method <> 'none') DESC, run_date DESC
LIMIT 1
