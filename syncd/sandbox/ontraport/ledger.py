"""Purchase history in the Ontraport simulator: logged transactions and their reversals (pure rules).

`POST /1/transaction/processManual` with `chargeNow: "chargeLog"` logs a sale without charging anything: one
Transaction record (object 46; its id is the `invoice_id` answered) and one Purchase record (object 17) per line of
`offer.products` (`id`, `quantity`, `price: [{"price": ...}]`, the product's own price when absent). It never
deduplicates: the same `external_order_id` twice is two sales. `trans_date` is epoch MILLISECONDS (absent or 0: now,
or the epoch with `trans_date_default = "epoch"`). The customer is e-mailed an invoice with `invoice_template`
(1, the default template, when absent) unless it is -1. `oprid` credits a partner (and, with `oprid_referrers`,
becomes the contact's `lreferrer`, and its `freferrer` when that is unset). Charging (`chargeNow`) needs a payment
gateway, which this account does not have.

Reversals take `{"objectID": 46, "ids": [...]}` and change each transaction's status where it allows them (ids
of transactions that do not exist are passed over, as on the other bulk endpoints); `markPaid` takes a single `id`
(as the official SDK and the .NET client send it). Statuses: 0 unpaid (collections), 1 paid, 2 refunded,
3 partially refunded, 4 void, 5 declined, 6 written off, 7 pending; a purchase follows its transaction with its
own codes (0 collections, 1 paid, 2 declined, 3 voided, 4 refunded, 5 written off, 7 pending).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from syncd.sandbox.ontraport.commerce import MAX_AMOUNT, cents, money
from syncd.sandbox.ontraport.errors import ApiError
from syncd.sandbox.ontraport.fields import Value, to_text
from syncd.sandbox.ontraport.ids import parse_id

TRANSACTION_FIELDS = (
    "id", "hidden", "status", "contact_id", "order_id", "form_id", "lp_id", "cc_id", "gateway_id", "date",
    "template_id", "subtotal", "tax", "shipping", "total", "zip", "city", "state", "county", "tax_city", "tax_state",
    "tax_county", "external_order_id", "oprid", "last_recharge_date", "recharge_attempts", "recharge",
    "contact_name", "offer_data",
)  # fmt: skip
PURCHASE_FIELDS = (
    "id", "contact_id", "affiliate_id", "product_id", "owner", "package_id", "invoice_id", "subscription_id",
    "order_id", "oprid", "description", "date", "dlm", "price", "name", "quantity", "coupon_id", "coupon_code_id",
    "discount", "type", "status", "level1", "level2", "total_price", "affiliate", "coupon_name", "coupon_code",
)  # fmt: skip

UNPAID, PAID, REFUNDED, PARTIALLY_REFUNDED, VOID, DECLINED, WRITTEN_OFF, PENDING = range(8)
# A transaction's status -> its purchases' status.
PURCHASE_STATUS = {UNPAID: "0", PAID: "1", REFUNDED: "4", PARTIALLY_REFUNDED: "4", VOID: "3", DECLINED: "2",
                   WRITTEN_OFF: "5", PENDING: "7"}  # fmt: skip
SUPPRESS_INVOICE = -1
DEFAULT_TEMPLATE = 1
_TEMPLATE = re.compile(r"^-?\d{1,9}$")


@dataclass(frozen=True, slots=True)
class Reversal:
    """One reversal endpoint: the statuses it applies to, the status it sets, and what it answers under `data`."""

    name: str
    applies_to: frozenset[int]
    becomes: int
    answer: Any  # the answer's data; None: the number of transactions changed


REVERSALS: dict[str, Reversal] = {
    "refund": Reversal("refund", frozenset({PAID, PARTIALLY_REFUNDED}), REFUNDED, "Refunded"),
    "void": Reversal("void", frozenset({UNPAID, PAID, PENDING}), VOID, "Voided"),
    "writeoff": Reversal("writeOff", frozenset({UNPAID}), WRITTEN_OFF, None),
    "markpaid": Reversal("markPaid", frozenset({UNPAID, DECLINED, WRITTEN_OFF, PENDING}), PAID, []),
}
NOT_ALLOWED = "Invalid transaction status"  # the 400 under reversal_refusal = "error" (unconfirmed wording)


@dataclass(frozen=True, slots=True)
class Line:
    """One product line of a logged sale."""

    product_id: int
    quantity: int
    price: Decimal

    @property
    def total(self) -> Decimal:
        return self.price * self.quantity


@dataclass(frozen=True, slots=True)
class Sale:
    """A `chargeLog` request, read and checked (products not yet looked up)."""

    contact_id: int
    lines: tuple[tuple[int, Any, Any], ...]  # (product id, quantity as sent, price as sent or None)
    date: str
    template: int
    external_order_id: str
    oprid: int

    @property
    def emails_invoice(self) -> bool:
        return self.template != SUPPRESS_INVOICE


def contact_of(params: Mapping[str, Any]) -> int:
    return parse_id(params.get("contact_id"), what="Contact ID")


def read_sale(
    params: Mapping[str, Any], now: str, *, trans_date_default: str, external_order_ids: str = "text"
) -> Sale:
    """The sale a processManual request logs (raises the API's 400 answers). With `external_order_ids` "number"
    the external order id is kept as a number column keeps text: digits as they are, anything else "0"."""
    mode = to_text(params.get("chargeNow")) if not isinstance(params.get("chargeNow"), dict | list) else None
    if mode != "chargeLog":
        raise ApiError(400, "Invalid Gateway ID" if mode == "chargeNow" else "Invalid chargeNow")
    offer = params.get("offer")
    items = offer.get("products") if isinstance(offer, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ApiError(400, "Invalid offer")
    lines = tuple((_product_id(i), i.get("quantity", 1), _sent_price(i)) for i in items)
    return Sale(
        contact_id=contact_of(params),
        lines=lines,
        date=_date(params.get("trans_date"), now, trans_date_default),
        template=_template(params.get("invoice_template")),
        external_order_id=_order_id(_plain(params.get("external_order_id"), "external_order_id"), external_order_ids),
        oprid=parse_id(params["oprid"], what="oprid") if params.get("oprid") not in (None, "") else 0,
    )


def priced_lines(sale: Sale, products: Mapping[int, Mapping[str, Value]]) -> list[Line]:
    """Each line with its product checked and its price settled (the sent price, else the product's)."""
    lines: list[Line] = []
    for product_id, quantity, price in sale.lines:
        product = products.get(product_id)
        if product is None:
            raise ApiError(400, "Invalid Product ID")
        count = money(quantity, what="quantity")
        if count == 0 or count != count.to_integral_value():
            raise ApiError(400, "Invalid quantity")
        amount = money(price) if price is not None else money(product.get("price") or "0")
        lines.append(Line(product_id, int(count), amount))
    if sum((line.total for line in lines), Decimal(0)) >= MAX_AMOUNT:
        raise ApiError(400, "Invalid price")  # beyond what a money column holds
    return lines


def transaction_record(
    sale: Sale, lines: list[Line], products: Mapping[int, Mapping[str, Value]], contact_name: str, status: int
) -> dict[str, Value]:
    """The Transaction (46) a logged sale creates, as the API answers it."""
    total = sum((line.total for line in lines), Decimal(0))
    offer = {
        "products": [
            {
                "id": str(line.product_id),
                "name": products[line.product_id].get("name") or "",
                "quantity": str(line.quantity),
                "price": [{"price": cents(line.price), "payment_count": "1", "unit": "day"}],
                "total": cents(line.total),
                "type": "single",
            }
            for line in lines
        ],
        "subTotal": cents(total),
        "grandTotal": cents(total),
        "hasTaxes": False,
        "hasShipping": False,
    }
    return {
        "hidden": "0", "status": str(status), "contact_id": str(sale.contact_id), "order_id": "0", "form_id": "0",
        "lp_id": None, "cc_id": None, "gateway_id": "0", "date": sale.date, "template_id": str(sale.template),
        "subtotal": cents(total), "tax": "0.00", "shipping": "0.00", "total": cents(total), "zip": "", "city": None,
        "state": None, "county": None, "tax_city": "0.00", "tax_state": "0.00", "tax_county": "0.00",
        "external_order_id": sale.external_order_id, "oprid": str(sale.oprid), "last_recharge_date": sale.date,
        "recharge_attempts": None, "recharge": None, "contact_name": contact_name, "offer_data": json.dumps(offer),
    }  # fmt: skip


def purchase_records(
    sale: Sale, lines: list[Line], products: Mapping[int, Mapping[str, Value]], invoice_id: int, status: int, now: str
) -> list[dict[str, Value]]:
    """The Purchases (17) a logged sale creates, one per line."""
    return [_purchase(sale, line, products[line.product_id], invoice_id, status, now) for line in lines]


def _purchase(
    sale: Sale, line: Line, product: Mapping[str, Value], invoice_id: int, status: int, now: str
) -> dict[str, Value]:
    return {
        "contact_id": str(sale.contact_id), "affiliate_id": str(sale.oprid), "product_id": str(line.product_id),
        "owner": "1", "package_id": "0", "invoice_id": str(invoice_id), "subscription_id": "0", "order_id": "0",
        "oprid": str(sale.oprid), "description": product.get("description") or "", "date": sale.date, "dlm": now,
        "price": cents(line.price), "name": product.get("name"), "quantity": str(line.quantity), "coupon_id": None,
        "coupon_code_id": None, "discount": "0.00", "type": "0", "status": PURCHASE_STATUS[status], "level1": "0.00",
        "level2": "0.00", "total_price": cents(line.total), "affiliate": None, "coupon_name": None,
        "coupon_code": None,
    }  # fmt: skip


def allowed(reversal: Reversal, status: Value) -> bool:
    return status is not None and status.isdigit() and int(status) in reversal.applies_to


def _product_id(item: Mapping[str, Any]) -> int:
    try:
        return parse_id(item.get("id"), what="Product ID")
    except ApiError:
        raise ApiError(400, "Invalid Product ID") from None


def _sent_price(item: Mapping[str, Any]) -> Any:
    """The price a line sends: `price: [{"price": 10}]` (the SDK's shape), a bare amount, or None (absent)."""
    price = item.get("price")
    if isinstance(price, list):
        if not price:
            return None
        first = price[0]
        return first.get("price") if isinstance(first, dict) else first
    return None if price in (None, "") else price


def _date(value: Any, now: str, default: str) -> str:
    """`trans_date` (epoch milliseconds) as the record's epoch seconds."""
    millis = 0 if value in (None, "") else parse_id(value, what="trans_date")
    if millis == 0:
        return now if default == "now" else "0"
    return str(millis // 1000)


def _template(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_TEMPLATE
    text = to_text(value) if not isinstance(value, bool | dict | list) else None
    if text is None or not _TEMPLATE.match(text.strip()):
        raise ApiError(400, "Invalid invoice_template")
    return int(text)


def _order_id(text: str, reading: str) -> str:
    if reading == "text" or text == "":
        return text
    digits = text.strip()
    return str(int(digits)) if digits.isascii() and digits.isdigit() else "0"


def _plain(value: Any, what: str) -> str:
    if value is None:
        return ""
    text = to_text(value) if not isinstance(value, bool | dict | list) else None
    if text is None:
        raise ApiError(400, f"Invalid {what}")
    return text
