"""The suite-wide guard that no Ontraport invoice is ever e-mailed: syncd logs purchase history, it never bills.

Every Ontraport simulator of the run, in this process or in a child it starts (`syncd demo`, `syncd sandbox`),
reports each invoice e-mail: this process's simulators count them in memory, children append them to one file
named in the environment they inherit. The guard reads the count before and after every phase of every test —
setup (where module- and session-wide fixtures start their simulators and runs), the test itself, teardown — and
fails the phase that e-mailed one, unless it is the test itself of a simulator test marked `emails_invoices`. At the
end of the run it accounts for every e-mail the run made: any outside those marked tests, including one made
where no test was running (collection, a child finishing after its test), fails the whole run.

A plugin (`-p tests.invoice_guard`), so a run of its own can prove it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest

from syncd.sandbox.ontraport.model import INVOICE_LOG_ENV, invoices_emailed_in_process

MARKER = "emails_invoices"
_PHASES = ("setup", "call", "teardown")


class InvoiceGuard:
    """Counts the invoice e-mails of each phase of each test, and of the whole run."""

    def __init__(self) -> None:
        self.log = Path(tempfile.mkdtemp(prefix="syncd-invoices-")) / "invoices-emailed.jsonl"
        os.environ[INVOICE_LOG_ENV] = str(self.log)
        self.at_start = self.emailed()
        self.excused = 0  # e-mailed by marked tests on purpose
        self.unexpected: list[str] = []  # "<test> (<phase>): n"
        self.in_phases = 0
        self._phase: dict[tuple[str, str], int] = {}

    def emailed(self) -> int:
        """Invoice e-mails so far: this process's simulators' (counted in memory, whatever a test does to the
        environment), and those children reported to the shared file."""
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        children = sum(1 for line in lines if json.loads(line).get("pid") != os.getpid())
        return invoices_emailed_in_process() + children

    def _around(self, item: pytest.Item, when: str) -> Generator[None, None, None]:
        before = self.emailed()
        yield
        sent = self.emailed() - before
        self.in_phases += sent
        if not sent:
            return
        if when == "call" and item.get_closest_marker(MARKER) is not None:
            self.excused += sent
            return
        self._phase[(item.nodeid, when)] = sent
        self.unexpected.append(f"{item.nodeid} ({when}): {sent}")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        yield from self._around(item, "setup")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        yield from self._around(item, "call")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        yield from self._around(item, "teardown")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, None]:
        outcome = yield
        sent = self._phase.pop((item.nodeid, call.when), 0) if call.when in _PHASES else 0
        if sent:
            report = outcome.get_result()
            report.outcome = "failed"
            where = "the test" if call.when == "call" else f"its {call.when} (fixtures of every scope)"
            report.longrepr = (
                f"{sent} Ontraport invoice e-mail(s) sent during {where}; syncd must never e-mail an invoice"
                + ("" if call.when == "call" else f" (only the test itself of a simulator test marked {MARKER} may)")
            )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        total = self.emailed() - self.at_start
        outside = total - self.in_phases
        if outside > 0:
            self.unexpected.append(f"outside any test (collection, or a child after its test ended): {outside}")
        if self.unexpected:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print(
                f"\nOntraport invoices e-mailed outside {MARKER} tests "
                f"({total} in the run, {self.excused} by those tests):",
                *self.unexpected,
                sep="\n  ",
                file=sys.stderr,
            )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a simulator test that makes the Ontraport sandbox e-mail invoices")
    config.pluginmanager.register(InvoiceGuard(), "invoice_guard")
