-- Latest calibration of every bank with its fit statistics, linking constants, and
-- the fit sample (n_students = students in the fit sample; n_students_scored =
-- students with a θ; sample = the sampling rule, null for calibrations that predate it).
SELECT f.run_date, f.bank, f.run_id, f.model, f.n_students, f.n_students_scored,
       f.n_items, f.n_responses, f.n_responses_scored, f.sample,
       f.iterations, f.converged, round(f.loglik, 2) AS loglik,
       f.linking_method, round(f.linking_a, 4) AS linking_a, round(f.linking_b, 4) AS linking_b,
       f.n_anchors, f.n_anchors_used, f.elapsed_ms
FROM fit_meta f
WHERE f.run_date = (SELECT max(run_date) FROM fit_meta)
ORDER BY f.bank;
