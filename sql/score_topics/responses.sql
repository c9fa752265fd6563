-- Topic responses of the window [$1, $2]: the first attempt of each student on each
-- question (as calibrate uses), with the question's topic, grouped by student and topic.
WITH ranked AS (
    SELECT student_id, question_id, topic_id, correct,
           row_number() OVER (PARTITION BY student_id, question_id
                              ORDER BY completed_at, attempt_id) AS attempt_no
    FROM attempts
    WHERE dt >= $1 AND dt <= $2 AND topic_id IS NOT NULL
)
SELECT student_id, topic_id, question_id, correct
FROM ranked
WHERE attempt_no = 1
ORDER BY student_id, topic_id, question_id
