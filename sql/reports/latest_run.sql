-- Latest run date on or before $1 of each run_date-partitioned table the reports use.
SELECT 'student_topic_theta' AS tbl, max(run_date) AS run_date FROM student_topic_theta WHERE run_date <= $1
UNION ALL SELECT 'user_segment', max(run_date) FROM user_segment WHERE run_date <= $1
UNION ALL SELECT 'growth_fit', max(run_date) FROM growth_fit WHERE run_date <= $1
UNION ALL SELECT 'forecasts', max(run_date) FROM forecasts WHERE run_date <= $1
UNION ALL SELECT 'churn_fit', max(run_date) FROM churn_fit WHERE run_date <= $1
