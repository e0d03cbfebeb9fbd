"""Suite-wide fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def logs_to_stderr() -> Iterator[None]:
    """In-process daemons log to stderr, so a test can read a command's stdout alone (and `capture_logs()` still
    sees every event); each test starts from the same logging setup."""
    structlog.reset_defaults()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    yield
    structlog.reset_defaults()
