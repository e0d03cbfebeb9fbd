-- Late writes: a write whose outcome syncd never learned (the process died with it in flight, or the call failed
-- in a way that may have taken effect) may still land after a newer one.
-- `unsure`: such a write of this key may have been made since its last claim.
-- `verify_at`: until when one may still land (set when the key is claimed after it). A key settled before then is
-- kept and written again with its latest state after then, before it leaves the outbox.
ALTER TABLE outbox ADD COLUMN unsure INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN verify_at REAL;
-- Keys an older version left claimed: the process that claimed them is gone, and with it what it knew.
UPDATE outbox SET unsure = 1 WHERE claimed = 1
