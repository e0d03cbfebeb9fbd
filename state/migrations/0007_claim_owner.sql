-- A claim belongs to the process that made it: `claimed_by` holds the owner token of the `syncd run` that holds the
-- state file's lock. Only the owner claims keys or lapses claims, and a command beside it never touches them. The
-- claims of an owner that died (its token held by nobody) lapse when the next owner opens the file.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT
