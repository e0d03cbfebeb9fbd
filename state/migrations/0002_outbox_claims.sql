-- How often a key was claimed since its last outcome that finished it. A key claimed before the current claim was
-- handed to a writer whose write may have landed although its outcome was lost (a timeout, a crash): the next
-- write looks for what it may have left. A key on its first claim cannot have left anything, and its writers skip
-- those look-ups (after an outage, most of a backlog).
ALTER TABLE outbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
-- Keys queued by an earlier version: whether they were tried is unknown, so assume they were.
UPDATE outbox SET claims = 1
