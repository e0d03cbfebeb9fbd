"""Reversing logged sales in the Ontraport simulator over real loopback HTTP: refund, void, writeOff, markPaid."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import FORM, OpAccount


def logged(op: OpAccount, count: int = 1) -> list[int]:
    """`count` sales logged for one contact (one product line each, no invoice): their transaction ids."""
    contact, product = op.contact(firstname="Ada", email="ada@example.org"), op.product()
    body = {
        "contact_id": contact,
        "chargeNow": "chargeLog",
        "trans_date": 1_700_000_000_000,
        "invoice_template": -1,
        "offer": {"products": [{"id": product, "quantity": 1, "price": [{"price": 10}]}]},
    }
    return [op.data(op.api.post("/1/transaction/processManual", json=body))["invoice_id"] for _ in range(count)]


def statuses(op: OpAccount, transaction_id: int) -> tuple[str, list[str]]:
    """(the transaction's status, its purchases' statuses)."""
    transaction = op.data(op.api.get("/1/Transaction", params={"id": transaction_id}))
    purchases = op.find("Purchases", "invoice_id", transaction_id)
    return transaction["status"], [p["status"] for p in purchases]


def reverse(op: OpAccount, name: str, ids: Any, **extra: Any) -> Any:
    return op.data(op.api.put(f"/1/transaction/{name}", json={"objectID": 46, "ids": ids, **extra}))


@pytest.mark.parametrize(
    ("name", "answer", "status", "purchase_status"),
    [("refund", "Refunded", "2", "4"), ("void", "Voided", "4", "3")],
)
def test_a_paid_sale_is_refunded_or_voided(
    op: OpAccount, name: str, answer: str, status: str, purchase_status: str
) -> None:
    """PUT /1/transaction/refund or /void with {"objectID": 46, "ids": [...]} answers the SDK's data and moves the
    transaction (and its purchases) to refunded or void; the other sales stay paid."""
    first, second = logged(op, 2)
    assert reverse(op, name, [first]) == answer
    assert statuses(op, first) == (status, [purchase_status])
    assert statuses(op, second) == ("1", ["1"])


def test_a_reversal_its_status_does_not_allow_changes_nothing(op: OpAccount) -> None:
    """A voided sale cannot be refunded nor a refunded one voided: by default the call answers as usual and the
    status stays; writeOff of a paid sale answers 0 (nothing written off)."""
    voided, refunded = logged(op, 2)
    reverse(op, "void", [voided])
    reverse(op, "refund", [refunded])
    assert reverse(op, "refund", [voided]) == "Refunded"
    assert reverse(op, "void", [refunded]) == "Voided"
    assert statuses(op, voided) == ("4", ["3"])
    assert statuses(op, refunded) == ("2", ["4"])
    (paid,) = logged(op)
    assert reverse(op, "writeOff", [paid]) == 0
    assert statuses(op, paid) == ("1", ["1"])


def test_reversal_refusal_error_refuses_the_whole_call(op: OpAccount) -> None:
    """With reversal_refusal "error" one transaction the reversal does not apply to makes the call a 400 and no
    transaction changes."""
    op.behave(reversal_refusal="error")
    voided, paid = logged(op, 2)
    reverse(op, "void", [voided])
    refused = op.api.put("/1/transaction/refund", json={"objectID": 46, "ids": [paid, voided]})
    assert (refused.status_code, refused.text) == (400, "Invalid transaction status")
    assert statuses(op, paid) == ("1", ["1"])


def test_unpaid_sales_are_written_off_or_marked_paid(op: OpAccount) -> None:
    """With logged_status "unpaid" a sale starts in collections (0): writeOff answers the count and sets 6 (its
    purchases 5); markPaid with `id` answers [] and sets paid (1)."""
    op.behave(logged_status="unpaid")
    written_off, paid = logged(op, 2)
    assert statuses(op, paid) == ("0", ["0"])
    assert reverse(op, "writeOff", [written_off]) == 1
    assert statuses(op, written_off) == ("6", ["5"])
    assert op.data(op.api.put("/1/transaction/markPaid", content=f"id={paid}", headers=FORM)) == []
    assert statuses(op, paid) == ("1", ["1"])
    assert op.data(op.api.put("/1/transaction/markPaid", json={"id": written_off})) == []
    assert statuses(op, written_off) == ("1", ["1"])


def test_mark_paid_reads_id_and_ids_only_with_the_switch(op: OpAccount) -> None:
    """markPaid takes `id` (as the SDK and the .NET client send it): objectID + ids is 400 `Invalid ID` unless
    mark_paid_ids is on; an unknown id is `Object not found`."""
    op.behave(logged_status="unpaid")
    (unpaid,) = logged(op)
    refused = op.api.put("/1/transaction/markPaid", json={"objectID": 46, "ids": [unpaid]})
    assert (refused.status_code, refused.text) == (400, "Invalid ID")
    assert statuses(op, unpaid)[0] == "0"
    missing = op.api.put("/1/transaction/markPaid", json={"id": 4040})
    assert (missing.status_code, missing.text) == (404, "Object not found")
    op.behave(mark_paid_ids=True)
    assert reverse(op, "markPaid", [unpaid]) == []
    assert statuses(op, unpaid)[0] == "1"


def test_unknown_transaction_ids_are_passed_over(op: OpAccount) -> None:
    """Ids of transactions that do not exist are passed over, as on the other bulk endpoints."""
    (paid,) = logged(op)
    assert reverse(op, "refund", [4040, paid, paid]) == "Refunded"
    assert statuses(op, paid)[0] == "2"


@pytest.mark.parametrize("name", ["refund", "void", "writeOff"])
@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"ids": ["{id}"]}, "Invalid objectID"),
        ({"objectID": 0, "ids": ["{id}"]}, "Invalid objectID"),
        ({"objectID": 46}, "Invalid request: ids are required"),
        ({"objectID": 46, "ids": []}, "Invalid request: ids are required"),
        ({"objectID": 46, "ids": "{id}"}, "Invalid ids"),
        ({"objectID": 46, "ids": ["one"]}, "Invalid ID"),
    ],
)
def test_unusable_reversals_are_refused(op: OpAccount, name: str, body: dict[str, Any], text: str) -> None:
    """A reversal must name transactions (objectID 46) by a JSON array of ids; else a plain-text 400, no change."""
    (paid,) = logged(op)
    sent = {k: ([paid] if v == ["{id}"] else str(paid) if v == "{id}" else v) for k, v in body.items()}
    refused = op.api.put(f"/1/transaction/{name}", json=sent)
    assert (refused.status_code, refused.text) == (400, text)
    assert statuses(op, paid) == ("1", ["1"])


@pytest.mark.emails_invoices
def test_resend_invoice_emails_the_customer_again(op: OpAccount) -> None:
    """POST /1/transaction/resendInvoice answers "" and e-mails each named transaction's invoice (even a sale
    logged with template -1), which the invoice count shows."""
    first, second = logged(op, 2)
    answer = op.api.post("/1/transaction/resendInvoice", json={"objectID": 46, "ids": [first, 4040]})
    assert op.data(answer) == ""
    sent = op.control.get("/_sandbox/invoices").json()
    assert sent["emailed"] == 1
    assert (sent["invoices"][0]["invoice_id"], sent["invoices"][0]["template_id"]) == (str(first), "1")
    assert second not in [int(i["invoice_id"]) for i in sent["invoices"]]
