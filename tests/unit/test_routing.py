"""Routing, pure: what each record belongs to (the shadow's reference), and the key each rule gives a change,
also for a delete that carries only the id (routed by the reference the shadow kept)."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.routing import DEAL, ORDER, OWN, ROUTES, Rule, reference, route
from syncd.stored import needs_stored_ref
from tests.factories import event


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        ("deal", {"contact_id": 3, "organization_id": 9}, "contact:3"),
        ("deal", {"organization_id": 9}, "contact:9"),
        ("deal", {}, ""),
        ("order", {"deal_id": 77}, "deal:77"),
        ("order", {}, ""),
        ("line_item", {"order_id": 5, "deal_id": 77}, "deal:77"),
        ("line_item", {"order_id": 5}, "order:5"),
        ("line_item", {}, ""),
        ("note", {"resource_type": "lead", "resource_id": 9}, "lead:9"),
        ("note", {"resource_type": "contact", "resource_id": 3}, "contact:3"),
        ("note", {"resource_type": "deal", "resource_id": 77}, "deal:77"),
        ("note", {"resource_type": "task", "resource_id": 1}, ""),
        ("note", {"resource_type": "lead"}, ""),
        ("lead", {"email": "a@x.org"}, ""),
        ("contact", {"organization_id": 70}, "contact:70"),
        ("contact", {"is_organization": True, "name": "Acme"}, ""),
        ("stage", {"name": "Won"}, ""),
        ("product", {"name": "Pro"}, ""),
    ],
)
def test_reference_names_the_record_a_record_belongs_to(kind: str, fields: dict[str, Any], expected: str) -> None:
    """A contact belongs to its organisation, a deal to its contact (else its organisation), an order to its deal,
    a line item to its deal (else its order), a note to its lead, contact or deal; the rest to nothing."""
    assert reference(event(kind, 1, 1, "created", **fields).record) == expected


@pytest.mark.parametrize(
    ("rule", "kind", "fields", "stored", "expected"),
    [
        (OWN, "lead", {"email": "a@x.org"}, "", "lead:1"),
        (OWN, "contact", {"is_organization": True}, "", "contact:1"),  # a destination decides whether it writes it
        (OWN, "note", {"resource_type": "lead", "resource_id": 9}, "", "note:1"),
        (OWN, "deal", {"contact_id": 3}, "", "deal:1"),
        (DEAL, "deal", {"contact_id": 3}, "", "deal:1"),
        (DEAL, "deal", {}, "contact:3", "deal:1"),
        (DEAL, "order", {"deal_id": 77}, "", "deal:77"),
        (DEAL, "line_item", {"order_id": 5, "deal_id": 77}, "", "deal:77"),
        (DEAL, "line_item", {}, "deal:77", "deal:77"),
        (DEAL, "line_item", {"order_id": 5}, "", None),
        (DEAL, "line_item", {}, "order:5", None),
        (DEAL, "line_item", {}, "", None),
        (DEAL, "note", {"resource_type": "deal", "resource_id": 77}, "", "deal:77"),
        (DEAL, "note", {"resource_type": "lead", "resource_id": 9}, "", None),
        (ORDER, "order", {"deal_id": 77}, "", "order:1"),
        (ORDER, "line_item", {"order_id": 5, "deal_id": 77}, "", "order:5"),
        (ORDER, "line_item", {}, "order:5", "order:5"),
        (ORDER, "line_item", {}, "deal:77", None),
    ],
)
def test_each_rule_gives_the_key_of_the_record_a_change_is_written_as(
    rule: Rule, kind: str, fields: dict[str, Any], stored: str, expected: str | None
) -> None:
    """OWN gives the record's own key (not for organisations); DEAL the deal's (a deal's own, an order's or line
    item's deal); ORDER the order's; a change without what it belongs to is routed by the stored reference."""
    assert rule(event(kind, 1, 1, "created", **fields), stored) == expected


def test_a_delete_carrying_only_the_id_is_routed_by_the_stored_reference() -> None:
    """A bare delete of a line item needs the shadow's reference, and gets its deal's key from it."""
    bare = event("line_item", 11, 2, "deleted")
    assert needs_stored_ref(bare)
    assert not needs_stored_ref(event("line_item", 11, 1, "created", deal_id=77))
    assert not needs_stored_ref(event("lead", 1, 2, "deleted"))
    assert DEAL(bare, "deal:77") == "deal:77"


def test_a_destination_takes_only_the_kinds_its_routes_name() -> None:
    """route() answers None for a kind the destination does not take, and never for a person it does."""
    stage = event("stage", 4, 1, "created", name="Won")
    for sink, kinds in ROUTES.items():
        assert route(sink, event("lead", 1, 1, "created")) == "lead:1"
        assert ("stage" in kinds) == (route(sink, stage) is not None)
    assert route("nowhere", event("lead", 1, 1, "created")) is None


@pytest.mark.parametrize(
    ("kind", "fields", "stored", "expected"),
    [
        ("deal", {"contact_id": 3}, "", "deal:1"),
        ("order", {"deal_id": 77}, "", "deal:77"),
        ("line_item", {"order_id": 5, "deal_id": 77}, "", "deal:77"),
        ("line_item", {}, "deal:77", "deal:77"),
        ("note", {"resource_type": "deal", "resource_id": 77}, "", "note:1"),
        ("product", {"name": "Pro"}, "", "product:1"),
        ("stage", {"name": "Won"}, "", None),
        ("custom_field", {"name": "Tier"}, "", None),
    ],
)
def test_ontraport_settles_a_deal_with_its_orders_and_line_items_and_takes_notes_and_products(
    kind: str, fields: dict[str, Any], stored: str, expected: str | None
) -> None:
    """Ontraport receives a deal, its orders and its line items under the deal's key (its purchases are settled
    together), notes and products under their own; look-up data is not delivered."""
    assert route("ontraport", event(kind, 1, 1, "created", **fields), stored) == expected
