-- θ coverage of the daily features over the last 7 days: rows by θ source.
SELECT coalesce(theta_source, 'none') AS theta_source,
       count(*) AS rows,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM features_topic_daily
WHERE dt > (SELECT max(dt) FROM features_topic_daily) - INTERVAL '7' DAY
GROUP BY coalesce(theta_source, 'none')
ORDER BY rows DESC;
