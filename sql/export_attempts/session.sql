-- Session settings of the export (PostgreSQL). Times are read and compared in UTC, so a
-- `timestamp` column without a zone is taken as UTC.
SET TIME ZONE 'UTC';
