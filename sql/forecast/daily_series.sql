-- Daily cohort values per subject over the days [$1, $2] (`dt` strings), for the
-- forecast stage's series. $3 is the Monday of the week of $1 (first weekly_kpi
-- partition that can matter).
--
-- A student is active on a day in a subject when they made at least one attempt in it
-- (the attempt's subject, else its question's). For each active student-day-subject:
--   θ   = mean features_topic_daily.theta_mean over the student's topics of that subject
--         that day (topics mapped to subjects through `questions`; null without θ);
--   I_t = the student's weekly_kpi.i_t of the week (Monday, UTC) holding the day.
-- Per day and subject: active students, and the mean (with count) of each over the
-- active students that have one.
WITH active AS (
    SELECT DISTINCT a.dt,
           coalesce(a.subject_id, q.subject_id) AS subject_id,
           a.student_id
    FROM attempts a
    LEFT JOIN questions q ON q.question_id = a.question_id
    WHERE a.dt >= $1 AND a.dt <= $2
),
topic_subject AS (
    SELECT DISTINCT topic_id, subject_id
    FROM questions
    WHERE topic_id IS NOT NULL AND subject_id IS NOT NULL
),
theta AS (
    SELECT f.dt, ts.subject_id, f.student_id, avg(f.theta_mean) AS theta
    FROM features_topic_daily f
    JOIN topic_subject ts ON ts.topic_id = f.topic_id
    WHERE f.dt >= $1 AND f.dt <= $2 AND f.theta_mean IS NOT NULL
    GROUP BY f.dt, ts.subject_id, f.student_id
),
kpi AS (
    SELECT week_start, student_id, i_t
    FROM weekly_kpi
    WHERE week_start >= $3 AND week_start <= $2 AND i_t IS NOT NULL
),
active_week AS (
    SELECT dt, subject_id, student_id,
           to_char(date_trunc('week', CAST(dt AS TIMESTAMP)), '%Y-%m-%d') AS week_start
    FROM active
    WHERE subject_id IS NOT NULL
)
SELECT aw.subject_id,
       aw.dt,
       CAST(count(*) AS BIGINT) AS active_students,
       avg(t.theta) AS mean_theta,
       CAST(count(t.theta) AS BIGINT) AS n_theta,
       avg(k.i_t) AS mean_i_t,
       CAST(count(k.i_t) AS BIGINT) AS n_i_t
FROM active_week aw
LEFT JOIN theta t
       ON t.dt = aw.dt AND t.subject_id = aw.subject_id AND t.student_id = aw.student_id
LEFT JOIN kpi k
       ON k.student_id = aw.student_id AND k.week_start = aw.week_start
GROUP BY aw.subject_id, aw.dt
ORDER BY aw.subject_id, aw.dt
