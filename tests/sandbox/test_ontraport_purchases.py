"""Purchase history in the Ontraport simulator over real loopback HTTP: logging sales, invoices, reversals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syncd.sandbox.ontraport.ledger import PURCHASE_FIELDS, TRANSACTION_FIELDS
from tests.sandbox.conftest import FORM, OP_START, OpAccount

SOLD_AT_MS = 1_700_000_000_123  # when the sale happened in the source system, epoch milliseconds
SOLD_AT = str(SOLD_AT_MS // 1000)
NEGATIVE = "Negative amounts cannot be logged"


def sale(contact: Any, *lines: tuple[Any, Any, Any], **extra: Any) -> dict[str, Any]:
    """A processManual body logging `lines` of (product id, quantity, price) without charging or invoicing."""
    products = [
        {"id": p, "quantity": q, "price": [{"price": price, "payment_count": 1, "unit": "day"}]}
        for p, q, price in lines
    ]
    body = {
        "contact_id": contact,
        "chargeNow": "chargeLog",
        "trans_date": SOLD_AT_MS,
        "invoice_template": -1,
        "external_order_id": "sell-order-31",
        "offer": {"products": products},
    }
    return {**body, **extra}


def log(op: OpAccount, body: dict[str, Any]) -> int:
    invoice_id: int = op.data(op.api.post("/1/transaction/processManual", json=body))["invoice_id"]
    return invoice_id


@pytest.fixture
def ada(op: OpAccount) -> str:
    return op.contact(firstname="Ada", lastname="Lovelace", email="ada@example.org")


def test_a_logged_sale_is_one_transaction_and_a_purchase_per_line(op: OpAccount, ada: str) -> None:
    """chargeLog answers {"invoice_id": n} (a number); the Transaction carries the SDK's fields and the totals, and
    each product line is a Purchase with its price, quantity and total; nothing is e-mailed with template -1."""
    gold, silver = op.product("Gold", "99.00", description="The best"), op.product("Silver", "50.00")
    invoice_id = log(op, sale(int(ada), (int(gold), 2, 1250.0), (silver, "1", "10.5")))
    assert invoice_id == 1
    transaction = op.data(op.api.get("/1/Transaction", params={"id": invoice_id}))
    assert set(transaction) == set(TRANSACTION_FIELDS)
    assert all(v is None or isinstance(v, str) for v in transaction.values())
    assert {k: transaction[k] for k in ("status", "contact_id", "date", "template_id", "subtotal", "total")} == {
        "status": "1", "contact_id": ada, "date": SOLD_AT, "template_id": "-1", "subtotal": "2510.50",
        "total": "2510.50",
    }  # fmt: skip
    assert (transaction["external_order_id"], transaction["oprid"], transaction["gateway_id"]) == (
        "sell-order-31", "0", "0",
    )  # fmt: skip
    assert transaction["contact_name"] == "Ada Lovelace"
    offer = json.loads(transaction["offer_data"])
    assert [(p["id"], p["quantity"], p["price"][0]["price"]) for p in offer["products"]] == [
        (gold, "2", "1250.00"), (silver, "1", "10.50"),
    ]  # fmt: skip
    purchases = op.find("Purchases", "invoice_id", invoice_id)
    assert all(set(p) == set(PURCHASE_FIELDS) for p in purchases)
    shown = [(p["product_id"], p["name"], p["quantity"], p["price"], p["total_price"], p["status"]) for p in purchases]
    assert shown == [(gold, "Gold", "2", "1250.00", "2500.00", "1"), (silver, "Silver", "1", "10.50", "10.50", "1")]
    assert (purchases[0]["date"], purchases[0]["contact_id"], purchases[0]["description"]) == (SOLD_AT, ada, "The best")
    assert op.data(op.api.get("/1/Purchase", params={"id": purchases[1]["id"]})) == purchases[1]
    assert op.data(op.api.get("/1/Contact", params={"id": ada}))["num_purchased"] == "2"
    assert op.control.get("/_sandbox/invoices").json() == {"emailed": 0, "invoices": []}


def test_the_same_external_order_id_twice_is_two_sales(op: OpAccount, ada: str) -> None:
    """processManual does not deduplicate on external_order_id: a retried log is a second sale."""
    gold = op.product()
    assert [log(op, sale(ada, (gold, 1, 10))) for _ in range(2)] == [1, 2]
    assert [t["id"] for t in op.find("Transactions", "external_order_id", "sell-order-31")] == ["1", "2"]
    assert len(op.find("Purchases", "contact_id", ada)) == 2


@pytest.mark.parametrize(
    ("template", "emailed"),
    [(None, "1"), (1, "1"), ("3", "3"), (0, "0"), (-1, None), ("-1", None)],
    ids=["absent", "default", "other-template", "zero", "suppressed", "suppressed-text"],
)
@pytest.mark.emails_invoices
def test_an_invoice_is_emailed_unless_the_template_is_minus_one(
    op: OpAccount, ada: str, template: Any, emailed: str | None
) -> None:
    """Each logged sale e-mails the customer an invoice with its template (1 when absent) unless
    invoice_template is -1; GET /_sandbox/invoices and the state count them."""
    gold = op.product()
    body = sale(ada, (gold, 1, 10))
    if template is None:
        del body["invoice_template"]
    else:
        body["invoice_template"] = template
    invoice_id = log(op, body)
    sent = op.control.get("/_sandbox/invoices").json()
    if emailed is None:
        assert sent == {"emailed": 0, "invoices": []}
    else:
        assert sent["emailed"] == 1
        assert sent["invoices"] == [
            {"invoice_id": str(invoice_id), "contact_id": ada, "email": "ada@example.org", "template_id": emailed,
             "sent_at": str(int(OP_START))},
        ]  # fmt: skip
    assert op.control.get("/_sandbox/state").json()["invoices_emailed"] == (0 if emailed is None else 1)


@pytest.mark.emails_invoices
def test_the_woocommerce_plugin_form_body_logs_at_the_product_price_and_emails_an_invoice(
    op: OpAccount, ada: str
) -> None:
    """Ontraport's own plugin posts a form with only contact_id, chargeNow and offer[products][0][quantity|id]:
    the product's price applies, the sale is dated now and the default invoice is e-mailed."""
    gold = op.product("Gold", "99.00")
    line = "offer%5Bproducts%5D%5B0%5D"
    body = f"contact_id={ada}&chargeNow=chargeLog&{line}%5Bquantity%5D=3&{line}%5Bid%5D={gold}"
    answer = op.data(op.api.post("/1/transaction/processManual", content=body, headers=FORM))
    transaction = op.data(op.api.get("/1/Transaction", params={"id": answer["invoice_id"]}))
    assert (transaction["total"], transaction["date"], transaction["template_id"]) == (
        "297.00",
        str(int(OP_START)),
        "1",
    )
    assert op.control.get("/_sandbox/invoices").json()["emailed"] == 1


