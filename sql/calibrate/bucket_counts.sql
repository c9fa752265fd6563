-- One scan of the window [$1, $2] (dt, inclusive) of a bank ($3 = 'all' | 'subject' |
-- 'topic', $4 = the subject or topic id, '' for all) that counts its attempts
--   * per student bucket, student_bucket(student_id, $5) with $5 the sampling seed
--     (rows with question_id NULL): the calibrate stage grows its fit sample and cuts
--     its scoring batches from these counts;
--   * per question (rows with bucket NULL): every question of the window is reported
--     in item_params, estimated or excluded with its reason.
-- Memory: one group per bucket and per question, whatever the size of the platform.
SELECT bucket, question_id, count(*) AS attempts
FROM (
    SELECT student_bucket(student_id, $5) AS bucket, question_id
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
      AND ($3 = 'all'
           OR ($3 = 'subject' AND subject_id = $4)
           OR ($3 = 'topic' AND topic_id = $4))
) w
GROUP BY GROUPING SETS ((bucket), (question_id))
