"""The files of a state database under its running owner: the database, its write-ahead log (-wal), the log's
index (-shm) and the owner's lock file, and what the owner does when one is deleted or replaced under it.

SQLite keeps working on the files it has open, so a deletion goes unnoticed by the owner itself, while every other
process (`syncd status`, the next start) sees something else: a deleted -wal or -shm makes readers fail with "disk
I/O error" for as long as the owner runs, and a deleted database leaves all state in a file that vanishes when the
owner exits. `FileWatch.check_files` (run every few seconds by the daemon) compares each path with the file the
owner has open and repairs what it can, without losing anything:

- the -wal or -shm deleted or replaced: every change in the open log is checkpointed into the database and the
  connection is reopened, so the files at the paths are the ones in use again;
- the database deleted: what the owner has open is copied to a new file, which takes the old one's place, and the
  connection is reopened on it;
- the database replaced by another file (a restore while running?): the open one is copied aside, nothing is
  written into the new one, and the owner must stop (a restart opens the new one);
- the lock file deleted or replaced: the owner locks a new one; if another process already did, it must stop.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from state.base import StoreBase
from state.db import close_quietly, connect
from state.errors import StoreError
from state.ingest import TEMP_TABLES
from state.owner import OwnerLock

CHECKPOINT_TRIES = 5  # checkpoints attempted (a reader holding an old snapshot makes one incomplete) before waiting


@dataclass(frozen=True, slots=True)
class FileEvent:
    """Something that happened to one of the state files, what was done, and whether the owner must stop."""

    event: str  # state_wal_deleted | state_file_deleted | state_file_replaced | state_lock_replaced
    problem: str
    stop: bool = False


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _sibling(file: Path, suffix: str) -> Path:
    return file.with_name(file.name + suffix)


def _create_private(file: Path) -> None:
    """An empty file readable by its owner only (replacing any left by an earlier attempt)."""
    file.unlink(missing_ok=True)
    os.close(os.open(file, os.O_CREAT | os.O_RDWR | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _put_in_place(copy: Path, db: Path) -> None:
    """The copy becomes the database; a -wal or -shm left at the path belongs to the deleted file, not to it."""
    for suffix in ("-wal", "-shm"):
        _sibling(db, suffix).unlink(missing_ok=True)
    os.replace(copy, db)


class FileWatch(StoreBase):
    """The owner's watch over its files (only an owner has one: see `note_files`)."""

    _inodes: dict[str, int | None]

    async def note_files(self) -> None:
        """Remember which files the open connection uses (after opening, and after every reopening)."""
        self._inodes = await anyio.to_thread.run_sync(self._current_inodes)

    def _current_inodes(self) -> dict[str, int | None]:
        return {
            "db": _inode(self.path),
            "wal": _inode(_sibling(self.path, "-wal")),
            "shm": _inode(_sibling(self.path, "-shm")),
        }

    async def check_files(self) -> list[FileEvent]:
        """Compare the paths with the files in use, repair what was deleted or replaced, and say what happened."""
        if self._owner is None or not hasattr(self, "_inodes"):
            return []
        events: list[FileEvent] = []
        now = await anyio.to_thread.run_sync(self._current_inodes)
        if now["db"] != self._inodes["db"]:
            events.append(await (self._restore_deleted() if now["db"] is None else self._save_replaced()))
        elif now["wal"] != self._inodes["wal"] or now["shm"] != self._inodes["shm"]:
            found = await self._reopen_log(missing=[k for k in ("wal", "shm") if now[k] != self._inodes[k]])
            if found is not None:
                events.append(found)
        if not self._owner.intact:
            events.append(self._relock(self._owner))
        return events

    # -----------------------------------------------------------------------------------------------------------

    async def _reopen_log(self, *, missing: list[str]) -> FileEvent | None:
        names = " and ".join(f"{self.path.name}-{k}" for k in missing)
        async with self._lock:
            for _ in range(CHECKPOINT_TRIES):
                async with self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
                    row = await cur.fetchone()
                if row is not None and row[0] == 0:
                    break
                await anyio.sleep(0.05)
            else:  # a reader keeps an old snapshot: reopening now could lose the changes not yet checkpointed
                return None
            await self._reopen()
        return FileEvent(
            "state_wal_deleted",
            f"{names} in {self.path.parent} was deleted or replaced while syncd had it open (other readers saw"
            " 'disk I/O error'): every change in it was saved into the database and the files were reopened;"
            " nothing was lost. Find what deletes files there (a cleanup job?) and stop it",
        )

    async def _restore_deleted(self) -> FileEvent:
        restoring = _sibling(self.path, f".restoring-{os.getpid()}")
        async with self._lock:
            await self._copy_to(restoring)
            await close_quietly(self._conn)
            await anyio.to_thread.run_sync(_put_in_place, restoring, self.path)
            await self._reopen(closed=True)
        return FileEvent(
            "state_file_deleted",
            f"{self.path} was deleted while syncd had it open: syncd wrote it back from what it holds, and goes on"
            " with it; nothing was lost. Find what deletes files there (a cleanup job?) and stop it",
        )

    async def _save_replaced(self) -> FileEvent:
        aside = _sibling(self.path, f".replaced-{time.strftime('%Y%m%dT%H%M%S')}")
        async with self._lock:
            await self._copy_to(aside)
        return FileEvent(
            "state_file_replaced",
            f"{self.path} was replaced by another file while syncd had the old one open: the old one is saved as"
            f" {aside}, nothing is written into the new one, and syncd stops; started again, it uses the new file",
            stop=True,
        )

    def _relock(self, lock: OwnerLock) -> FileEvent:
        try:
            lock.renew()
        except StoreError as exc:
            return FileEvent(
                "state_lock_replaced",
                f"the lock file {lock.path} was deleted or replaced, and another process now holds the new one"
                f" ({exc}): two processes may be using {self.path}; this one stops",
                stop=True,
            )
        return FileEvent(
            "state_lock_replaced",
            f"the lock file {lock.path} was deleted or replaced while syncd held it: syncd locked it again (a second"
            " `syncd run` could have started meanwhile). Find what deletes files there (a cleanup job?) and stop it",
        )

    # -----------------------------------------------------------------------------------------------------------

    async def _copy_to(self, target: Path) -> None:
        """A consistent copy of the open database (what this connection sees, log included) at `target`, mode
        0600, in WAL mode like the original. The caller holds the store's lock."""
        await anyio.to_thread.run_sync(_create_private, target)
        copy = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        try:
            await self._conn.backup(copy)
            await anyio.to_thread.run_sync(copy.execute, "PRAGMA journal_mode = WAL")
        finally:
            await anyio.to_thread.run_sync(copy.close)

    async def _reopen(self, *, closed: bool = False) -> None:
        """Close the connection (unless `closed`) and open a new one on the paths; the caller holds the lock."""
        if not closed:
            await close_quietly(self._conn)
        self._conn = await connect(self.path, "owner")
        await self._conn.execute("PRAGMA temp_store = MEMORY")
        for ddl in TEMP_TABLES:
            await self._conn.execute(ddl)
        self._inodes = await anyio.to_thread.run_sync(self._current_inodes)