@pytest.mark.parametrize(
    ("trans_date", "switch", "date"),
    [
        (SOLD_AT_MS, "now", SOLD_AT),
        (str(SOLD_AT_MS), "now", SOLD_AT),
        (None, "now", str(int(OP_START))),
        (0, "now", str(int(OP_START))),
        ("", "now", str(int(OP_START))),
        (None, "epoch", "0"),
        (0, "epoch", "0"),
        (SOLD_AT_MS // 1000, "now", str(SOLD_AT_MS // 1_000_000)),
    ],
    ids=["millis", "millis-text", "absent", "zero", "blank", "absent-epoch", "zero-epoch", "seconds-by-mistake"],
)
def test_trans_date_is_epoch_milliseconds(op: OpAccount, ada: str, trans_date: Any, switch: str, date: str) -> None:
    """trans_date is read as milliseconds (seconds sent by mistake land in 1970); absent or 0 is now, or the
    epoch (shown as 1969 in American time zones) with trans_date_default "epoch"."""
    op.behave(trans_date_default=switch)
    gold = op.product()
    body = sale(ada, (gold, 1, 10))
    if trans_date is None:
        del body["trans_date"]
    else:
        body["trans_date"] = trans_date
    invoice_id = log(op, body)
    assert op.data(op.api.get("/1/Transaction", params={"id": invoice_id}))["date"] == date
    assert op.find("Purchases", "invoice_id", invoice_id)[0]["date"] == date


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"contact_id": 999}, "Invalid Contact ID"),
        ({"contact_id": None}, "Invalid Contact ID"),
        ({"contact_id": "ada"}, "Invalid Contact ID"),
        ({"offer": {"products": [{"id": 999, "quantity": 1}]}}, "Invalid Product ID"),
        ({"offer": {"products": [{"id": "gold", "quantity": 1}]}}, "Invalid Product ID"),
        ({"offer": {"products": [{"id": "{gold}", "quantity": 1, "price": [{"price": -5}]}]}}, NEGATIVE),
        ({"offer": {"products": [{"id": "{gold}", "quantity": -1}]}}, NEGATIVE),
        ({"offer": {"products": [{"id": "{gold}", "quantity": 0}]}}, "Invalid quantity"),
        ({"offer": {"products": [{"id": "{gold}", "quantity": 1.5}]}}, "Invalid quantity"),
        ({"offer": {"products": [{"id": "{gold}", "quantity": 1, "price": "1e15"}]}}, "Invalid price"),
        ({"offer": {"products": [{"id": "{gold}", "quantity": 1, "price": "lots"}]}}, "Invalid price"),
        ({"offer": {"products": [{"id": "{gold}", "quantity": 10**9, "price": 10**9}]}}, "Invalid price"),
        ({"offer": {"products": [{"id": "{gold}", "quantity": 1, "price": True}]}}, "Invalid price"),
        ({"offer": {"products": []}}, "Invalid offer"),
        ({"offer": "gold"}, "Invalid offer"),
        ({"chargeNow": "chargeNow"}, "Invalid Gateway ID"),
        ({"chargeNow": None}, "Invalid chargeNow"),
        ({"trans_date": "yesterday"}, "Invalid trans_date"),
        ({"trans_date": -1000}, "Invalid trans_date"),
        ({"invoice_template": "none"}, "Invalid invoice_template"),
        ({"oprid": "partner"}, "Invalid oprid"),
    ],
)  # fmt: skip
def test_unusable_sales_are_refused_in_plain_text_and_log_nothing(
    op: OpAccount, ada: str, change: dict[str, Any], text: str
) -> None:
    """An unknown contact or product, a negative amount, a bad quantity, date, template or partner, or asking to
    charge, is a plain-text 400: no transaction, no purchase, no invoice e-mail."""
    gold = op.product()
    body = {**sale(ada, (gold, 1, 10), invoice_template=1), **json.loads(json.dumps(change).replace("{gold}", gold))}
    refused = op.api.post("/1/transaction/processManual", json=body)
    assert (refused.status_code, refused.text) == (400, text)
    assert refused.headers["content-type"].startswith("text/plain")
    listed = op.control.get("/_sandbox/purchases").json()
    assert listed == {"purchases": [], "transactions": []}
    assert op.control.get("/_sandbox/invoices").json()["emailed"] == 0


