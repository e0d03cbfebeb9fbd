"""The suite's guard against invoice e-mails sees the simulators of child processes too: a child's invoice e-mail
reaches the shared file named in the environment it inherits, with the child's pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
