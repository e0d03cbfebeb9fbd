"""Suite-wide fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog

from tests.support import Processes


@pytest.fixture(autouse=True)
def logs_to_stderr() -> Iterator[None]:
    """In-process daemons log to stderr, so a test can read a command's stdout alone (and `capture_logs()` still
    sees every event); each test starts from the same logging setup."""
    structlog.reset_defaults()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    yield
    structlog.reset_defaults()


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Starts child processes for a test and kills each one's whole process group when the test ends."""
    started = Processes()
    try:
        yield started
    finally:
        started.kill_all()
