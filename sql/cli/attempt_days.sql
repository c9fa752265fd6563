-- `irtlake status`: the attempts' first and last day, their days and their students.
SELECT min(dt) AS first_day, max(dt) AS last_day,
       count(DISTINCT dt) AS days, count(DISTINCT student_id) AS students
FROM attempts