def test_oprid_credits_the_partner_and_leaves_the_referrers_by_default(op: OpAccount, ada: str) -> None:
    """oprid is kept on the transaction and as each purchase's affiliate; the contact's referrers stay "0"."""
    gold = op.product()
    invoice_id = log(op, sale(ada, (gold, 1, 10), oprid=7))
    assert op.data(op.api.get("/1/Transaction", params={"id": invoice_id}))["oprid"] == "7"
    purchase = op.find("Purchases", "invoice_id", invoice_id)[0]
    assert (purchase["affiliate_id"], purchase["oprid"]) == ("7", "7")
    contact = op.data(op.api.get("/1/Contact", params={"id": ada}))
    assert (contact["freferrer"], contact["lreferrer"]) == ("0", "0")


def test_oprid_referrers_switch_sets_the_first_referrer_once_and_the_last_every_time(op: OpAccount, ada: str) -> None:
    """With oprid_referrers on, the first partner becomes freferrer and stays; each sale's partner is lreferrer."""
    op.behave(oprid_referrers=True)
    gold = op.product()
    log(op, sale(ada, (gold, 1, 10), oprid=7))
    log(op, sale(ada, (gold, 1, 10), oprid=9))
    log(op, sale(ada, (gold, 1, 10)))
    contact = op.data(op.api.get("/1/Contact", params={"id": ada}))
    assert (contact["freferrer"], contact["lreferrer"]) == ("7", "9")


