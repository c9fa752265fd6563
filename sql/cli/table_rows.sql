-- Rows of one lake table for `irtlake status`; {table} is replaced by a name from the
-- catalog (lake::TABLES), never by user input.
SELECT count(*) AS n FROM {table}
