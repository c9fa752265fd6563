-- Attempts of one calibration, for its first attempts: every attempt inside the window
-- [$1, $2] (dt, inclusive), restricted to the bank ($3 = 'all' | 'subject' | 'topic',
-- $4 = the subject or topic id, '' for all) and to the students whose bucket
-- student_bucket(student_id, $5) lies in [$6, $7) (student_bucket_in, one hash per row).
-- The stage keeps the FIRST attempt of each student on each question (earliest
-- completed_at, then smallest attempt_id): later attempts at the same question are
-- practice effects, not fresh measurements. The stage collects the streamed rows as
-- compact records (interned ids) and sorts them once (lake::intern::FirstAttempts),
-- where row_number() over one window partition per pair took 0.9 s (demo bank all,
-- 500k attempts); see `observations` in functions/calibrate/src/data.rs.
-- The bucket filter sits inside the scan's WHERE clause: only the selected students'
-- attempts are read, so memory follows the bucket range, not the lake. Used for the
-- fit sample (buckets 0..k-1) and for every scoring batch.
-- With the shard seed ($5 = 0) the range on shard_bucket, the lake's copy of that bucket
-- (null in objects written before it), lets the scan skip the pages of other buckets
-- (attempts are stored clustered by it: README, Shards); other seeds read every page.
SELECT student_id, question_id, correct, completed_at, attempt_id
FROM attempts
WHERE dt >= $1 AND dt <= $2
  AND ($3 = 'all'
       OR ($3 = 'subject' AND subject_id = $4)
       OR ($3 = 'topic' AND topic_id = $4))
  AND student_bucket_in(student_id, $5, $6, $7)
  AND ($5 <> 0 OR shard_bucket IS NULL OR (shard_bucket >= $6 AND shard_bucket < $7))
