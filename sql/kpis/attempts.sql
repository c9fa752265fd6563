-- Attempts of the days [$1, $2] (a target week and the week before it) in time order
-- per student: what the weekly KPIs are computed from.
SELECT student_id, dt, question_id, topic_id, session_id, correct, time_spent_ms
FROM attempts
WHERE dt >= $1 AND dt <= $2
ORDER BY student_id, completed_at, attempt_id
