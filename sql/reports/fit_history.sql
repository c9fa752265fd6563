-- Every calibration up to $1 (run_date), all banks: health, log-likelihood and
-- linking constants over time. `bank_id` is the full bank id (the `bank` partition
-- value is shortened when long).
SELECT run_date, coalesce(bank_id, bank) AS bank, run_id, model, n_students, n_items, n_responses, n_anchors,
       loglik, aic, bic, iterations, converged, linking_method, linking_a, linking_b,
       n_anchors_used
FROM fit_meta
WHERE run_date <= $1
ORDER BY run_date, coalesce(bank_id, bank)
