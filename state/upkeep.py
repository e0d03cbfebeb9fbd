"""Upkeep: pruning finished events so the file stays bounded, how much of the file is in use, and masking text
stored before secrets were masked in it."""

from __future__ import annotations

from collections.abc import Sequence

from state.base import StoreBase, scalar

# The columns that keep text from outside (an API's error body, an exception's message): where a secret may have
# been stored by an older syncd, which masked secrets only in its log.
OUTSIDE_TEXT = (
    ("positions", "stopped"),
    ("positions", "last_error"),
    ("outbox", "last_error"),
    ("deliveries", "reason"),
    ("dead_letters", "reason"),
    ("dead_letters", "request"),
    ("quarantine", "reason"),
    ("sink_state", "paused"),
    ("waits", "reason"),
    ("drift", "problem"),
    ("jobs", "error"),
)


class Upkeep(StoreBase):
    async def used_bytes(self) -> int:
        """Bytes of the database file in use (its pages less the free ones, which new rows fill first)."""
        async with self.reading() as db:
            size = await scalar(db, "PRAGMA page_size")
            pages = await scalar(db, "PRAGMA page_count")
            free = await scalar(db, "PRAGMA freelist_count")
        return int(size) * (int(pages) - int(free))

    async def prune(self, older_than: float, *, chunk: int = 5000, quarantine: bool = True) -> int:
        """Delete events ingested before `older_than` whose deliveries are all done or skipped (and events that
        no destination took); dead and pending ones stay; quarantined items before then too (unless not
        `quarantine`). Returns how many events went."""
        removed = 0
        while True:
            async with self.transaction() as db:
                async with db.execute(
                    "SELECT seq FROM events e WHERE ingested_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
                    " WHERE d.seq = e.seq AND d.status IN ('pending', 'dead')) ORDER BY seq LIMIT ?",
                    (older_than, chunk),
                ) as cur:
                    seqs = [(row[0],) async for row in cur]
                if seqs:
                    await db.executemany("DELETE FROM deliveries WHERE seq = ?", seqs)
                    await db.executemany("DELETE FROM events WHERE seq = ?", seqs)
                if quarantine:
                    await db.execute("DELETE FROM quarantine WHERE created_at < ?", (older_than,))
            removed += len(seqs)
            if len(seqs) < chunk:
                return removed

    async def mask_text(self, forms: Sequence[str], mask: str) -> int:
        """Replace each of `forms` (in that order: longest first) by `mask` wherever the stored error text holds
        it, overwriting what the old values left in the file (secure_delete) and emptying the write-ahead log when
        anything changed, so the file no longer holds them. How many values changed."""
        if not forms:
            return 0
        expression = "{column}"
        for _ in forms:
            expression = f"replace({expression}, ?, ?)"
        replaced = [value for form in forms for value in (form, mask)]
        changed = 0
        async with self.reading() as db:
            was = int(await scalar(db, "PRAGMA secure_delete") or 0)
            await scalar(db, "PRAGMA secure_delete = ON")  # each PRAGMA read to its end: none left in progress
        try:
            for table, column in OUTSIDE_TEXT:  # a transaction each: the others' writes wait only for one scan
                holds = " OR ".join(f"instr({column}, ?) > 0" for _ in forms)
                sql = f"UPDATE {table} SET {column} = {expression.format(column=column)} WHERE {holds}"
                async with self.transaction() as db, db.execute(sql, (*replaced, *forms)) as cur:
                    changed += max(0, cur.rowcount)
        finally:
            async with self.reading() as db:
                await scalar(db, f"PRAGMA secure_delete = {was}")
        if changed:
            async with self.reading() as db:
                await scalar(db, "PRAGMA wal_checkpoint(TRUNCATE)")
        return changed
