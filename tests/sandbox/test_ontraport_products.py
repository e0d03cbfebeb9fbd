"""Products (object 16) in the Ontraport simulator over real loopback HTTP: find, create, update, the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import FORM, OP_START, OpAccount


def test_a_product_is_created_found_and_read(op: OpAccount) -> None:
    """POST /1/Products answers the record (strings, price to the cent); a condition on name finds it."""
    record = op.data(op.api.post("/1/Products", json={"name": "Gold", "price": 99, "sku": "G-1"}))
    assert (record["id"], record["name"], record["price"], record["sku"]) == ("1", "Gold", "99.00", "G-1")
    assert op.find("Products", "name", "gold") == [record]
    assert op.data(op.api.get("/1/Product", params={"id": 1})) == record
    listed = op.data(op.api.get("/1/objects", params={"objectID": 16, "condition": "price > 50"}))
    assert [p["id"] for p in listed] == ["1"]


@pytest.mark.parametrize(
    ("path", "extra"), [("/1/Products", {}), ("/1/objects", {"objectID": 16})], ids=["Products", "objects"]
)
def test_a_product_is_updated_by_id(op: OpAccount, path: str, extra: dict[str, Any]) -> None:
    """PUT /1/Products answers attrs = changed fields + dlm + id; unknown keys are ignored."""
    product = op.product("Gold", "99.00")
    op.clock.advance(30)
    attrs = op.data(op.api.put(path, json={**extra, "id": int(product), "price": "120", "name": "Gold", "x": 1}))
    assert attrs == {"attrs": {"price": "120.00", "dlm": str(int(OP_START + 30)), "id": product}}
    stored = op.data(op.api.get("/1/Product", params={"id": product}))
    assert (stored["price"], stored["date"], "x" in stored) == ("120.00", str(int(OP_START)), False)


def test_a_form_product_update_is_read(op: OpAccount) -> None:
    """A form-encoded PUT /1/Products works like JSON."""
    product = op.product("Gold", "99.00")
    attrs = op.data(op.api.put("/1/Products", content=f"id={product}&name=Platinum", headers=FORM))["attrs"]
    assert attrs["name"] == "Platinum"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"name": " "}, "Invalid name"),
        ({"price": "-1"}, "Negative amounts cannot be logged"),
        ({"price": "x"}, "Invalid price"),
    ],
)
def test_unusable_product_updates_are_refused(op: OpAccount, body: dict[str, Any], text: str) -> None:
    """A blank name or a price that is not a non-negative amount is a plain-text 400 and changes nothing."""
    product = op.product("Gold", "99.00")
    refused = op.api.put("/1/Products", json={"id": product, **body})
    assert (refused.status_code, refused.text) == (400, text)
    assert op.data(op.api.get("/1/Product", params={"id": product}))["name"] == "Gold"


def test_products_are_not_deduplicated_by_name(op: OpAccount) -> None:
    """Creating a product with a name the account already has makes a second product (find before create)."""
    assert op.product("Gold") != op.product("Gold")
    assert len(op.find("Products", "name", "Gold")) == 2


def test_the_product_limit_refuses_one_more_product(op: OpAccount) -> None:
    """At product_limit products a create is refused (400) until one is deleted; updates still work."""
    assert op.control.get("/_sandbox/state").json()["behaviour"]["product_limit"] == 50_000
    op.behave(product_limit=2)
    first, _ = op.product("A"), op.product("B")
    for path, body in (("/1/Products", {"name": "C"}), ("/1/objects", {"objectID": 16, "name": "C"})):
        refused = op.api.post(path, json=body)
        assert (refused.status_code, refused.text) == (400, "Product limit reached")
    assert op.control.get("/_sandbox/state").json()["products"] == 2
    op.data(op.api.put("/1/Products", json={"id": first, "price": "5"}))
    assert op.api.delete("/1/Product", params={"id": first}).status_code == 200
    assert op.product("C") == "3"


def test_get_info_counts_a_collection_and_what_a_condition_matches(op: OpAccount) -> None:
    """GET /1/Products/getInfo (and /1/objects/getInfo?objectID=16) answers the collection's list fields and its
    count as a string; a condition counts what it matches; an unknown field is an invalid query."""
    op.product("Gold")
    op.product("Gold")
    op.product("Silver")
    info = op.data(op.api.get("/1/Products/getInfo"))
    assert (info["count"], info["listFieldSettings"]) == ("3", [])
    assert "name" in info["listFields"]
    assert op.data(op.api.get("/1/objects/getInfo", params={"objectID": 16}))["count"] == "3"
    condition = json.dumps([{"field": {"field": "name"}, "op": "=", "value": {"value": "gold"}}])
    assert op.data(op.api.get("/1/Products/getInfo", params={"condition": condition}))["count"] == "2"
    bad = json.dumps([{"field": {"field": "colour"}, "op": "=", "value": {"value": "red"}}])
    refused = op.api.get("/1/Products/getInfo", params={"condition": bad})
    assert (refused.status_code, refused.text) == (400, "Invalid query")
