-- A stream failing on the same page: how many reads of it failed in a row, and the last error (both cleared by the
-- next page stored), for status readers and a restart.
ALTER TABLE positions ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE positions ADD COLUMN last_error TEXT
