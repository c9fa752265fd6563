-- Forecasts of one forecast run ($1 = run_date).
SELECT series, ds, yhat, yhat_lower, yhat_upper
FROM forecasts
WHERE run_date = $1
ORDER BY series, ds
