"""Feedback to Sell, in the store: the latest outcome of each key in the destinations that feed back, the queue
that writes it to Sell (the `feedback` queue: deliveries and outbox rows like a destination's, so it is claimed,
retried, dead-lettered and reported the same way), and what syncd wrote on each Sell record.

A changed outcome is noted inside the transaction that commits it (`Outbox.commit(..., noted=...)`): the key gets a
pending `feedback` delivery of the event whose outcome it was, so a crash can lose neither. An unchanged outcome
(the same status and reason again) queues nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiosqlite

from state.base import StoreBase
from state.keys import ids_by_kind
from state.rows import FeedbackMark, NotedOutcome, OutcomeRow

FEEDBACK_QUEUE = "feedback"  # the queue's name where a destination's would be (deliveries, outbox, dead letters)


async def note_outcomes(db: aiosqlite.Connection, sink: str, noted: Sequence[NotedOutcome], now: float) -> int:
    """Inside the caller's transaction: each outcome of `sink` recorded as the key's latest there; every key whose
    outcome changed is queued for feedback (a pending delivery, an outbox row when it has none; a dead letter of an
    earlier feedback of that delivery is superseded). How many keys were queued."""
    queued = 0
    for row in noted:
        cur = await db.execute(
            "INSERT INTO outcomes (key, sink, outcome, reason, seq, at) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (key, sink) DO UPDATE SET outcome = excluded.outcome, reason = excluded.reason,"
            " seq = excluded.seq, at = excluded.at"
            " WHERE outcomes.outcome <> excluded.outcome OR outcomes.reason <> excluded.reason",
            (row.key, sink, row.outcome, row.reason, row.seq, now),
        )
        if not cur.rowcount:
            continue
        queued += 1
        await db.execute(
            "INSERT INTO deliveries (sink, seq, key, status, created_at) VALUES (?,?,?,'pending',?)"
            " ON CONFLICT (seq, sink) DO UPDATE SET status = 'pending', reason = NULL, dead_letter = NULL,"
            " created_at = excluded.created_at, updated_at = excluded.created_at WHERE deliveries.status <> 'pending'",
            (FEEDBACK_QUEUE, row.seq, row.key, now),
        )
        await db.execute(
            "DELETE FROM dead_letters WHERE sink = ? AND key = ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.sink = dead_letters.sink AND d.dead_letter = dead_letters.id)",
            (FEEDBACK_QUEUE, row.key),
        )
        await db.execute(
            "INSERT INTO outbox (sink, key, first_seq, due_at) VALUES (?,?,?,?) ON CONFLICT (sink, key) DO NOTHING",
            (FEEDBACK_QUEUE, row.key, row.seq, now),
        )
    return queued


class Feedback(StoreBase):
    """What the feedback writer and the echo check ask of the store."""

    async def outcomes(self, key: str) -> list[OutcomeRow]:
        """The latest noted outcome of `key` in each destination that feeds back, by destination name."""
        async with (
            self.reading() as db,
            db.execute("SELECT sink, outcome, reason, at FROM outcomes WHERE key = ? ORDER BY sink", (key,)) as cur,
        ):
            return [OutcomeRow(str(s), str(o), str(r), float(a)) async for s, o, r, a in cur]

    async def events_with_ids(self, event_ids: Sequence[str], chunk: int = 500) -> dict[str, int]:
        """Stored events among `event_ids` (Sell's event ids), per stream (a report's count of echoes read)."""
        found: dict[str, int] = {}
        ids = list(dict.fromkeys(event_ids))
        async with self.reading() as db:
            for start in range(0, len(ids), chunk):
                part = ids[start : start + chunk]
                marks = ",".join("?" * len(part))
                async with db.execute(
                    f"SELECT stream, COUNT(*) FROM events WHERE event_id IN ({marks}) GROUP BY stream", part
                ) as cur:
                    async for stream, n in cur:
                        found[str(stream)] = found.get(str(stream), 0) + int(n)
        return found

    async def feedback_marks(self, records: Sequence[tuple[str, int]]) -> dict[tuple[str, int], FeedbackMark]:
        """What syncd wrote on each of `records` (kind, id) that it wrote on at all."""
        found: dict[tuple[str, int], FeedbackMark] = {}
        if not records:
            return found
        async with self.reading() as db:
            for kind, ids in ids_by_kind(records).items():
                marks = ",".join("?" * len(ids))
                async with db.execute(
                    f"SELECT record_id, owned, writes FROM feedback WHERE kind = ? AND record_id IN ({marks})",
                    (kind, *ids),
                ) as cur:
                    async for record_id, owned, writes in cur:
                        found[(kind, int(record_id))] = _mark(owned, writes)
        return found

    async def note_feedback_write(
        self, kind: str, record_id: int, *, owned: Sequence[str], write: dict[str, Any] | None, keep: int = 8
    ) -> None:
        """Before syncd writes `write` on the Sell record: the tags it will own after it, and the write among the
        record's recent ones (at most `keep`, newest last), so its echo is recognised whenever it comes back, also
        after a crash. `write` None: only the tags it owns changed."""
        async with self.transaction() as db:
            async with db.execute(
                "SELECT writes FROM feedback WHERE kind = ? AND record_id = ?", (kind, record_id)
            ) as cur:
                row = await cur.fetchone()
            writes = list(_list(row[0])) if row is not None else []
            if write is not None:
                writes = [*writes, {**write, "at": self._clock()}][-keep:]
            await db.execute(
                "INSERT INTO feedback (kind, record_id, owned, writes, updated_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (kind, record_id) DO UPDATE SET owned = excluded.owned, writes = excluded.writes,"
                " updated_at = excluded.updated_at",
                (kind, record_id, json.dumps(list(owned)), json.dumps(writes), self._clock()),
            )


def _list(text: str | bytes | None) -> list[Any]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _mark(owned: str | bytes | None, writes: str | bytes | None) -> FeedbackMark:
    return FeedbackMark(
        owned=tuple(str(t) for t in _list(owned) if isinstance(t, str)),
        writes=tuple(w for w in _list(writes) if isinstance(w, dict)),
    )
