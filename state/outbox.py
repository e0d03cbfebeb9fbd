"""The outbox: claiming due keys, loading their work, and committing outcomes in one transaction per batch."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from state.base import StoreBase, scalar
from state.feedback import note_outcomes
from state.keys import split_key
from state.outcomes import Dead, Deferred, Done, Outcome, Released, Retry, Skipped, Waiting
from state.rows import Link, NotedOutcome, PendingEvent, RecordRow, StoredWork, Wait

# Waits of blocked keys: waiting, not claimed, not due yet, on a key nothing is queued for in their destination.
_BLOCKED = (
    "SELECT 1 FROM waits w JOIN outbox o ON o.sink = w.sink AND o.key = w.key WHERE o.claimed = 0 AND o.due_at > ?"
    " AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.sink = w.sink AND x.key = w.on_key)"
)
_CLAIM = (
    "UPDATE outbox SET claimed = 1, claimed_by = :token, claims = claims + 1, claimed_at = :now,"
    " verify_at = CASE WHEN unsure = 1 THEN MAX(COALESCE(verify_at, 0), :now + :window) ELSE verify_at END,"
    " unsure = 0 WHERE sink = :sink AND key IN (SELECT key FROM outbox WHERE sink = :sink AND claimed = 0"
    " AND due_at <= :now ORDER BY first_seq LIMIT :limit) RETURNING key, first_seq"
)
WAIT_FALLBACK = 30.0  # seconds before a waiting key is looked at again when its outcome names no time


class Outbox(StoreBase):
    """What dispatchers ask of the store."""

    async def claim(self, sink: str, limit: int, *, late_window: float = 0.0) -> list[str]:
        """Claim up to `limit` due keys of `sink`, oldest first, for this owner; a claimed key is not claimed again
        until its outcome is committed (or the owner dies and the next one lapses its claims). Claims are counted
        until an outcome finishes the key. `late_window`: how long a write whose outcome is unknown may still land;
        an unsure key claimed now is checked (written again) once that long has passed, before it is settled."""
        token = self.owner_token()
        params = {"sink": sink, "now": self._clock(), "limit": limit, "token": token, "window": late_window}

        def work(db: sqlite3.Connection) -> list[Any]:
            return db.execute(_CLAIM, params).fetchall()

        rows = await self.in_transaction(work)
        return [key for key, _ in sorted(rows, key=lambda r: int(r[1]))]

    async def checks_pending(self, sink: str | None = None) -> int:
        """Keys (of one destination, or of every enabled one) whose late-write check is still to come."""
        sinks = (sink,) if sink is not None else self.sinks
        if not sinks:
            return 0
        marks = ",".join("?" * len(sinks))
        async with self.reading() as db:
            value = await scalar(
                db, f"SELECT COUNT(*) FROM outbox WHERE sink IN ({marks}) AND verify_at IS NOT NULL", sinks
            )
        return int(value)

    async def next_due(self, sink: str) -> float | None:
        """When the earliest unclaimed key of `sink` falls due (None when there is none)."""
        async with self.reading() as db:
            value = await scalar(db, "SELECT MIN(due_at) FROM outbox WHERE sink = ? AND claimed = 0", (sink,))
        return float(value) if value is not None else None

    async def load_work(self, sink: str, keys: Sequence[str], *, per_key: int = 1000) -> list[StoredWork]:
        """The pending deliveries (oldest first, at most `per_key`), shadow, link and wait of each claimed key."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        deliveries: dict[str, list[PendingEvent]] = {key: [] for key in keys}
        attempts: dict[str, int] = {}
        tried: set[str] = set()
        reassert: set[str] = set()
        records: dict[tuple[str, int], RecordRow] = {}
        links: dict[tuple[str, int], Link] = {}
        waits: dict[str, Wait] = {}
        pairs = [split_key(key) for key in keys]
        ids_by_kind: dict[str, list[int]] = {}
        for kind, record_id in pairs:
            ids_by_kind.setdefault(kind, []).append(record_id)

        def read(db: sqlite3.Connection) -> None:
            for key, seq, body, ingested_at in db.execute(
                "SELECT key, seq, body, ingested_at FROM (SELECT d.key, d.seq, e.body, e.ingested_at,"
                " ROW_NUMBER() OVER (PARTITION BY d.key ORDER BY d.seq) AS n"
                f" FROM deliveries d JOIN events e ON e.seq = d.seq WHERE d.sink = ? AND d.key IN ({marks})"
                " AND d.status = 'pending') WHERE n <= ? ORDER BY seq",
                (sink, *keys, per_key),
            ):
                deliveries[key].append(PendingEvent(seq, body, float(ingested_at)))
            for key, n, claims, check in db.execute(
                "SELECT key, attempts, claims, verify_at IS NOT NULL AND verify_at <= claimed_at FROM outbox"
                f" WHERE sink = ? AND key IN ({marks})",
                (sink, *keys),
            ):
                attempts[key] = int(n)
                if claims != 1:  # claimed before this claim (or queued by a version that did not count)
                    tried.add(key)
                if check:
                    reassert.add(key)
            for key, on_key, reason, since, checks in db.execute(
                f"SELECT key, on_key, reason, since, checks FROM waits WHERE sink = ? AND key IN ({marks})",
                (sink, *keys),
            ):
                waits[key] = Wait(on_key, reason, float(since), int(checks))
            # One query per kind, `kind = ? AND record_id IN (...)`: SQLite walks the primary key for each id
            # (a row-value `(kind, record_id) IN (VALUES ...)` would scan every record of the kind).
            for kind, ids in ids_by_kind.items():
                id_marks = ",".join("?" * len(ids))
                for k, record_id, sequence, deleted, body in db.execute(
                    "SELECT kind, record_id, sequence, deleted, body FROM records"
                    f" WHERE kind = ? AND record_id IN ({id_marks})",
                    (kind, *ids),
                ):
                    records[(k, record_id)] = RecordRow(k, record_id, sequence, bool(deleted), body)
                for k, record_id, remote_id, digest, sent in db.execute(
                    "SELECT kind, record_id, remote_id, digest, sent FROM links"
                    f" WHERE sink = ? AND kind = ? AND record_id IN ({id_marks})",
                    (sink, kind, *ids),
                ):
                    links[(k, record_id)] = Link(remote_id, digest, json.loads(sent) if sent else None)

        await self.in_reading(read)
        return [
            StoredWork(
                sink=sink,
                key=key,
                attempts=attempts.get(key, 0),
                deliveries=tuple(deliveries[key]),
                record=records.get(pair),
                link=links.get(pair),
                tried=key in tried or key not in attempts,
                waiting=waits.get(key),
                reassert=key in reassert,
            )
            for key, pair in zip(keys, pairs, strict=True)
        ]

    async def commit(self, sink: str, outcomes: Sequence[Outcome], *, noted: Sequence[NotedOutcome] = ()) -> None:
        """Record a batch of outcomes in one transaction, in order, one step per outcome kind; then retire the keys
        an outcome finished (unless another rescheduled them), make the keys waiting on them due, and add the batch
        to the running totals. `noted`: the batch's outcomes as feedback to Sell sees them (a changed one queues
        its key for feedback, in the same transaction)."""
        if not outcomes:
            return
        batch = _Batch(sink, self._clock())

        def record(db: sqlite3.Connection) -> None:
            for outcome in outcomes:
                match outcome:
                    case Done():
                        _record_done(db, batch, outcome)
                    case Skipped():
                        _record_skipped(db, batch, outcome)
                    case Dead():
                        _record_dead(db, batch, outcome)
                    case Retry():
                        _record_retry(db, batch, outcome)
                    case Deferred():
                        _record_deferred(db, batch, outcome)
                    case Waiting():
                        _record_waiting(db, batch, outcome)
                    case Released():
                        _record_released(db, batch, outcome)
            _retire_finished(db, batch)
            _release_waiters(db, batch)
            _add_totals(db, batch)

        if not noted:
            await self.in_transaction(record)
            return
        async with self.transaction() as db:
            await self.on_connection(record)
            await note_outcomes(db, sink, noted, batch.now)

    async def set_sink_state(self, sink: str, *, paused: str | None, until: float | None = None) -> None:
        """Record (for a status reader in another process) whether a destination is paused, and why."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO sink_state (sink, paused, paused_until, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (sink) DO UPDATE SET paused = excluded.paused,"
                " paused_until = excluded.paused_until, updated_at = excluded.updated_at",
                (sink, paused, until, self._clock()),
            )

    async def set_throttle(self, api: str, until: float) -> None:
        """Record (for a status reader in another process) that calls to `api` wait until `until` (epoch s)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO throttles (api, until, updated_at) VALUES (?,?,?)"
                " ON CONFLICT (api) DO UPDATE SET until = excluded.until, updated_at = excluded.updated_at",
                (api, until, self._clock()),
            )

    async def pending(self, sink: str | None = None, *, blocked: bool = True) -> int:
        """Pending deliveries, of one destination or of every enabled one (a destination switched off keeps its
        backlog for later, but holds back neither polling nor an idle check). `blocked=False` leaves out those of
        keys that are blocked: waiting, not due yet, on a key with nothing queued in their destination (only a
        new change can release them, so they do not keep an idle check waiting)."""
        sinks = (sink,) if sink is not None else self.sinks
        if not sinks:
            return 0
        marks = ",".join("?" * len(sinks))
        sql = f"SELECT COUNT(*) FROM deliveries d WHERE d.sink IN ({marks}) AND d.status = 'pending'"
        params: list[Any] = list(sinks)
        if not blocked:
            sql += f" AND NOT EXISTS ({_BLOCKED} AND w.sink = d.sink AND w.key = d.key)"
            params.append(self._clock())
        async with self.reading() as db:
            value = await scalar(db, sql, params)
        return int(value)


