"""Requeueing: records written to a destination again from their stored state, though no change of their own
arrived (an organisation's new name for its members, a destination contact another record let go of).

A requeue is a `touched` event of the record's current version with a pending delivery under its key, stored in
one transaction like a page: it survives a crash, and a key in flight when it is requeued is due again once its
outcome is committed (its new delivery is still pending), so nothing a requeue asks for is lost. Touching a record
again before it changes re-pends the same event; a delivery still pending or dead-lettered is left as it is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from state.base import StoreBase
from state.rows import Requeue

TOUCHED = "touched"  # the action of a requeue's event, apart from every change read from a stream


class Requeueing(StoreBase):
    async def requeue(self, sink: str, rows: Sequence[Requeue]) -> int:
        """Queue each of `rows` for `sink` (a key already queued keeps its place and its due time): how many
        deliveries became pending."""
        if not rows:
            return 0
        now = self._clock()
        occurred = datetime.fromtimestamp(now, UTC).isoformat()

        def work(db: sqlite3.Connection) -> int:
            queued = 0
            for row in rows:
                db.execute(
                    "INSERT OR IGNORE INTO events (stream, kind, record_id, action, sequence, event_id, occurred_at,"
                    " ingested_at, stale, body) VALUES (?,?,?,?,?,?,?,?,0,?)",
                    (row.stream, row.kind, row.record_id, TOUCHED, row.sequence, row.event_id, occurred, now, row.body),
                )
                (seq,) = db.execute(
                    "SELECT seq FROM events WHERE kind = ? AND record_id = ? AND sequence = ? AND action = ?",
                    (row.kind, row.record_id, row.sequence, TOUCHED),
                ).fetchone()
                cur = db.execute(
                    "INSERT INTO deliveries (sink, seq, key, status, created_at) VALUES (?,?,?,'pending',?)"
                    " ON CONFLICT (seq, sink) DO UPDATE SET status = 'pending', reason = NULL,"
                    " created_at = excluded.created_at, updated_at = excluded.created_at"
                    " WHERE deliveries.status IN ('done', 'skipped')",
                    (sink, seq, row.key, now),
                )
                if cur.rowcount:
                    queued += 1
                    db.execute(
                        "INSERT INTO outbox (sink, key, first_seq, due_at) VALUES (?,?,?,?)"
                        " ON CONFLICT (sink, key) DO NOTHING",
                        (sink, row.key, seq, now),
                    )
            return queued

        return await self.in_transaction(work)

    async def requeued_by_sink(self) -> dict[str, int]:
        """Stored deliveries of requeues per destination, whatever their status (for reports that account for
        every delivery: these come from no stream)."""
        async with (
            self.reading() as db,
            db.execute(
                "SELECT d.sink, COUNT(*) FROM deliveries d JOIN events e ON e.seq = d.seq WHERE e.action = ?"
                " GROUP BY d.sink",
                (TOUCHED,),
            ) as cur,
        ):
            return {str(sink): int(n) async for sink, n in cur}
