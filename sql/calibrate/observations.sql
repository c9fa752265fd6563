-- Observations of one calibration: the FIRST attempt of each student on each question
-- inside the window [$1, $2] (dt, inclusive), restricted to the bank:
--   $3 = 'all' | 'subject' | 'topic', $4 = the subject or topic id ('' for all).
-- Later attempts at the same question are practice effects, not fresh measurements,
-- so they are left out. Newest first, so the caller can keep the most recent max_obs.
WITH ranked AS (
    SELECT student_id, question_id, correct, completed_at,
           row_number() OVER (PARTITION BY student_id, question_id
                              ORDER BY completed_at, attempt_id) AS attempt_no
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
      AND ($3 = 'all'
           OR ($3 = 'subject' AND subject_id = $4)
           OR ($3 = 'topic' AND topic_id = $4))
)
SELECT student_id, question_id, correct
FROM ranked
WHERE attempt_no = 1
ORDER BY completed_at DESC, student_id, question_id
