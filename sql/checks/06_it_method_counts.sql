-- How I_t was computed over the last 4 weeks: θ delta vs accuracy fallback.
SELECT week_start, coalesce(method, 'none') AS method, count(*) AS students,
       round(avg(i_t), 4) AS mean_i_t
FROM weekly_kpi
WHERE week_start > (SELECT max(week_start) FROM weekly_kpi) - INTERVAL '28' DAY
GROUP BY week_start, coalesce(method, 'none')
ORDER BY week_start DESC, method;
