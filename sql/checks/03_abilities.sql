-- Ability count, mean and SD of θ (and mean SE) of the latest calibration, per bank.
SELECT run_date, bank, count(*) AS students,
       round(avg(theta), 3) AS mean_theta, round(stddev(theta), 3) AS sd_theta,
       round(avg(se), 3) AS mean_se
FROM abilities
WHERE run_date = (SELECT max(run_date) FROM abilities)
GROUP BY run_date, bank
ORDER BY bank;
