"""Opening the SQLite file: mode 0600, WAL, versioned migrations, refusing a database newer than the code, and
every SQLite or file-system failure turned into the store's error of the right kind (transient, location, damaged),
with the connection closed so its worker thread never keeps a failed process alive."""

from __future__ import annotations

import os
import re
import sqlite3
from importlib.resources import files
from pathlib import Path
from typing import Literal

import aiosqlite
import anyio

from state.errors import StoreDamaged, StoreError, StoreLocation, StoreUnavailable
from state.owner import os_error

Access = Literal["owner", "shared", "readonly"]
BUSY_TIMEOUT_MS = 10_000  # how long a statement waits for another process's write lock
# The WAL is copied into the database once it holds this many pages (about 40 MB), not SQLite's 1,000: ingest
# rewrites the same index pages page after page, and each checkpoint copies a page once however often it was
# rewritten since the last (bytes written per ingested event 34 -> 26 KiB, a commit's time halved). The file is
# cut back to WAL_KEEP_BYTES after a checkpoint that empties it (a large prune or migration grows it past that).
WAL_CHECKPOINT_PAGES = 10_000
WAL_KEEP_BYTES = 64 * 2**20

_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped with the code, in order."""
    found = []
    for entry in files("state").joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise StoreError(f"migration {name} is out of sequence (expected {expected:04d})")
    return found


SCHEMA_VERSION = len(migrations())


def _create_private(path: Path) -> None:
    """Create the database file (and its directory) readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if row is None:
        return 0
    got = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(got[0]) if got else 0


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    current = _schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: the database has schema version {current}, newer than this syncd understands"
            f" ({SCHEMA_VERSION}); upgrade syncd or point state.path at another file"
        )
    for version, _name, sql in migrations():
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            if version == 1:
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version (version) VALUES (1)")
            else:
                conn.execute("UPDATE schema_version SET version = ?", (version,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite rolls back by itself after some errors (a full disk, I/O)
                conn.execute("ROLLBACK")
            raise


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons inside literals or triggers)."""
    return [s.strip() for s in sql.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(chunk: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in chunk.splitlines())


def _prepare(file: Path) -> None:
    """Create, switch to WAL and migrate the database (synchronously, on a worker thread, once at start)."""
    try:
        _create_private(file)
    except OSError as exc:
        raise os_error(exc, file, "cannot create the database file") from None
    try:
        conn = sqlite3.connect(file, isolation_level=None)
    except sqlite3.Error as exc:
        raise translate(exc, file) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{file}: could not switch the database to WAL mode (got {mode})")
        _migrate(conn, file)
    except sqlite3.Error as exc:
        raise translate(exc, file) from None
    finally:
        conn.close()


async def open_database(path: str | os.PathLike[str], *, access: Access = "owner") -> aiosqlite.Connection:
    """Open the state database at `path`.

    - "owner": create and migrate it first (only the process holding the file's owner lock may);
    - "shared": a writer beside the owner (repairs while the daemon runs): the file must exist at the current
      schema version, and nothing is created or migrated;
    - "readonly": a read-only connection (status readers); the file must exist.
    """
    file = Path(path)
    if access == "owner":
        await anyio.to_thread.run_sync(_prepare, file)
    elif not await anyio.Path(file).exists():
        raise _missing(file)
    return await connect(file, access)


async def connect(file: Path, access: Access) -> aiosqlite.Connection:
    """A connection to the (existing, migrated) database at `file`, set up for `access`."""
    # Not confined to its worker thread: `StoreBase.peek` reads on the event loop's thread while it holds the
    # store's lock, when the worker runs nothing on it.
    try:
        if access == "readonly":
            absolute = await anyio.Path(file).absolute()
            uri = f"{absolute.as_uri()}?mode=ro"  # a name with ? or # in it stays a name
            conn = await aiosqlite.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            conn = await aiosqlite.connect(file, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise translate(exc, file) from None
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if access != "readonly":
            # NORMAL is durable across process crashes in WAL mode (only an OS crash can lose the last commits).
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            await conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
        version = await _read_version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{file}: the database has schema version {version}, newer than this syncd understands"
                f" ({SCHEMA_VERSION}); upgrade syncd"
            )
        if access == "shared" and version < SCHEMA_VERSION:
            raise StoreError(
                f"{file}: the database has schema version {version}, older than this syncd ({SCHEMA_VERSION});"
                " start `syncd run` of this version once to upgrade it, then run this command again"
            )
    except BaseException as exc:
        await close_quietly(conn)
        if isinstance(exc, sqlite3.Error):
            raise translate(exc, file) from None
        raise
    return conn


async def close_quietly(conn: aiosqlite.Connection) -> None:
    """Close a connection whatever state it is in (its worker thread must end, or the process cannot exit)."""
    with anyio.CancelScope(shield=True):
        try:
            await conn.close()
        except Exception:  # already broken: the thread still stops
            conn.stop()


def _missing(file: Path) -> StoreError:
    """No database at `file`: never created, or deleted (its write-ahead log left behind says so)."""
    left = [p.name for p in (_sibling(file, "-wal"), _sibling(file, "-shm")) if p.exists()]
    if left:
        return StoreDamaged(
            f"{file} is missing but {' and '.join(left)} beside it remain: the database was deleted or moved without"
            " them. Put it back (with them); or, to start over with an empty state, remove them too"
            " (every stream then starts again from sell.start)"
        )
    return StoreError(f"{file}: no state database here yet (has `syncd run` started?)")


def _sibling(file: Path, suffix: str) -> Path:
    return file.with_name(file.name + suffix)


def leftovers(file: Path) -> str | None:
    """Before the owner opens `file`: what the files beside it say happened since the last run, when something
    did (None when nothing is amiss); what can be repaired is. Raises StoreDamaged when the database is gone but
    its log remains. Only the owner (holding the file's lock, so no other syncd has it open) may call this."""
    wal, shm = _sibling(file, "-wal"), _sibling(file, "-shm")
    if not file.exists():
        if wal.exists() or shm.exists():
            raise _missing(file)
        return None
    if shm.exists() and not wal.exists():
        # The index of a log that is gone: every reader would take it at its word and fail ("disk I/O error").
        shm.unlink(missing_ok=True)
        return (
            f"{wal} was missing (deleted after the last run stopped without closing the file): the changes it held"
            " are lost, possibly all the state if it had never been checkpointed into the database. Streams resume"
            " from the positions the file still holds (from sell.start where it holds none) and deliveries are"
            " repeated where needed; its stale index (-shm) was removed"
        )
    return None


def translate(exc: sqlite3.Error, file: Path) -> StoreError:
    """A SQLite error as the store's error of the right kind, naming the file and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = f"{exc} ({name})" if name else str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreUnavailable(
            f"{file}: the database stayed locked by another process for {BUSY_TIMEOUT_MS // 1000} s ({text});"
            " try again once it lets go (a long repair, a backup, a sqlite3 shell left open?)"
        )
    if name.startswith("SQLITE_FULL"):
        return StoreUnavailable(f"{file}: the disk is full ({text}); free space on its file system")
    if name == "SQLITE_IOERR_SHORT_READ":
        return StoreUnavailable(
            f"{file}: disk I/O error reading the database ({text}): its write-ahead log {file.name}-wal was"
            " probably deleted while a process had the file open. A running `syncd run` notices within seconds"
            " and repairs it without losing anything; with none running, `syncd run` repairs it when it starts"
            " (the changes in the deleted log are lost)"
        )
    if name.startswith("SQLITE_IOERR") or name in ("SQLITE_NOMEM", "SQLITE_PROTOCOL"):
        return StoreUnavailable(f"{file}: {text}; check the disk (free space, errors) and its file system")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or (isinstance(exc, sqlite3.DatabaseError) and not name):
        return StoreDamaged(
            f"{file} is not a usable SQLite database ({text}): it is truncated or damaged. Stop syncd, move it"
            f" aside with its -wal and -shm files, and restore a backup; or start over with an empty state file"
            " (every stream then starts again from sell.start)"
        )
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
        return StoreLocation(f"{file}: the database cannot be opened for writing here ({text})")
    return StoreError(f"{file}: not a usable SQLite database ({text})")


async def _read_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'") as cur:
        if await cur.fetchone() is None:
            return 0
    async with conn.execute("SELECT version FROM schema_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0
