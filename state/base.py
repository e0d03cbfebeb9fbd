"""The store's foundation: one writer connection, its lock, and the transaction every write goes through.

All writes go through `transaction()`, which holds an async lock (one writer, no interleaved statements from other
tasks) and runs `BEGIN IMMEDIATE` … `COMMIT`, shielded from cancellation so a commit is never abandoned halfway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite
import anyio

Clock = Callable[[], float]


class StoreBase:
    """The connection, the clock and the enabled destinations of one store."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, sinks: Sequence[str], clock: Clock) -> None:
        self._conn = conn
        self.path = path
        self.sinks = tuple(sinks)
        self._clock = clock
        self._lock = anyio.Lock()

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; the lock keeps other tasks' statements out of it. Shielded from cancellation
        so a commit in progress is never abandoned halfway."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """Reads that must not interleave with another task's transaction."""
        async with self._lock:
            yield self._conn


async def scalar(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row (None when there is none)."""
    async with db.execute(sql, params) as cur:
        row = await cur.fetchone()
    return row[0] if row else None
