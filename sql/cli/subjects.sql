-- The subjects of the question bank, sorted: `irtlake run --all-subjects` calibrates one
-- bank `subject:<id>` per subject.
SELECT DISTINCT subject_id FROM questions WHERE subject_id IS NOT NULL ORDER BY subject_id
