"""The store: one SQLite file holding positions, events, the shadow, deliveries, links and dead letters.

`Store` gathers the parts: ingest (one transaction per page), the outbox (claims and outcomes, waits, one
transaction per batch), questions about records, repairs, requeues, status and reports, upkeep, mapping drift, jobs
(backfills, reconciliations) and the ingest of backfill pages. Both hot paths are set-based, so their cost barely
depends on the page or batch size. The store speaks only its own vocabulary (state.rows, state.outcomes, state.keys):
it never decodes a body and knows nothing of who routes what where.

A store is opened in one of three ways:
- as the file's owner (the default; the daemon): it takes the OS lock of the file for as long as it is open
  (state.owner), creates and migrates the file, and lapses the claims a dead owner left; only it claims keys;
- shared (`shared=True`, repairs while the daemon runs): a writer beside the owner that never creates, migrates
  or claims, and never touches a claim;
- read-only (`readonly=True`, status readers).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from state.backfill import Backfills
from state.base import Clock
from state.clock import ClockRepair
from state.db import Access, close_quietly, leftovers, open_database, translate
from state.drift import Drift
from state.feedback import Feedback
from state.files import FileWatch
from state.ingest import TEMP_TABLES, Ingesting
from state.jobs import Jobs
from state.outbox import Outbox
from state.owner import OwnerLock
from state.records import Records
from state.repair import Repair
from state.requeue import Requeueing
from state.status import Reporting
from state.upkeep import Upkeep


class Store(
    Ingesting,
    Outbox,
    Records,
    Repair,
    Requeueing,
    Reporting,
    Upkeep,
    Drift,
    Jobs,
    Backfills,
    FileWatch,
    ClockRepair,
    Feedback,
):
    """The durable state of one syncd instance."""

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        sinks: Sequence[str] = (),
        clock: Clock = time.time,
        readonly: bool = False,
        shared: bool = False,
        command: str = "syncd run",
    ) -> Store:
        """Open the store; `sinks` are the enabled destinations, whose pending deliveries `pending()` counts.
        As the owner (neither `readonly` nor `shared`), `command` is what the lock file says owns it."""
        file = Path(path)
        access: Access = "readonly" if readonly else "shared" if shared else "owner"
        lock = None
        notices: list[tuple[str, str]] = []
        if access == "owner":
            lock = await anyio.to_thread.run_sync(lambda: OwnerLock.acquire(file, command=command))
        try:
            if lock is not None:
                found = await anyio.to_thread.run_sync(leftovers, file)
                notices += [("state_wal_missing", found)] if found else []
            conn = await open_database(file, access=access)
            store = cls(conn, file, sinks, clock, owner=lock)
            store.notices = notices
            if lock is not None:
                try:
                    await store._take_over()
                    await store.note_files()
                except BaseException:
                    await close_quietly(conn)
                    raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return store

    async def _take_over(self) -> None:
        """What the owner does once, on opening: its temporary tables, and the claims of the owner before it (dead,
        since this one holds the lock) lapse: whatever was in flight when it died is due again, and a write it had
        sent may still land (unsure: the key is written again once that can no longer happen)."""
        try:
            await self._conn.execute("PRAGMA temp_store = MEMORY")
            for ddl in TEMP_TABLES:
                await self._conn.execute(ddl)
            async with self.transaction() as db:
                await db.execute("UPDATE outbox SET claimed = 0, claimed_by = NULL, unsure = 1 WHERE claimed = 1")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None
