-- In-sample anomalies of one forecast run ($1 = run_date).
SELECT series, ds, value, expected, score
FROM anomalies
WHERE run_date = $1
ORDER BY series, ds
