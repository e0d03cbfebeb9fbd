"""Suite-wide fixtures, and the suite-wide guard that no Ontraport invoice is ever e-mailed."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from syncd.sandbox.ontraport.model import INVOICE_LOG_ENV, invoices_emailed_in_process
from tests.support import Processes

_INVOICES = "invoices-emailed.jsonl"
_unexpected: list[str] = []
_LOG: list[str] = []  # the shared file (kept here: a test may change the environment)


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
    """Every Ontraport simulator of the run, in this process or in a child it starts (`syncd demo`, `syncd
    sandbox`), reports each invoice e-mail to one file named in the environment the children inherit."""
    _LOG[:] = [str(Path(tempfile.mkdtemp(prefix="syncd-invoices-")) / _INVOICES)]
    os.environ[INVOICE_LOG_ENV] = _LOG[0]


def _emailed() -> int:
    """Invoice e-mails so far: those of this process's simulators (counted in memory, whatever a test does to the
    environment), and those children reported to the shared file."""
    path = Path(_LOG[0])
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    children = sum(1 for line in lines if json.loads(line).get("pid") != os.getpid())
    return invoices_emailed_in_process() + children


@pytest.fixture(autouse=True)
def no_invoice_emailed(request: pytest.FixtureRequest) -> Iterator[None]:
    """No test may make an Ontraport account e-mail a customer an invoice, unless it is a simulator test marked
    `emails_invoices` that does so on purpose: syncd logs purchase history, it never bills anyone."""
    before = _emailed()
    yield
    sent = _emailed() - before
    if sent and request.node.get_closest_marker("emails_invoices") is None:
        _unexpected.append(f"{request.node.nodeid}: {sent}")
        pytest.fail(f"{sent} Ontraport invoice e-mail(s) sent during this test; syncd must never e-mail an invoice")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The whole run's account: any invoice e-mailed outside a marked simulator test fails the session."""
    if _unexpected:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nOntraport invoices e-mailed outside emails_invoices tests:", *_unexpected, sep="\n  ", file=sys.stderr)
