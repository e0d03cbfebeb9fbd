"""Products (object type 16) and money amounts in the Ontraport simulator: pure rules.

`POST /1/Products {"name": "Gold", "price": "99.00"}` creates a product (names are not unique: find before
create); `PUT /1/Products` with `id` changes one. Amounts are kept to the cent as strings ("99.00"); a negative
amount is refused. The account holds at most `product_limit` products (50,000).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.sandbox.ontraport.errors import ApiError
from syncd.sandbox.ontraport.fields import Value, to_text

# The account's refusal once it holds `product_limit` products (unconfirmed wording: no public source quotes it).
PRODUCT_LIMIT_TEXT = "Product limit reached"

PRODUCT_FIELDS = ("id", "name", "price", "sku", "description", "external_id", "taxable", "date", "dlm")
MAX_AMOUNT = Decimal(10) ** 12  # a money column's range (amounts at or beyond it are refused, never rounded)


def money(value: Any, *, what: str = "price") -> Decimal:
    """An amount (a JSON number or its text); 400 `Invalid <what>`, or the refusal of a negative amount."""
    text = to_text(value) if not isinstance(value, dict | list | bool) else None
    try:
        amount = Decimal((text or "").strip())
    except InvalidOperation:
        raise ApiError(400, f"Invalid {what}") from None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise ApiError(400, f"Invalid {what}")
    if amount < 0:
        raise ApiError(400, "Negative amounts cannot be logged")
    return amount


def cents(amount: Decimal) -> str:
    """An amount as the API answers it: "1250.00"."""
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
        values["price"] = cents(money(price)) if price not in (None, "") else "0.00"
    if "taxable" in params:
        values["taxable"] = "1" if to_text(params["taxable"]) in ("1", "true") else "0"
    return values
