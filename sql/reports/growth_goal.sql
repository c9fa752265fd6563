-- The goal of the growth model of one run ($1 = run_date): goal θ, target week
-- offset and whether P was published.
SELECT term, estimate
FROM growth_fit
WHERE run_date = $1 AND model = 'bayes' AND kind = 'diagnostic'
  AND term IN ('goal', 'target_week', 'p_published', 'max_rhat')
ORDER BY term
