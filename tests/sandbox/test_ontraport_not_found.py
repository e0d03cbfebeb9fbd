"""`Object not found` from the Ontraport simulator: plain text, 404 by default, 400 with not_found_status = 400."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import OpAccount

UNKNOWN = 987_654

# Every call that names a record the account does not have.
LOOKUPS: list[dict[str, Any]] = [
    {"method": "GET", "url": "/1/object/getByEmail", "params": {"objectID": 0, "email": "nobody@example.org"}},
    {"method": "GET", "url": "/1/Contact", "params": {"id": UNKNOWN}},
    {"method": "GET", "url": "/1/Note", "params": {"id": UNKNOWN}},
    {"method": "GET", "url": "/1/Product", "params": {"id": UNKNOWN}},
    {"method": "GET", "url": "/1/Purchase", "params": {"id": UNKNOWN}},
    {"method": "GET", "url": "/1/Transaction", "params": {"id": UNKNOWN}},
    {"method": "GET", "url": "/1/object", "params": {"objectID": 46, "id": UNKNOWN}},
    {"method": "PUT", "url": "/1/Contacts", "json": {"id": UNKNOWN, "firstname": "Ghost"}},
    {"method": "PUT", "url": "/1/objects", "json": {"objectID": 0, "id": UNKNOWN, "firstname": "Ghost"}},
    {"method": "PUT", "url": "/1/Notes", "json": {"id": UNKNOWN, "data": "x"}},
    {"method": "PUT", "url": "/1/Products", "json": {"id": UNKNOWN, "name": "x"}},
    {"method": "PUT", "url": "/1/objects", "json": {"objectID": 12, "id": UNKNOWN, "data": "x"}},
    {"method": "PUT", "url": "/1/objects", "json": {"objectID": 16, "id": UNKNOWN, "price": "1.00"}},
    {"method": "DELETE", "url": "/1/Contact", "params": {"id": UNKNOWN}},
    {"method": "DELETE", "url": "/1/Note", "params": {"id": UNKNOWN}},
    {"method": "DELETE", "url": "/1/Product", "params": {"id": UNKNOWN}},
    {"method": "DELETE", "url": "/1/object", "params": {"objectID": 12, "id": UNKNOWN}},
]


def _name(call: dict[str, Any]) -> str:
    object_id = (call.get("params") or call.get("json") or {}).get("objectID")
    return f"{call['method']} {call['url']}" + (f" objectID={object_id}" if object_id is not None else "")


@pytest.mark.parametrize("status", [404, 400])
@pytest.mark.parametrize("call", LOOKUPS, ids=[_name(c) for c in LOOKUPS])
def test_unknown_records_answer_object_not_found_with_the_configured_status(
    op: OpAccount, call: dict[str, Any], status: int
) -> None:
    """getByEmail, single GETs, PUTs and DELETEs of unknown ids answer plain-text `Object not found`, with 404
    (the default, since 2022) or 400 (before 2022) as not_found_status says."""
    if status != 404:
        op.behave(not_found_status=status)
    response = op.api.request(**call)
    assert (response.status_code, response.text) == (status, "Object not found")
    assert response.headers["content-type"].startswith("text/plain")


def test_not_found_status_also_applies_to_the_json_error_envelope(op: OpAccount) -> None:
    """With json_errors on, the envelope carries the same text and the configured status."""
    op.behave(not_found_status=400, json_errors=True)
    response = op.api.get("/1/Contact", params={"id": UNKNOWN})
    assert response.status_code == 400
    assert response.json() == {"code": 1, "message": "Object not found", "account_id": 50}


def test_other_errors_keep_their_status_whatever_not_found_status_says(op: OpAccount) -> None:
    """Only `Object not found` moves: an unknown endpoint stays 404 and a bad query stays 400."""
    op.behave(not_found_status=400)
    assert op.api.get("/1/Nonsense").status_code == 404
    assert op.api.get("/1/Contacts", params={"condition": "nope=1"}).status_code == 400
    assert op.api.post("/1/Contacts", json={"email": "bad"}).status_code == 422


@pytest.mark.parametrize("value", [401, "404", None, True, 404.0])
def test_not_found_status_refuses_other_values(op: OpAccount, value: Any) -> None:
    """not_found_status is 404 or 400 and nothing else; a bad value changes nothing."""
    response = op.control.post("/_sandbox/behaviour", json={"not_found_status": value})
    assert response.status_code == 400
    assert "not_found_status" in response.json()["error"]
    assert op.control.get("/_sandbox/state").json()["behaviour"]["not_found_status"] == 404


def test_the_behaviour_route_lists_every_switch_with_its_value(op: OpAccount) -> None:
    """GET /_sandbox/behaviour answers each switch's current value and a description of what it does."""
    op.behave(not_found_status=400)
    listed = op.control.get("/_sandbox/behaviour").json()
    assert listed["behaviour"]["not_found_status"] == 400
    assert listed["behaviour"]["rate"] is None
    assert set(listed["switches"]) == set(listed["behaviour"]) - {"rate"}
