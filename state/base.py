"""The store's foundation: one writer connection, its lock, the owner lock of the file when this process owns it,
and the transaction every write goes through.

All writes go through `transaction()`, which holds an async lock (one writer, no interleaved statements from other
tasks) and runs `BEGIN IMMEDIATE` … `COMMIT`, shielded from cancellation so a commit is never abandoned halfway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self, TypeVar, cast

import aiosqlite
import anyio

from state.errors import StoreError
from state.owner import OwnerLock

Clock = Callable[[], float]
T = TypeVar("T")


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
        self._lock = anyio.Lock(fast_acquire=True)  # no checkpoint when free: the work it guards awaits anyway
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

    async def in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` run as ONE write transaction, whole, on the connection's worker thread: one hand-off between
        the event loop and that thread for the lot, where `transaction()` takes one per statement (a page of a
        hundred events took about fourteen). Same lock, same shield, same BEGIN IMMEDIATE … COMMIT; rolled back
        when `work` or the commit fails. `work` must be synchronous and quick: nothing else reaches the database
        while it runs."""

        def run() -> T:
            conn = self._conn._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite rolls back by itself after some errors (a full disk, I/O)
                    conn.execute("ROLLBACK")
                raise
            return result

        with anyio.CancelScope(shield=True):
            async with self._lock:
                result = await on_worker(self._conn, run)
        return result

    async def in_reading(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` (synchronous reads) run whole on the connection's worker thread, kept out of other tasks'
        transactions like `reading()`: one hand-off for all its statements and rows (aiosqlite's cursors take one
        per row)."""
        async with self._lock:
            return await on_worker(self._conn, lambda: work(self._conn._conn))

    async def on_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` run whole on the connection's worker thread, inside the transaction the caller holds (from
        `transaction()`): its statements belong to that transaction."""
        return await on_worker(self._conn, lambda: work(self._conn._conn))

    async def peek(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work`, a quick read of a few rows by an index (a record, its peers by e-mail), run on the event loop's
        own thread, kept out of other tasks' transactions like `in_reading`: a hand-off to the worker thread and
        back costs about 75 µs of CPU, several times such a read, and the writers ask a few per key. While the lock
        is held the worker thread runs nothing on the connection (every statement goes through the lock), so the
        two threads never share it at once. Never for a scan: the event loop waits for it."""
        async with self._lock:
            return work(self._conn._conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """Reads that must not interleave with another task's transaction."""
        async with self._lock:
            yield self._conn


async def scalar(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row (None when there is none), in one hand-off to the worker thread."""
    row = await on_worker(db, lambda: db._conn.execute(sql, params).fetchone())
    return row[0] if row else None


def on_worker(conn: aiosqlite.Connection, function: Callable[[], T]) -> Awaitable[T]:
    """`function` run on `conn`'s worker thread, the thread every statement of that connection runs on (aiosqlite
    has no public call for this; its `_execute` is how its own methods hand work to that thread)."""
    execute = cast(Callable[[Callable[[], T]], Awaitable[T]], conn._execute)
    return execute(function)
