-- The subject and topic of every question in the lake: ingest fills an attempt's
-- subject_id and topic_id from it (lake::ingest::attempts).
SELECT question_id, subject_id, topic_id FROM questions
