"""Opening the SQLite file: mode 0600, WAL, versioned migrations, and refusing a database newer than the code."""

from __future__ import annotations

import os
import re
import sqlite3
from importlib.resources import files
from pathlib import Path

import aiosqlite
import anyio

from state.errors import StoreError

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
            conn.execute("ROLLBACK")
            raise


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons inside literals or triggers)."""
    return [s.strip() for s in sql.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(chunk: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in chunk.splitlines())


def _prepare(file: Path) -> None:
    """Create, switch to WAL and migrate the database (synchronously, on a worker thread, once at start)."""
    _create_private(file)
    conn = sqlite3.connect(file, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{file}: could not switch the database to WAL mode (got {mode})")
        _migrate(conn, file)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{file}: not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


async def open_database(path: str | os.PathLike[str], *, readonly: bool = False) -> aiosqlite.Connection:
    """Open the state database at `path`; when writable, create and migrate it first."""
    file = Path(path)
    if readonly:
        if not await anyio.Path(file).exists():
            raise StoreError(f"{file}: no state database here yet (has `syncd run` started?)")
        conn = await aiosqlite.connect(f"file:{file}?mode=ro", uri=True, isolation_level=None)
    else:
        await anyio.to_thread.run_sync(_prepare, file)
        conn = await aiosqlite.connect(file, isolation_level=None)
    try:
        await conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            # NORMAL is durable across process crashes in WAL mode (only an OS crash can lose the last commits).
            await conn.execute("PRAGMA synchronous = NORMAL")
        version = await _read_version(conn)
    except sqlite3.DatabaseError as exc:
        await conn.close()
        raise StoreError(f"{file}: not a usable SQLite database: {exc}") from None
    if version > SCHEMA_VERSION:
        await conn.close()
        raise StoreError(
            f"{file}: the database has schema version {version}, newer than this syncd understands"
            f" ({SCHEMA_VERSION}); upgrade syncd"
        )
    return conn


async def _read_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'") as cur:
        if await cur.fetchone() is None:
            return 0
    async with conn.execute("SELECT version FROM schema_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0