def test_purchases_and_transactions_are_readable_by_condition(op: OpAccount, ada: str) -> None:
    """GET /1/Purchases and /1/Transactions (and /1/objects with 17 or 46) filter by condition; unknown fields
    are 400 `Invalid query`."""
    alan = op.contact(firstname="Alan")
    gold, silver = op.product("Gold"), op.product("Silver")
    log(op, sale(ada, (gold, 1, 10)))
    log(op, sale(alan, (silver, 1, 20), external_order_id="sell-order-32"))
    assert [p["name"] for p in op.find("Purchases", "contact_id", int(alan))] == ["Silver"]
    found = op.data(op.api.get("/1/objects", params={"objectID": 46, "condition": "total > 15"}))
    assert [t["external_order_id"] for t in found] == ["sell-order-32"]
    assert len(op.data(op.api.get("/1/objects", params={"objectID": 17}))) == 2
    for plural in ("Purchases", "Transactions"):
        refused = op.api.get(f"/1/{plural}", params={"condition": "invoice_template = -1"})
        assert (refused.status_code, refused.text) == (400, "Invalid query")


def test_transactions_and_purchases_cannot_be_written_directly(op: OpAccount, ada: str) -> None:
    """Purchases and transactions come only from processManual: creating, updating or deleting them is refused."""
    gold = op.product()
    invoice_id = log(op, sale(ada, (gold, 1, 10)))
    for method, path in (("POST", "/1/Transactions"), ("PUT", "/1/Transactions"), ("DELETE", "/1/Transaction"),
                         ("POST", "/1/Purchases"), ("DELETE", "/1/Purchase")):  # fmt: skip
        assert op.api.request(method, path, json={"id": invoice_id, "total": "0"}).status_code in (400, 404)
    for object_id in (17, 46):
        assert op.api.post("/1/objects", json={"objectID": object_id, "total": "0"}).status_code == 400
    assert op.data(op.api.get("/1/Transaction", params={"id": invoice_id}))["total"] == "10.00"


@pytest.mark.parametrize(
    ("reading", "sent", "kept"),
    [("text", "sell-order-31", "sell-order-31"), ("number", "sell-order-31", "0"), ("number", "31", "31"),
     ("number", " 0031 ", "31")],
)  # fmt: skip
def test_external_order_ids_are_kept_as_text_or_as_a_number_column_would(
    op: OpAccount, ada: str, reading: str, sent: str, kept: str
) -> None:
    """external_order_ids = "number" keeps an external order id as an integer column keeps text: digits as the
    number, anything else 0 (the reading of clients that type the field as a number)."""
    op.behave(external_order_ids=reading)
    invoice_id = log(op, sale(ada, (op.product(), 1, 10), external_order_id=sent))
    [transaction] = op.find("Transactions", "id", invoice_id)
    assert transaction["external_order_id"] == kept