# ---------------------------------------------------------------------------------------------------------------
# committing: one step per outcome kind, inside the batch's transaction


@dataclass
class _Batch:
    """What the steps of one commit share: the destination, the time, and what they did to which keys."""

    sink: str
    now: float
    finished: dict[str, None] = field(default_factory=dict)  # keys an outcome settled (insertion-ordered set)
    rescheduled: set[str] = field(default_factory=set)  # keys put back in the queue
    waiting: set[str] = field(default_factory=set)  # keys that wait on another
    attempted: set[str] = field(default_factory=set)  # keys that failed or were deferred: waiting on no key now
    dead: set[str] = field(default_factory=set)  # keys dead-lettered (never checked for late writes)
    uncounted: set[str] = field(default_factory=set)  # keys whose claim left no write (counted off once)
    totals: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str, n: int) -> None:
        self.totals[outcome] = self.totals.get(outcome, 0) + n


def _uncount(db: sqlite3.Connection, batch: _Batch, outcome: Retry | Deferred | Waiting | Released) -> None:
    """A claim that sent nothing with effect no longer counts among the key's claims that may have left a write
    (once per key and batch, however many outcomes the key has)."""
    if outcome.sent_nothing and outcome.key not in batch.uncounted:
        batch.uncounted.add(outcome.key)
        db.execute(
            "UPDATE outbox SET claims = MAX(claims - 1, 0) WHERE sink = ? AND key = ?", (batch.sink, outcome.key)
        )


