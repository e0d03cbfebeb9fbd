"""Operator repairs: dead letters (list, show, retry, drop) and replaying stored events to a destination.

Each repair is one transaction and may run while the daemon runs (SQLite serialises the two writers); the daemon's
dispatchers pick re-queued keys up within a second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite

from state.base import StoreBase
from state.keys import split_key

# The key under which a destination takes a stored change (given its body), or None when it takes none.
Router = Callable[[bytes], str | None]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    sink: str
    key: str
    reason: str
    http_status: int | None
    request: str | None
    attempts: int
    created_at: float
    seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Replayed:
    events: int  # deliveries re-queued or created
    keys: int  # destination records that will be written again


_LETTER = "SELECT id, sink, key, reason, http_status, request, attempts, created_at FROM dead_letters"


async def _letters(db: aiosqlite.Connection, where: str, params: Sequence[object]) -> list[DeadLetter]:
    async with db.execute(f"{_LETTER} {where} ORDER BY id", params) as cur:
        rows = await cur.fetchall()
    letters = []
    for row in rows:
        async with db.execute(
            "SELECT seq FROM deliveries WHERE sink = ? AND dead_letter = ? ORDER BY seq", (row[1], row[0])
        ) as cur:
            seqs = tuple(int(r[0]) for r in await cur.fetchall())
        letters.append(
            DeadLetter(
                id=int(row[0]),
                sink=row[1],
                key=row[2],
                reason=row[3],
                http_status=row[4],
                request=row[5],
                attempts=int(row[6]),
                created_at=float(row[7]),
                seqs=seqs,
            )
        )
    return letters


async def _requeue(db: aiosqlite.Connection, sink: str, keys: dict[str, int], now: float) -> None:
    """Make each key (with its oldest pending seq) due now, with a fresh attempt count. Its deliveries were handed
    to a writer before (a dead letter's after timeouts, say), so it counts as tried: the next write looks for what
    an earlier one may have left.

    A key the running daemon has in flight is left to it (its claim is never touched; it counts as tried beyond
    that claim, even if the claim itself sends nothing), but its write began before this repair and may carry none
    of what was re-queued: its check is set to now, so when that write's outcome
    settles the key stays queued and is written once more, with its latest state, as a late-write check is."""
    await db.executemany(
        "INSERT INTO outbox (sink, key, first_seq, due_at, claims) VALUES (?,?,?,?,1) ON CONFLICT (sink, key)"
        " DO UPDATE SET first_seq = MIN(first_seq, excluded.first_seq), due_at = MIN(due_at, excluded.due_at),"
        " attempts = 0, claims = CASE WHEN claimed = 1 THEN claims + 1 ELSE MAX(claims, 1) END,"
        " verify_at = CASE WHEN claimed = 1 THEN MAX(COALESCE(verify_at, 0), excluded.due_at) ELSE verify_at END",
        [(sink, key, seq, now) for key, seq in keys.items()],
    )


class Repair(StoreBase):
    async def dead_letters(self, sink: str | None = None) -> list[DeadLetter]:
        async with self.reading() as db:
            if sink is None:
                return await _letters(db, "", ())
            return await _letters(db, "WHERE sink = ?", (sink,))

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        async with self.reading() as db:
            found = await _letters(db, "WHERE id = ?", (letter_id,))
        return found[0] if found else None

    async def retry_dead(self, ids: Sequence[int] | None, *, sink: str | None = None) -> list[DeadLetter]:
        """Put dead-lettered deliveries back in the queue (all of them when `ids` is None); returns what moved."""
        now = self._clock()
        async with self.transaction() as db:
            if ids is None:
                letters = await _letters(db, "WHERE (? IS NULL OR sink = ?)", (sink, sink))
            else:
                marks = ",".join("?" * len(ids))
                letters = await _letters(db, f"WHERE id IN ({marks})", tuple(ids))
            for letter in letters:
                await db.execute(
                    "UPDATE deliveries SET status = 'pending', dead_letter = NULL, reason = NULL, updated_at = ?"
                    " WHERE sink = ? AND dead_letter = ?",
                    (now, letter.sink, letter.id),
                )
                if letter.seqs:
                    await _requeue(db, letter.sink, {letter.key: min(letter.seqs)}, now)
                await db.execute("DELETE FROM dead_letters WHERE id = ?", (letter.id,))
        return letters

    async def drop_dead(self, letter_id: int) -> DeadLetter | None:
        """Give up on a dead letter for good: its deliveries count as skipped, with the reason kept."""
        now = self._clock()
        async with self.transaction() as db:
            found = await _letters(db, "WHERE id = ?", (letter_id,))
            if not found:
                return None
            letter = found[0]
            await db.execute(
                "UPDATE deliveries SET status = 'skipped', dead_letter = NULL, reason = ?, updated_at = ?"
                " WHERE sink = ? AND dead_letter = ?",
                (f"dropped by the operator (dead letter: {letter.reason})", now, letter.sink, letter.id),
            )
            await db.execute(
                "INSERT INTO totals (sink, outcome, n) VALUES (?, 'skipped', ?)"
                " ON CONFLICT (sink, outcome) DO UPDATE SET n = n + excluded.n",
                (letter.sink, len(letter.seqs)),
            )
            await db.execute("DELETE FROM dead_letters WHERE id = ?", (letter.id,))
        return letter

    async def replay(
        self, sink: str, route: Router, *, since: datetime | None = None, record: tuple[str, int] | None = None
    ) -> Replayed:
        """Queue the stored events again for `sink`, under the key `route` gives each (those that occurred at or
        after `since`, or those of one (kind, record id)), and forget what was last written for their records so
        the writes happen even if unchanged. One transaction: `route` is called inside it, so it must not block."""
        if (since is None) == (record is None):
            raise ValueError("replay needs exactly one of since or record")
        now = self._clock()
        async with self.transaction() as db:
            if since is not None:
                moment = since.astimezone(UTC).isoformat()
                query, params = "SELECT seq, body FROM events WHERE stale = 0 AND occurred_at >= ?", (moment,)
            else:
                assert record is not None
                query = "SELECT seq, body FROM events WHERE stale = 0 AND kind = ? AND record_id = ?"
                params = record  # type: ignore[assignment]
            keys: dict[str, int] = {}
            rows = []
            async with db.execute(query + " ORDER BY seq", params) as cur:
                async for seq, body in cur:
                    key = route(body)
                    if key is not None:
                        keys.setdefault(key, seq)
                        rows.append((sink, seq, key, now))
            await db.executemany(
                "INSERT INTO deliveries (sink, seq, key, status, created_at) VALUES (?,?,?,'pending',?)"
                " ON CONFLICT (seq, sink) DO UPDATE SET status = 'pending', reason = NULL, dead_letter = NULL",
                rows,
            )
            await db.executemany(
                "UPDATE links SET digest = NULL WHERE sink = ? AND kind = ? AND record_id = ?",
                [(sink, *split_key(key)) for key in keys],
            )
            await _requeue(db, sink, keys, now)
            # Dead letters whose deliveries were all re-queued are resolved.
            await db.execute(
                "DELETE FROM dead_letters WHERE sink = ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
                " WHERE d.sink = dead_letters.sink AND d.dead_letter = dead_letters.id)",
                (sink,),
            )
        return Replayed(events=len(rows), keys=len(keys))
