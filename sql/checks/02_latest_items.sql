-- Item count, exclusions and mean a/b of the latest calibration, per bank.
SELECT run_date, bank, model,
       count(*) AS items,
       sum(CASE WHEN excluded_reason IS NULL THEN 0 ELSE 1 END) AS excluded,
       sum(CASE WHEN is_anchor THEN 1 ELSE 0 END) AS anchors,
       round(avg(a), 3) AS mean_a, round(avg(b), 3) AS mean_b
FROM item_params
WHERE run_date = (SELECT max(run_date) FROM item_params)
GROUP BY run_date, bank, model
ORDER BY bank;