def _record_done(db: sqlite3.Connection, batch: _Batch, outcome: Done) -> None:
    """Deliveries done (with the detail); the link updated, or forgotten after a delete."""
    _set_status(db, batch, outcome.seqs, "done", outcome.detail or None)
    kind, record_id = split_key(outcome.key)
    if outcome.unlink:
        db.execute("DELETE FROM links WHERE sink = ? AND kind = ? AND record_id = ?", (batch.sink, kind, record_id))
    elif outcome.remote_id is not None or outcome.digest is not None:
        _upsert_link(db, batch, kind, record_id, outcome.remote_id, outcome.digest, outcome.sent)
    batch.count("done", len(outcome.seqs))
    if outcome.wrote:  # destination records created or updated
        batch.count("writes", 1)
    batch.finished[outcome.key] = None


def _record_skipped(db: sqlite3.Connection, batch: _Batch, outcome: Skipped) -> None:
    """Deliveries skipped with the reason; a digest remembered, so an unchanged record is not sent again."""
    _set_status(db, batch, outcome.seqs, "skipped", outcome.reason)
    if outcome.digest is not None:
        kind, record_id = split_key(outcome.key)
        _upsert_link(db, batch, kind, record_id, None, outcome.digest, None)
    batch.count("skipped", len(outcome.seqs))
    batch.finished[outcome.key] = None


