-- Answers of the days [$1, $2] of the students of one shard (student_bucket(student_id, 0)
-- in [$3, $4), lake::shard) in time order per student, with only what a weekly θ and
-- accuracy need (kpis::weekly_records, read by growth and reports): the student, the
-- day (a date: its week is computed from it), the question and the outcome. Fewer
-- columns than sql/kpis/attempts.sql, so the sort by student moves less.
SELECT student_id, dt, question_id, correct
FROM attempts
WHERE dt >= $1 AND dt <= $2
  AND student_bucket(student_id, 0) >= $3 AND student_bucket(student_id, 0) < $4
ORDER BY student_id, completed_at, attempt_id
