-- The platform's question bank (PostgreSQL), read in pages through a portal.
-- Ids are rendered as text; exam_id becomes the lake's subject_id; meta is read as text
-- and parsed by the stage (malformed meta is a counted warning, not an error).
-- Ordered so that, should an id appear twice, the first row kept is always the same.
SELECT q.id::text       AS question_id,
       q.exam_id::text  AS subject_id,
       q.topic_id::text AS topic_id,
       q.meta::text     AS meta
FROM question q
ORDER BY q.id::text, q.meta::text NULLS LAST