def _record_dead(db: sqlite3.Connection, batch: _Batch, outcome: Dead) -> None:
    """A dead letter with the reason, the status and the request; its deliveries point at it."""
    cur = db.execute(
        "INSERT INTO dead_letters (sink, key, reason, http_status, request, attempts, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        (batch.sink, outcome.key, outcome.reason, outcome.http_status, outcome.request, outcome.attempts, batch.now),
    )
    db.executemany(
        "UPDATE deliveries SET status = 'dead', dead_letter = ?, reason = ?, updated_at = ? WHERE sink = ? AND seq = ?",
        [(cur.lastrowid, outcome.reason, batch.now, batch.sink, seq) for seq in outcome.seqs],
    )
    batch.count("dead", len(outcome.seqs))
    batch.finished[outcome.key] = None
    batch.dead.add(outcome.key)


def _record_retry(db: sqlite3.Connection, batch: _Batch, outcome: Retry) -> None:
    """The key due again at `at`, one attempt more, with the error (and unsure when the call may have landed)."""
    _uncount(db, batch, outcome)
    db.execute(
        "UPDATE outbox SET claimed = 0, claimed_by = NULL, attempts = attempts + 1, due_at = ?, last_error = ?,"
        " unsure = MAX(unsure, ?) WHERE sink = ? AND key = ?",
        (outcome.at, outcome.error, int(outcome.unsure), batch.sink, outcome.key),
    )
    batch.rescheduled.add(outcome.key)
    batch.attempted.add(outcome.key)


def _record_deferred(db: sqlite3.Connection, batch: _Batch, outcome: Deferred) -> None:
    """The key due again at `at`, with the reason; no attempt counted."""
    _uncount(db, batch, outcome)
    db.execute(
        "UPDATE outbox SET claimed = 0, claimed_by = NULL, due_at = ?, last_error = ? WHERE sink = ? AND key = ?",
        (outcome.at, outcome.reason, batch.sink, outcome.key),
    )
    batch.rescheduled.add(outcome.key)
    batch.attempted.add(outcome.key)  # deferred on time, it waits on no other key any more


def _record_waiting(db: sqlite3.Connection, batch: _Batch, outcome: Waiting) -> None:
    """The key waits on `on`: its wait recorded (since when it waits on that key, how often it was found still
    waiting) and the key due at `at`, no attempt counted. Due at once instead when `on` was written in this
    destination, or a change of its record stored, after the key was claimed: the writer may have looked too early."""
    _uncount(db, batch, outcome)
    db.execute(
        "INSERT INTO waits (sink, key, on_key, reason, since, checks) VALUES (?,?,?,?,?,1)"
        " ON CONFLICT (sink, key) DO UPDATE SET reason = excluded.reason,"
        " since = CASE WHEN waits.on_key = excluded.on_key THEN waits.since ELSE excluded.since END,"
        " checks = CASE WHEN waits.on_key = excluded.on_key THEN waits.checks + 1 ELSE 1 END,"
        " on_key = excluded.on_key",
        (batch.sink, outcome.key, outcome.on, outcome.reason, batch.now),
    )
    at = outcome.at if outcome.at is not None else batch.now + WAIT_FALLBACK
    on_kind, _, on_id = outcome.on.partition(":")
    record_id = int(on_id) if on_id.isascii() and on_id.isdigit() else -1
    db.execute(
        "UPDATE outbox SET claimed = 0, claimed_by = NULL, last_error = :reason,"
        " due_at = CASE WHEN claimed_at IS NOT NULL AND ("
        " EXISTS (SELECT 1 FROM links l WHERE l.sink = :sink AND l.kind = :kind AND l.record_id = :id"
        " AND l.updated_at >= outbox.claimed_at) OR EXISTS (SELECT 1 FROM records r WHERE r.kind = :kind"
        " AND r.record_id = :id AND r.updated_at >= outbox.claimed_at)) THEN :now ELSE :at END"
        " WHERE sink = :sink AND key = :key",
        {
            "reason": outcome.reason,
            "sink": batch.sink,
            "kind": on_kind,
            "id": record_id,
            "now": batch.now,
            "at": at,
            "key": outcome.key,
        },
    )
    batch.rescheduled.add(outcome.key)
    batch.waiting.add(outcome.key)


def _record_released(db: sqlite3.Connection, batch: _Batch, outcome: Released) -> None:
    """The key back in the queue, unchanged."""
    _uncount(db, batch, outcome)
    db.execute("UPDATE outbox SET claimed = 0, claimed_by = NULL WHERE sink = ? AND key = ?", (batch.sink, outcome.key))
    batch.rescheduled.add(outcome.key)


