-- Observations of one calibration: the FIRST attempt of each student on each question
-- inside the window [$1, $2] (dt, inclusive), restricted to the bank
-- ($3 = 'all' | 'subject' | 'topic', $4 = the subject or topic id, '' for all) and to the
-- students whose bucket student_bucket(student_id, $5) lies in [$6, $7] (inclusive).
-- Later attempts at the same question are practice effects, not fresh measurements,
-- so they are left out.
-- The bucket filter sits inside the scan's WHERE clause, before the window function:
-- only the selected students' attempts are ranked, so memory follows the bucket range,
-- not the lake. Used for the fit sample (buckets 0..k-1) and for every scoring batch.
WITH ranked AS (
    SELECT student_id, question_id, correct,
           row_number() OVER (PARTITION BY student_id, question_id
                              ORDER BY completed_at, attempt_id) AS attempt_no
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
      AND ($3 = 'all'
           OR ($3 = 'subject' AND subject_id = $4)
           OR ($3 = 'topic' AND topic_id = $4))
      AND student_bucket(student_id, $5) BETWEEN $6 AND $7
)
SELECT student_id, question_id, correct
FROM ranked
WHERE attempt_no = 1
