"""The store's errors: one root, and three kinds a caller turns into different exit codes.

- `StoreUnavailable` (transient): the file is locked by another process, owned by another syncd, the disk is
  full, an I/O error. Trying again later may work (EX_TEMPFAIL, 75: systemd restarts the unit).
- `StoreLocation`: `state.path` cannot hold a database (a directory, a path that cannot be created or written).
  The configuration (or the file system under it) must change.
- `StoreDamaged`: the file is not a usable database (truncated, corrupt, its write-ahead log deleted).
  An operator must act; the message says what to do.
Anything else (a database newer than the code, migrations out of sequence) is a plain `StoreError`.
"""

from __future__ import annotations


class StoreError(Exception):
    """The state database cannot be used. The message names the file and what to do."""

    transient = False  # True when trying again later may work


class StoreUnavailable(StoreError):
    """The state database cannot be used right now (locked, owned by another process, disk full, I/O error)."""

    transient = True


class StoreOwned(StoreUnavailable):
    """Another process owns the state file (another `syncd run`, or a repair that needs the daemon stopped);
    `holder` says who, as its lock file says (a state.owner.Holder)."""

    def __init__(self, message: str, holder: object = None) -> None:
        super().__init__(message)
        self.holder = holder


class StoreLocation(StoreError):
    """`state.path` cannot hold a database: a directory, or a path that cannot be created, opened or written."""


class StoreDamaged(StoreError):
    """The file is not a usable SQLite database (truncated, corrupt, or its write-ahead log was deleted)."""
