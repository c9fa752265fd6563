-- The Kaplan–Meier curve and diagnostics of one churn run ($1 = run_date).
SELECT kind, term, time_days, estimate, se, n_risk, events
FROM churn_fit
WHERE run_date = $1 AND (kind = 'km' OR kind = 'diagnostic')
ORDER BY kind, term, time_days
