"""One owner per state file: an OS lock on `<file>.lock`, held by the process that writes the file for its whole life.

The owner (the daemon, or a repair that needs the daemon stopped) takes an exclusive `flock` on the lock file beside
the database and writes who it is into it (pid, host, start time, a random token its claims carry). The kernel
drops the lock when the process ends however it ends (SIGKILL included), so a dead owner never blocks the next
one, and its claims, which carry a token nobody holds any more, lapse when the next owner opens the file.

Anyone may ask who owns a file (`holder`): a shared lock taken and released at once tells whether an owner is
alive; the file's text says who. An owner retries for a moment before giving up, so such a question asked at
the same instant never makes it fail.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from state.errors import StoreError, StoreLocation, StoreOwned, StoreUnavailable

ACQUIRE_WAIT = 0.5  # seconds an owner keeps trying before it says the file is owned
_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE}


def lock_path(db: Path) -> Path:
    """The lock file of the database at `db`."""
    return db.with_name(db.name + ".lock")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who owns a state file, as it wrote itself into the lock file."""

    pid: int | None
    host: str
    since: float | None
    command: str

    def describe(self) -> str:
        """e.g. "`syncd run`, pid 4242 on host-a, since 2026-12-01T08:00:00Z"."""
        parts = [f"`{self.command}`" if self.command else "a syncd process"]
        if self.pid is not None:
            parts.append(f"pid {self.pid}" + (f" on {self.host}" if self.host else ""))
        if self.since is not None:
            when = datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            parts.append(f"since {when}")
        return ", ".join(parts)


class OwnerLock:
    """The lock of one state file, held until `release` (or the process's end)."""

    def __init__(self, db: Path, fd: int, token: str) -> None:
        self.db = db
        self.path = lock_path(db)
        self.token = token
        self._fd: int | None = fd
        self._inode = os.fstat(fd).st_ino

    @classmethod
    def acquire(cls, db: Path, *, command: str = "syncd run", wait: float = ACQUIRE_WAIT) -> OwnerLock:
        """Become the owner of `db` (creating its directory and lock file, readable by their owner only); raises
        StoreOwned naming the current owner when another process holds it."""
        path = lock_path(db)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise os_error(exc, db, f"cannot create the lock file {path}") from None
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _owned(db, _read_holder(fd)) from None
                    time.sleep(0.02)
            token = secrets.token_hex(8)
            record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": command}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps({**record, "token": token}) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(db, fd, token)

    def renew(self) -> None:
        """After the lock file was deleted or replaced: lock the file now at the path instead (keeping the old lock
        until the new one is held); raises StoreOwned when another process locked it first."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise os_error(exc, self.db, f"cannot create the lock file {self.path}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _read_holder(fd)
            os.close(fd)
            raise _owned(self.db, who) from None
        old, self._fd = self._fd, fd
        if old is not None:
            record = json.loads(os.pread(old, 4096, 0) or b"{}")
            os.close(old)
        else:
            record = {"pid": os.getpid(), "token": self.token}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._inode = os.fstat(fd).st_ino

    def release(self) -> None:
        """Stop owning the file (closing the descriptor drops the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def intact(self) -> bool:
        """Whether the lock file at its path is still the one this owner locked (not deleted or replaced: another
        process could then lock a new one and believe it owns the state file too)."""
        try:
            return os.stat(self.path).st_ino == self._inode
        except OSError:
            return False


def holder(db: Path) -> Holder | None:
    """Who owns `db` right now (None when no process does, or the lock file cannot be read)."""
    try:
        fd = os.open(lock_path(db), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> Holder:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, since = data.get("pid"), data.get("since")
    return Holder(
        pid=pid if isinstance(pid, int) else None,
        host=str(data.get("host") or ""),
        since=float(since) if isinstance(since, int | float) else None,
        command=str(data.get("command") or ""),
    )


def _owned(db: Path, who: Holder) -> StoreOwned:
    return StoreOwned(
        f"{db}: another process owns this state file ({who.describe()}); only one `syncd run` may use a state"
        " file at a time",
        who,
    )


def os_error(exc: OSError, db: Path, what: str) -> StoreError:
    """An OSError met while creating or opening the state file, as the store's error of the right kind."""
    reason = exc.strerror or str(exc)
    if exc.errno in _TRANSIENT:
        return StoreUnavailable(f"{db}: {what}: {reason}")
    return StoreLocation(f"{db}: {what}: {reason}")
