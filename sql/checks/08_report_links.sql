-- The latest week's reports to open: one student report and the cohort report
-- (file:// URLs on a local lake, presigned URLs on S3).
WITH latest AS (SELECT max(week_start) AS week_start FROM report_artifacts)
SELECT r.week_start, 'cohort report' AS report, r.url
FROM report_artifacts r JOIN latest l ON r.week_start = l.week_start
WHERE r.student_id IS NULL
UNION ALL
SELECT week_start, report, url FROM (
  SELECT r.week_start, 'student report ' || r.student_id AS report, r.url
  FROM report_artifacts r JOIN latest l ON r.week_start = l.week_start
  WHERE r.student_id IS NOT NULL
  ORDER BY r.student_id
  LIMIT 1
) first_student
