"""The suite's guard against invoice e-mails (tests/invoice_guard.py) sees every invoice e-mail of a run: a child
process's through the shared file named in the environment it inherits (with the child's pid), a fixture's of any
scope in the phase it ran in, one made while no test runs at the end of the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from syncd.sandbox.ontraport.model import INVOICE_LOG_ENV
from tests.support import Processes

CHILD = """
from syncd.sandbox.ontraport.model import OntraportModel
model = OntraportModel(clock=lambda: 1_800_000_000.0)
contact = model.create_contact({"email": "ada@example.org"})
product = model.create_product({"name": "Gold", "price": "10"})
offer = {"products": [{"id": product["id"]}]}
sale = {"contact_id": contact["id"], "chargeNow": "chargeLog", "trans_date": 1, "offer": offer}
model.log_transaction(sale)  # no invoice_template: the default template e-mails an invoice
"""


@pytest.mark.emails_invoices
def test_an_invoice_emailed_in_a_child_process_reaches_the_shared_file(processes: Processes) -> None:
    """A simulator in a child process (as in `syncd demo`) logs its invoice e-mail to the file the suite reads."""
    path = Path(os.environ[INVOICE_LOG_ENV])
    before = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    child = processes.start([sys.executable, "-c", CHILD], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.wait(timeout=60) == 0, child.stderr.read() if child.stderr else ""
    after = path.read_text(encoding="utf-8").splitlines()
    new = [json.loads(line) for line in after[len(before) :]]
    assert [(entry["pid"], entry["template_id"]) for entry in new] == [(child.pid, "1")]


EMAIL = """
from syncd.sandbox.ontraport.model import OntraportModel


def email_an_invoice() -> None:
    model = OntraportModel(clock=lambda: 1_800_000_000.0)
    contact = model.create_contact({"email": "ada@example.org"})
    product = model.create_product({"name": "Gold", "price": "10"})
    sale = {"contact_id": contact["id"], "chargeNow": "chargeLog", "trans_date": 1,
            "offer": {"products": [{"id": product["id"]}]}}
    model.log_transaction(sale)  # no invoice_template: an invoice e-mailed
"""
RUN_OF_ITS_OWN = {
    "emailer.py": EMAIL,
    "test_module_fixture.py": """
import pytest
from emailer import email_an_invoice

@pytest.fixture(scope="module")
def shared() -> None:
    email_an_invoice()

def test_uses_a_module_fixture_that_emails(shared: None) -> None:
    pass
""",
    "test_session_fixture.py": """
import pytest
from emailer import email_an_invoice

@pytest.fixture(scope="session")
def everyone():
    yield
    email_an_invoice()

def test_uses_a_session_fixture_that_emails_at_its_end(everyone: None) -> None:
    pass
""",
    "test_bodies.py": """
import pytest
from emailer import email_an_invoice

def test_unmarked_test_that_emails() -> None:
    email_an_invoice()

@pytest.mark.emails_invoices
def test_marked_simulator_test_that_emails() -> None:
    email_an_invoice()

def test_clean() -> None:
    pass
""",
}
OUTSIDE_ANY_TEST = {
    "emailer.py": EMAIL,
    "test_at_import.py": """
from emailer import email_an_invoice

email_an_invoice()  # while the run collects its tests

def test_clean() -> None:
    pass
""",
}


def run_of_its_own(tmp_path: Path, files: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """A pytest run with only the guard as plugin over `files`: its exit code, each test's outcome, its stderr."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    args = ["-m", "pytest", "-q", "-c", "pytest.ini", "-p", "tests.invoice_guard", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [sys.executable, *args, "--junitxml", "report.xml"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(tmp_path / "report.xml").iter("testcase"):
        verdicts = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.attrib["name"]] = verdicts[0] if verdicts else "passed"
    return done.returncode, outcomes, done.stderr


def test_an_invoice_emailed_anywhere_in_a_run_fails_it_unless_a_marked_test_sends_it(tmp_path: Path) -> None:
    """Fixtures of every scope count: an invoice e-mailed by a module fixture fails the test whose setup made it,
    one e-mailed by a session fixture's end fails the teardown it ran in, one by an unmarked test fails it, and the
    run fails; only a marked simulator test's own e-mail is allowed."""
    code, outcomes, stderr = run_of_its_own(tmp_path, RUN_OF_ITS_OWN)
    assert outcomes == {
        "test_uses_a_module_fixture_that_emails": "error",
        "test_uses_a_session_fixture_that_emails_at_its_end": "error",
        "test_unmarked_test_that_emails": "failure",
        "test_marked_simulator_test_that_emails": "passed",
        "test_clean": "passed",
    }
    assert code == pytest.ExitCode.TESTS_FAILED
    assert "(4 in the run, 1 by those tests)" in stderr
    assert "test_module_fixture.py::test_uses_a_module_fixture_that_emails (setup): 1" in stderr


def test_an_invoice_emailed_while_no_test_runs_fails_the_run(tmp_path: Path) -> None:
    """An invoice e-mailed outside every test (here while the run collects its tests) fails the run, though every
    test passed."""
    code, outcomes, stderr = run_of_its_own(tmp_path, OUTSIDE_ANY_TEST)
    assert outcomes == {"test_clean": "passed"}
    assert code == pytest.ExitCode.TESTS_FAILED
    assert "outside any test (collection, or a child after its test ended): 1" in stderr
