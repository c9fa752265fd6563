-- Every attempt id already in the lake: ingest skips attempts it has already written
-- (lake::ingest::attempts).
SELECT attempt_id FROM attempts
