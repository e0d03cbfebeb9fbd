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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` (tens of seconds each) run first, the rest in their collected order: the workers start
    the long ones at once and share out the short ones after them (`--dist worksteal`), so no long test starts last
    and holds the end of the run on one worker while the others idle. Every worker sorts its collection the same
    way (xdist requires identical collections)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
