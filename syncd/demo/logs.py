"""The demo's logs: everything the daemon, uvicorn and the libraries log goes to one file, never to the terminal
where the live progress is drawn. Secrets are redacted as in `syncd run` (the demo's generated ones included)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TextIO

from syncd.logs import configure as configure_logs

# Loggers that uvicorn configures with their own stderr handlers each time a server is made.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class DemoLogs:
    """A context manager: structlog JSON lines into `path` at once; stdlib and uvicorn logging too after
    `capture()` (call it once the servers exist: making a uvicorn server resets its loggers to stderr)."""

    def __init__(self, path: Path, *, secrets: Iterable[str], level: str = "info") -> None:
        self.path = path
        self.secrets = list(secrets)
        self.level = level
        self._file: TextIO | None = None
        self._handler: logging.Handler | None = None
        self._saved: dict[str, tuple[list[logging.Handler], bool]] = {}

    def __enter__(self) -> DemoLogs:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        configure_logs(level=self.level, fmt="json", secrets=self.secrets, stream=self._file)
        return self

    def capture(self) -> None:
        """Send stdlib logging (uvicorn, httpx, asyncio) to the file as well."""
        assert self._file is not None, "capture() inside the with block"
        handler = logging.StreamHandler(self._file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._handler = handler
        for name in ("", *UVICORN_LOGGERS):
            logger = logging.getLogger(name)
            self._saved[name] = (list(logger.handlers), logger.propagate)
            logger.handlers = [handler]
            logger.propagate = False

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for name, (handlers, propagate) in self._saved.items():
            logger = logging.getLogger(name)
            logger.handlers = handlers
            logger.propagate = propagate
        self._saved.clear()
        # Whatever still logs after the demo (nothing should) goes to stderr, at warning level and above.
        configure_logs(level="warning", fmt="json", secrets=self.secrets, stream=sys.stderr)
        if self._file is not None:
            self._file.close()
            self._file = None
