-- Columns of a source relation (table or view) on the search path, with their types
-- (PostgreSQL). $1 = relation name, e.g. 'attempt'. No rows: no such relation.
SELECT a.attname::text AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = to_regclass($1::text)
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attnum
