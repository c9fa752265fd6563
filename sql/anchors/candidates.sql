-- The estimated items of the `all`-bank calibration of run date $1, with their topic
-- (empty when unknown) and whether they are anchors already: the candidates of
-- `irtlake anchors tag`.
SELECT p.item_id, p.a, p.b, p.c, p.se_a, p.se_b, p.n_responses,
       coalesce(q.topic_id, '') AS topic_id, q.is_anchor
FROM item_params p
LEFT JOIN questions q ON q.question_id = p.item_id
WHERE p.run_date = $1 AND p.bank = 'all' AND p.excluded_reason IS NULL
ORDER BY p.item_id
