-- Per student active in the window [$1, $2] (`dt` strings): the raw inputs of the
-- segment features. $3 is the Monday of the week of $1: weekly KPIs of every week that
-- overlaps the window count.
--
-- Sessions: one per distinct session id of the student; attempts without a session id
-- count one session per day (as the kpis stage counts them). A session starts at its
-- first attempt (`completed_at`) inside the window.
-- Hints per item: hints (null = 0) over attempts.
-- KPIs: mean of the non-null i_t and of the non-null e_t over the student's weeks, with
-- their counts (null means when there are none).
WITH att AS (
    SELECT student_id, dt, session_id, completed_at, coalesce(hints_used, 0) AS hints
    FROM attempts
    WHERE dt >= $1 AND dt <= $2
),
session_starts AS (
    SELECT student_id, min(completed_at) AS started
    FROM att
    GROUP BY student_id, coalesce(session_id, concat('day:', dt))
),
sessions AS (
    SELECT student_id,
           count(*) AS sessions,
           min(started) AS first_start,
           max(started) AS last_start
    FROM session_starts
    GROUP BY student_id
),
activity AS (
    SELECT student_id, count(*) AS attempts, sum(hints) AS hints
    FROM att
    GROUP BY student_id
),
kpi AS (
    SELECT student_id,
           avg(i_t) AS improvement,
           count(i_t) AS n_i_t,
           avg(e_t) AS efficiency,
           count(e_t) AS n_e_t
    FROM weekly_kpi
    WHERE week_start >= $3 AND week_start <= $2
    GROUP BY student_id
)
SELECT a.student_id,
       CAST(a.attempts AS BIGINT) AS attempts,
       CAST(a.hints AS BIGINT) AS hints,
       CAST(s.sessions AS BIGINT) AS sessions,
       s.first_start,
       s.last_start,
       k.improvement,
       CAST(coalesce(k.n_i_t, 0) AS BIGINT) AS n_i_t,
       k.efficiency,
       CAST(coalesce(k.n_e_t, 0) AS BIGINT) AS n_e_t
FROM activity a
JOIN sessions s ON s.student_id = a.student_id
LEFT JOIN kpi k ON k.student_id = a.student_id
ORDER BY a.student_id
