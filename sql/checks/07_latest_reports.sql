-- Report artifacts of the latest week: how many, total size, and a few URLs.
SELECT week_start, format, count(*) AS artifacts, sum(bytes) AS total_bytes,
       min(url) AS example_url
FROM report_artifacts
WHERE week_start = (SELECT max(week_start) FROM report_artifacts)
GROUP BY week_start, format
ORDER BY format;
