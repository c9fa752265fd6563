-- Daily θ per student and topic over the days [$1, $2] (days, inclusive), with the
-- topic's subject (topics mapped to subjects through `questions`): the θ inputs of the
-- `<subject>:mean_theta` series. Rows without θ are left out. Ordered, so the stage's
-- means add the same numbers in the same order on every run.
WITH topic_subject AS (
    SELECT DISTINCT topic_id, subject_id
    FROM questions
    WHERE topic_id IS NOT NULL AND subject_id IS NOT NULL
)
SELECT ts.subject_id, f.dt, f.student_id, f.topic_id, f.theta_mean
FROM features_topic_daily f
JOIN topic_subject ts ON ts.topic_id = f.topic_id
WHERE f.dt >= $1 AND f.dt <= $2 AND f.theta_mean IS NOT NULL
ORDER BY ts.subject_id, f.dt, f.student_id, f.topic_id
