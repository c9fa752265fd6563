-- Every finite KPI value of one week ($1 = week_start), all shards: the cohort
-- report's KPI distributions. One row per student and KPI: series = the weekly_kpi
-- column, value (the stage streams it sorted by series and value).
WITH k AS (
  SELECT i_t, a_t, e_t, r_t, s, p
  FROM weekly_kpi
  WHERE week_start = $1 AND student_id IS NOT NULL
),
v AS (
  SELECT 'i_t' AS series, i_t AS value FROM k
  UNION ALL SELECT 'a_t', a_t FROM k
  UNION ALL SELECT 'e_t', e_t FROM k
  UNION ALL SELECT 'r_t', r_t FROM k
  UNION ALL SELECT 's', s FROM k
  UNION ALL SELECT 'p', p FROM k
)
SELECT series, value
FROM v
WHERE value IS NOT NULL AND NOT isnan(value) AND abs(value) < CAST('inf' AS DOUBLE)
