"""Products, and purchases logged without charging (`POST /1/transaction/processManual`, `chargeLog`): pure rules.

A logged transaction becomes one Transaction record (object 46) and one Purchase record (object 17) per product
line. Only logging exists here: card data and gateways are out of scope, so asking to charge is refused the way an
account without a payment gateway refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.sandbox.ontraport.errors import ApiError
from syncd.sandbox.ontraport.fields import Value, to_text

# The account's refusal once it holds `product_limit` products (unconfirmed wording: no public source quotes it).
PRODUCT_LIMIT_TEXT = "Product limit reached"

FIELDS: dict[int, tuple[str, ...]] = {
    16: ("id", "name", "price", "sku", "description", "external_id", "taxable", "date", "dlm"),
    17: (
        "id", "contact_id", "product_id", "name", "quantity", "price", "total_price", "invoice_id",
        "affiliate_id", "status", "date", "dlm",
    ),
    46: (
        "id", "contact_id", "date", "status", "subtotal", "tax", "shipping", "total", "invoice_template",
        "external_order_id", "oprid", "dlm",
    ),
}  # fmt: skip


def money(value: Any, *, what: str = "price") -> Decimal:
    text = to_text(value) if not isinstance(value, dict | list) else None
    try:
        amount = Decimal((text or "").strip())
    except InvalidOperation:
        raise ApiError(400, f"Invalid {what}") from None
    if not amount.is_finite():
        raise ApiError(400, f"Invalid {what}")
    if amount < 0:
        raise ApiError(400, "Negative amounts cannot be logged")
    return amount


def _text(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


def product_fields(params: Mapping[str, Any], now: str) -> dict[str, Value]:
    """`POST /1/Products {"name": "Gold", "price": "99.00"}`."""
    blank: dict[str, Value] = {
        "name": "",
        "price": "0.00",
        "sku": "",
        "description": "",
        "external_id": "",
        "taxable": "0",
    }
    fields = {**blank, **_product_values(params)}
    if not fields["name"]:
        raise ApiError(400, "Invalid name")
    return {**fields, "date": now, "dlm": now}


def product_changes(params: Mapping[str, Any], current: Mapping[str, Value]) -> dict[str, Value]:
    """`PUT /1/Products` with `id`: the written product fields that differ from `current`."""
    written = _product_values(params)
    if "name" in written and not written["name"]:
        raise ApiError(400, "Invalid name")
    return {k: v for k, v in written.items() if v != current.get(k)}


def _product_values(params: Mapping[str, Any]) -> dict[str, Value]:
    """The product fields present in a write, as the record keeps them (unknown keys are ignored)."""
    values: dict[str, Value] = {}
    for key in ("name", "sku", "description", "external_id"):
        if key in params:
            text = to_text(params[key])
            if text is None:
                raise ApiError(400, f"Invalid {key}")
            values[key] = text.strip() if key == "name" else text
    if "price" in params:
        price = params["price"]
        values["price"] = _text(money(price)) if price not in (None, "") else "0.00"
    if "taxable" in params:
        values["taxable"] = "1" if to_text(params["taxable"]) in ("1", "true") else "0"
    return values


def contact_of(params: Mapping[str, Any]) -> int:
    text = to_text(params.get("contact_id")) if not isinstance(params.get("contact_id"), dict | list) else None
    if text is None or not text.strip().isdigit():
        raise ApiError(400, "Invalid Contact ID")
    return int(text)


@dataclass(frozen=True, slots=True)
class Log:
    transaction: dict[str, Value]
    purchases: list[dict[str, Value]]


def _line_price(line: Mapping[str, Any], product: Mapping[str, Value]) -> Decimal:
    prices = line.get("price")
    if isinstance(prices, list) and prices:
        first = prices[0]
        return money(first.get("price") if isinstance(first, dict) else first)
    if prices not in (None, "") and not isinstance(prices, list):
        return money(prices)
    return money(product.get("price") or "0")


def build_log(params: Mapping[str, Any], products: Mapping[int, Mapping[str, Value]], now: str) -> Log:
    """The records a `chargeLog` transaction creates (raises the API's 400 answers)."""
    mode = to_text(params.get("chargeNow")) or ""
    if mode != "chargeLog":
        raise ApiError(400, "Invalid Gateway ID" if mode == "chargeNow" else "Invalid chargeNow")
    offer = params.get("offer")
    lines = offer.get("products") if isinstance(offer, dict) else None
    if not isinstance(lines, list) or not lines:
        raise ApiError(400, "Invalid offer")
    contact_id = str(contact_of(params))
    trans_date = params.get("trans_date")
    date = now
    if trans_date not in (None, ""):
        date = str(int(money(trans_date, what="trans_date")) // 1000)
    oprid = to_text(params.get("oprid", "")) or ""
    purchases: list[dict[str, Value]] = []
    subtotal = Decimal(0)
    for line in lines:
        if not isinstance(line, dict):
            raise ApiError(400, "Invalid offer")
        product_id = to_text(line.get("id"))
        product = products.get(int(product_id)) if product_id and product_id.isdigit() else None
        if product is None:
            raise ApiError(400, "Invalid Product ID")
        quantity = money(line.get("quantity", 1), what="quantity")
        if quantity == 0:
            raise ApiError(400, "Invalid quantity")
        price = _line_price(line, product)
        total = price * quantity
        subtotal += total
        purchases.append(
            {
                "contact_id": contact_id,
                "product_id": product_id,
                "name": product.get("name") or "",
                "quantity": str(int(quantity)) if quantity == quantity.to_integral() else str(quantity),
                "price": _text(price),
                "total_price": _text(total),
                "affiliate_id": oprid or "0",
                "status": "0",
                "date": date,
                "dlm": now,
            }
        )
    transaction: dict[str, Value] = {
        "contact_id": contact_id,
        "date": date,
        "status": "0",
        "subtotal": _text(subtotal),
        "tax": "0.00",
        "shipping": "0.00",
        "total": _text(subtotal),
        "invoice_template": to_text(params.get("invoice_template", "")) or "",
        "external_order_id": to_text(params.get("external_order_id", "")) or "",
        "oprid": oprid or "0",
        "dlm": now,
    }
    return Log(transaction, purchases)