# A finished key's late-write check is still to come: a write of unknown outcome may land after this claim's.
_CHECK_PENDING = "outbox.verify_at IS NOT NULL AND outbox.verify_at > outbox.claimed_at"
_PENDING_DELIVERY = (
    "EXISTS (SELECT 1 FROM deliveries d WHERE d.sink = outbox.sink AND d.key = outbox.key AND d.status = 'pending')"
)


def _retire_finished(db: sqlite3.Connection, batch: _Batch) -> None:
    """Finished keys leave the outbox, unless deliveries arrived while they were in flight (those keys are due at
    once, with a fresh attempt count, never tried) or their late-write check is still to come (those are due when
    it is: every write of unknown outcome can have landed then, and the latest state is written again)."""
    retire = [(batch.sink, key) for key in batch.finished if key not in batch.rescheduled]
    if not retire:
        return
    for sink, key in retire:
        if key in batch.dead:  # a record refused for good is not written again
            db.execute("UPDATE outbox SET verify_at = NULL WHERE sink = ? AND key = ?", (sink, key))
    db.executemany(
        f"DELETE FROM outbox WHERE sink = ? AND key = ? AND NOT {_PENDING_DELIVERY} AND NOT ({_CHECK_PENDING})",
        retire,
    )
    db.executemany(
        "UPDATE outbox SET claimed = 0, claimed_by = NULL, attempts = 0, claims = 0, last_error = NULL,"
        f" due_at = CASE WHEN {_PENDING_DELIVERY} THEN :now ELSE verify_at END,"
        f" verify_at = CASE WHEN {_CHECK_PENDING} THEN verify_at END,"
        " first_seq = COALESCE((SELECT MIN(d.seq) FROM deliveries d WHERE d.sink = outbox.sink"
        " AND d.key = outbox.key AND d.status = 'pending'), first_seq) WHERE sink = :sink AND key = :key",
        [{"now": batch.now, "sink": sink, "key": key} for sink, key in retire],
    )


def _release_waiters(db: sqlite3.Connection, batch: _Batch) -> None:
    """Keys waiting on a key this batch finished are due at once (their writer looks again); a key that finished
    or failed waits no more."""
    finished = [(batch.sink, key) for key in batch.finished]
    if finished:
        db.executemany(
            "UPDATE outbox SET due_at = MIN(due_at, ?) WHERE sink = ? AND key IN"
            " (SELECT key FROM waits WHERE sink = ? AND on_key = ?)",
            [(batch.now, sink, sink, key) for sink, key in finished],
        )
    over = [(batch.sink, key) for key in {*batch.finished, *batch.attempted} if key not in batch.waiting]
    if over:
        db.executemany("DELETE FROM waits WHERE sink = ? AND key = ?", over)


def _add_totals(db: sqlite3.Connection, batch: _Batch) -> None:
    if batch.totals:
        db.executemany(
            "INSERT INTO totals (sink, outcome, n) VALUES (?,?,?)"
            " ON CONFLICT (sink, outcome) DO UPDATE SET n = n + excluded.n",
            [(batch.sink, outcome, n) for outcome, n in batch.totals.items()],
        )


def _set_status(db: sqlite3.Connection, batch: _Batch, seqs: Sequence[int], status: str, reason: str | None) -> None:
    db.executemany(
        "UPDATE deliveries SET status = ?, reason = ?, updated_at = ? WHERE sink = ? AND seq = ?"
        " AND status = 'pending'",
        [(status, reason, batch.now, batch.sink, seq) for seq in seqs],
    )


def _upsert_link(
    db: sqlite3.Connection,
    batch: _Batch,
    kind: str,
    record_id: int,
    remote_id: str | None,
    digest: str | None,
    sent: dict[str, Any] | None,
) -> None:
    db.execute(
        "INSERT INTO links (sink, kind, record_id, remote_id, digest, sent, updated_at) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (sink, kind, record_id) DO UPDATE SET"
        " remote_id = COALESCE(excluded.remote_id, links.remote_id),"
        " digest = COALESCE(excluded.digest, links.digest), sent = COALESCE(excluded.sent, links.sent),"
        " updated_at = excluded.updated_at",
        (batch.sink, kind, record_id, remote_id, digest, json.dumps(sent) if sent is not None else None, batch.now),
    )
