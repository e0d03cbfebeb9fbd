"""The outbox: claiming due keys, loading their work, and committing outcomes in one transaction per batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiosqlite

from state.base import StoreBase, scalar
from state.keys import split_key
from state.outcomes import Dead, Deferred, Done, Outcome, Released, Retry, Skipped
from state.rows import Link, PendingEvent, RecordRow, StoredWork


class Outbox(StoreBase):
    """What dispatchers ask of the store."""

    async def claim(self, sink: str, limit: int) -> list[str]:
        """Claim up to `limit` due keys of `sink`, oldest first; a claimed key is not claimed again until its
        outcome is committed (or the process restarts). Claims are counted until an outcome finishes the key."""
        async with (
            self.transaction() as db,
            db.execute(
                "UPDATE outbox SET claimed = 1, claims = claims + 1 WHERE sink = :sink AND key IN (SELECT key"
                " FROM outbox WHERE sink = :sink AND claimed = 0 AND due_at <= :now ORDER BY first_seq LIMIT :limit)"
                " RETURNING key, first_seq",
                {"sink": sink, "now": self._clock(), "limit": limit},
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [key for key, _ in sorted(rows, key=lambda r: int(r[1]))]

    async def next_due(self, sink: str) -> float | None:
        """When the earliest unclaimed key of `sink` falls due (None when there is none)."""
        async with self.reading() as db:
            value = await scalar(db, "SELECT MIN(due_at) FROM outbox WHERE sink = ? AND claimed = 0", (sink,))
        return float(value) if value is not None else None

    async def load_work(self, sink: str, keys: Sequence[str], *, per_key: int = 1000) -> list[StoredWork]:
        """The pending deliveries (oldest first, at most `per_key`), shadow and link of each claimed key."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        deliveries: dict[str, list[PendingEvent]] = {key: [] for key in keys}
        attempts: dict[str, int] = {}
        tried: set[str] = set()
        records: dict[tuple[str, int], RecordRow] = {}
        links: dict[tuple[str, int], Link] = {}
        pairs = [split_key(key) for key in keys]
        ids_by_kind: dict[str, list[int]] = {}
        for kind, record_id in pairs:
            ids_by_kind.setdefault(kind, []).append(record_id)
        async with self.reading() as db:
            async with db.execute(
                "SELECT key, seq, body, ingested_at FROM (SELECT d.key, d.seq, e.body, e.ingested_at,"
                " ROW_NUMBER() OVER (PARTITION BY d.key ORDER BY d.seq) AS n"
                f" FROM deliveries d JOIN events e ON e.seq = d.seq WHERE d.sink = ? AND d.key IN ({marks})"
                " AND d.status = 'pending') WHERE n <= ? ORDER BY seq",
                (sink, *keys, per_key),
            ) as cur:
                async for key, seq, body, ingested_at in cur:
                    deliveries[key].append(PendingEvent(seq, body, float(ingested_at)))
            async with db.execute(
                f"SELECT key, attempts, claims FROM outbox WHERE sink = ? AND key IN ({marks})", (sink, *keys)
            ) as cur:
                async for key, n, claims in cur:
                    attempts[key] = int(n)
                    if claims != 1:  # claimed before this claim (or queued by a version that did not count)
                        tried.add(key)
            # One query per kind, `kind = ? AND record_id IN (...)`: SQLite walks the primary key for each id
            # (a row-value `(kind, record_id) IN (VALUES ...)` would scan every record of the kind).
            for kind, ids in ids_by_kind.items():
                id_marks = ",".join("?" * len(ids))
                async with db.execute(
                    "SELECT kind, record_id, sequence, deleted, body FROM records"
                    f" WHERE kind = ? AND record_id IN ({id_marks})",
                    (kind, *ids),
                ) as cur:
                    async for k, record_id, sequence, deleted, body in cur:
                        records[(k, record_id)] = RecordRow(k, record_id, sequence, bool(deleted), body)
                async with db.execute(
                    "SELECT kind, record_id, remote_id, digest, sent FROM links"
                    f" WHERE sink = ? AND kind = ? AND record_id IN ({id_marks})",
                    (sink, kind, *ids),
                ) as cur:
                    async for k, record_id, remote_id, digest, sent in cur:
                        links[(k, record_id)] = Link(remote_id, digest, json.loads(sent) if sent else None)
        return [
            StoredWork(
                sink=sink,
                key=key,
                attempts=attempts.get(key, 0),
                deliveries=tuple(deliveries[key]),
                record=records.get(pair),
                link=links.get(pair),
                tried=key in tried or key not in attempts,
            )
            for key, pair in zip(keys, pairs, strict=True)
        ]

    async def commit(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        """Record a batch of outcomes in one transaction and requeue or retire their keys."""
        if not outcomes:
            return
        now = self._clock()
        finished: dict[str, None] = {}
        rescheduled: dict[str, None] = {}
        totals: dict[str, int] = {}
        async with self.transaction() as db:
            for outcome in outcomes:
                match outcome:
                    case Done():
                        await _set_status(db, sink, outcome.seqs, "done", outcome.detail or None, now)
                        kind, record_id = split_key(outcome.key)
                        if outcome.unlink:
                            await db.execute(
                                "DELETE FROM links WHERE sink = ? AND kind = ? AND record_id = ?",
                                (sink, kind, record_id),
                            )
                        elif outcome.remote_id is not None or outcome.digest is not None:
                            await _upsert_link(
                                db,
                                sink,
                                kind,
                                record_id,
                                outcome.remote_id,
                                outcome.digest,
                                outcome.sent,
                                now,
                            )
                        totals["done"] = totals.get("done", 0) + len(outcome.seqs)
                        if outcome.wrote:  # destination records created or updated
                            totals["writes"] = totals.get("writes", 0) + 1
                        finished[outcome.key] = None
                    case Skipped():
                        await _set_status(db, sink, outcome.seqs, "skipped", outcome.reason, now)
                        if outcome.digest is not None:
                            kind, record_id = split_key(outcome.key)
                            await _upsert_link(db, sink, kind, record_id, None, outcome.digest, None, now)
                        totals["skipped"] = totals.get("skipped", 0) + len(outcome.seqs)
                        finished[outcome.key] = None
                    case Dead():
                        cur = await db.execute(
                            "INSERT INTO dead_letters (sink, key, reason, http_status, request, attempts,"
                            " created_at) VALUES (?,?,?,?,?,?,?)",
                            (
                                sink,
                                outcome.key,
                                outcome.reason,
                                outcome.http_status,
                                outcome.request,
                                outcome.attempts,
                                now,
                            ),
                        )
                        await db.executemany(
                            "UPDATE deliveries SET status = 'dead', dead_letter = ?, reason = ?, updated_at = ?"
                            " WHERE sink = ? AND seq = ?",
                            [(cur.lastrowid, outcome.reason, now, sink, seq) for seq in outcome.seqs],
                        )
                        totals["dead"] = totals.get("dead", 0) + len(outcome.seqs)
                        finished[outcome.key] = None
                    case Retry():
                        await db.execute(
                            "UPDATE outbox SET claimed = 0, attempts = attempts + 1, due_at = ?, last_error = ?"
                            " WHERE sink = ? AND key = ?",
                            (outcome.at, outcome.error, sink, outcome.key),
                        )
                        rescheduled[outcome.key] = None
                    case Deferred():
                        await db.execute(
                            "UPDATE outbox SET claimed = 0, due_at = ?, last_error = ? WHERE sink = ? AND key = ?",
                            (outcome.at, outcome.reason, sink, outcome.key),
                        )
                        rescheduled[outcome.key] = None
                    case Released():
                        await db.execute(
                            "UPDATE outbox SET claimed = 0 WHERE sink = ? AND key = ?", (sink, outcome.key)
                        )
                        rescheduled[outcome.key] = None
            retire = [(sink, key) for key in finished if key not in rescheduled]
            if retire:
                await db.executemany(
                    "DELETE FROM outbox WHERE sink = ? AND key = ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
                    " WHERE d.sink = outbox.sink AND d.key = outbox.key AND d.status = 'pending')",
                    retire,
                )
                # Deliveries that arrived while the key was in flight: due at once, with a fresh attempt count,
                # never tried.
                await db.executemany(
                    "UPDATE outbox SET claimed = 0, attempts = 0, claims = 0, due_at = ?, last_error = NULL,"
                    " first_seq = (SELECT MIN(d.seq) FROM deliveries d WHERE d.sink = outbox.sink"
                    " AND d.key = outbox.key AND d.status = 'pending') WHERE sink = ? AND key = ?",
                    [(now, s, k) for s, k in retire],
                )
            if totals:
                await db.executemany(
                    "INSERT INTO totals (sink, outcome, n) VALUES (?,?,?)"
                    " ON CONFLICT (sink, outcome) DO UPDATE SET n = n + excluded.n",
                    [(sink, outcome, n) for outcome, n in totals.items()],
                )

    async def set_sink_state(self, sink: str, *, paused: str | None, until: float | None = None) -> None:
        """Record (for a status reader in another process) whether a destination is paused, and why."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO sink_state (sink, paused, paused_until, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (sink) DO UPDATE SET paused = excluded.paused,"
                " paused_until = excluded.paused_until, updated_at = excluded.updated_at",
                (sink, paused, until, self._clock()),
            )

    async def pending(self, sink: str | None = None) -> int:
        """Pending deliveries, of one destination or of every enabled one (a destination switched off keeps its
        backlog for later, but holds back neither polling nor an idle check)."""
        sinks = (sink,) if sink is not None else self.sinks
        if not sinks:
            return 0
        marks = ",".join("?" * len(sinks))
        async with self.reading() as db:
            value = await scalar(
                db, f"SELECT COUNT(*) FROM deliveries WHERE sink IN ({marks}) AND status = 'pending'", sinks
            )
        return int(value)


async def _set_status(
    db: aiosqlite.Connection, sink: str, seqs: Sequence[int], status: str, reason: str | None, now: float
) -> None:
    await db.executemany(
        "UPDATE deliveries SET status = ?, reason = ?, updated_at = ? WHERE sink = ? AND seq = ?"
        " AND status = 'pending'",
        [(status, reason, now, sink, seq) for seq in seqs],
    )


async def _upsert_link(
    db: aiosqlite.Connection,
    sink: str,
    kind: str,
    record_id: int,
    remote_id: str | None,
    digest: str | None,
    sent: dict[str, Any] | None,
    now: float,
) -> None:
    await db.execute(
        "INSERT INTO links (sink, kind, record_id, remote_id, digest, sent, updated_at) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (sink, kind, record_id) DO UPDATE SET"
        " remote_id = COALESCE(excluded.remote_id, links.remote_id),"
        " digest = COALESCE(excluded.digest, links.digest), sent = COALESCE(excluded.sent, links.sent),"
        " updated_at = excluded.updated_at",
        (sink, kind, record_id, remote_id, digest, json.dumps(sent) if sent is not None else None, now),
    )
