-- `irtlake status`: questions, and how many of them are anchors.
SELECT count(*) AS questions, sum(CASE WHEN is_anchor THEN 1 ELSE 0 END) AS anchors
FROM questions
