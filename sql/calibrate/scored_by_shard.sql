-- The calibrations of run date $1 (one fit_meta row per bank): bank id, run id, linking
-- method and constants, and the model spec (window, quadrature, latent distribution,
-- max_obs, attempts in the window, and who scores the students: `scored_by`).
-- score_abilities scores those whose spec says "scored_by": "score_abilities".
SELECT coalesce(bank_id, bank) AS bank, run_id, linking_method, linking_a, linking_b,
       model_spec
FROM fit_meta
WHERE run_date = $1
ORDER BY bank
