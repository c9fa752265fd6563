-- The questions of a bank with their known (anchor) parameters.
-- $1 = 'all' | 'subject' | 'topic', $2 = the subject or topic id ('' for all).
SELECT question_id, is_anchor, irt_a, irt_b, irt_c
FROM questions
WHERE $1 = 'all'
   OR ($1 = 'subject' AND subject_id = $2)
   OR ($1 = 'topic' AND topic_id = $2)
ORDER BY question_id
