"""A pseudo-terminal for a child process's output, read in a thread, for tests of what syncd shows on a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A `rows` x `columns` pseudo-terminal: give `follower` to the child as its output and `env` in its
    environment, read it with `reading()`, and see what it showed with `screen()`."""

    def __init__(self, rows: int, columns: int) -> None:
        self.leader, self.follower = pty.openpty()
        fcntl.ioctl(self.follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.env = {"TERM": "xterm-256color", "COLUMNS": str(columns)}
        self._chunks: list[bytes] = []

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Read what the child writes while the block runs (the child already started with `follower`)."""
        os.close(self.follower)
        reader = threading.Thread(target=self._drain, daemon=True)
        reader.start()
        try:
            yield
        finally:
            reader.join(timeout=10)
            os.close(self.leader)

    def screen(self) -> str:
        """Everything shown so far, as text, with the escape sequences left out."""
        return ESCAPES.sub("", b"".join(self._chunks).decode("utf-8", "replace"))
