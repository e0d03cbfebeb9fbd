"""SQLite's failures as the store's errors: each kind of failure becomes the error whose exit code fits it (75 for
what may pass, 78 for what an operator must fix), naming the file."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from state.db import translate
from state.errors import StoreDamaged, StoreError, StoreLocation, StoreUnavailable
from state.owner import os_error

DB = Path("/var/lib/syncd/syncd.db")


def failure(name: str, message: str = "boom") -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorname = name
    return exc


@pytest.mark.parametrize(
    ("name", "kind", "says"),
    [
        ("SQLITE_BUSY", StoreUnavailable, "stayed locked by another process"),
        ("SQLITE_LOCKED", StoreUnavailable, "stayed locked by another process"),
        ("SQLITE_FULL", StoreUnavailable, "the disk is full"),
        ("SQLITE_IOERR_SHORT_READ", StoreUnavailable, "write-ahead log syncd.db-wal was probably deleted"),
        ("SQLITE_IOERR_WRITE", StoreUnavailable, "check the disk"),
        ("SQLITE_CORRUPT", StoreDamaged, "restore a backup"),
        ("SQLITE_NOTADB", StoreDamaged, "start over with an empty state file"),
        ("SQLITE_CANTOPEN", StoreLocation, "cannot be opened for writing"),
        ("SQLITE_READONLY", StoreLocation, "cannot be opened for writing"),
        ("SQLITE_MISUSE", StoreError, "not a usable SQLite database"),
    ],
)
def test_each_sqlite_failure_becomes_the_error_of_its_kind(name: str, kind: type[StoreError], says: str) -> None:
    """Locked, full and I/O failures are transient (75); corrupt files and unusable paths are not (78)."""
    found = translate(failure(name), DB)
    assert type(found) is kind
    assert found.transient == (kind is StoreUnavailable)
    assert str(found).startswith(str(DB))
    assert says in str(found)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (errno.ENOSPC, StoreUnavailable),
        (errno.EIO, StoreUnavailable),
        (errno.EACCES, StoreLocation),
        (errno.ENOTDIR, StoreLocation),
        (errno.EISDIR, StoreLocation),
        (errno.EROFS, StoreLocation),
    ],
)
def test_file_system_failures_at_creation_are_transient_only_when_they_may_pass(
    code: int, kind: type[StoreError]
) -> None:
    """A full disk or an I/O error creating the file may pass; a path that cannot hold a file will not."""
    found = os_error(OSError(code, "reason"), DB, "cannot create the database file")
    assert type(found) is kind
    assert str(found) == f"{DB}: cannot create the database file: reason"
