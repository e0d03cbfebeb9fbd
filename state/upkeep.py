"""Upkeep: pruning finished events so the file stays bounded, and how much of the file is in use."""

from __future__ import annotations

from state.base import StoreBase, scalar


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
