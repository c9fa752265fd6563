-- Anchor questions per subject, and how many carry complete known parameters.
SELECT subject_id, count(*) AS anchors,
       sum(CASE WHEN irt_a > 0 AND irt_b IS NOT NULL THEN 1 ELSE 0 END) AS with_known_params
FROM questions
WHERE is_anchor
GROUP BY subject_id
ORDER BY subject_id;
