"""The store's foundation: one writer connection, its lock, the owner lock of the file when this process owns it,
and the transaction every write goes through.

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

from state.errors import StoreError
from state.owner import OwnerLock

Clock = Callable[[], float]


class StoreBase:
    """The connection, the clock and the enabled destinations of one store."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        path: Path,
        sinks: Sequence[str],
        clock: Clock,
        *,
        owner: OwnerLock | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self.sinks = tuple(sinks)
        self._clock = clock
        self._lock = anyio.Lock()
        self._owner = owner
        self.notices: list[tuple[str, str]] = []  # (event, problem): what opening found amiss, for the caller to log

    @property
    def owner(self) -> OwnerLock | None:
        """The owner lock this store holds (None when opened shared or read-only)."""
        return self._owner

    def owner_token(self) -> str:
        """The token this owner's claims carry; only the owner claims."""
        if self._owner is None:
            raise StoreError(f"{self.path}: only the process that owns the state file claims keys")
        return self._owner.token

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                async with self._lock:
                    await self._conn.close()
            finally:
                if self._owner is not None:
                    self._owner.release()

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
