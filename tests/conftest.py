"""Suite-wide fixtures, and the suite-wide guard that no Ontraport invoice is ever e-mailed."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog

from tests import invoice_guard
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


def pytest_configure(config: pytest.Config) -> None:
    """The suite-wide guard that no Ontraport invoice is ever e-mailed (tests/invoice_guard.py)."""
    invoice_guard.pytest_configure(config)
