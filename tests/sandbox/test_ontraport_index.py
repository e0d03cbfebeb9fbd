"""The Ontraport simulator's equality indexes stay true to the records through creates, merges, updates, deletes."""

from __future__ import annotations

import json

from syncd.sandbox.ontraport.model import OntraportModel


def condition(field: str, value: str) -> dict[str, str]:
    return {"condition": json.dumps([{"field": {"field": field}, "op": "=", "value": {"value": value}}])}


def test_indexed_lookups_follow_every_write() -> None:
    """E-mail and field look-ups find a contact after create and rename, not after delete, case-insensitively."""
    model = OntraportModel()
    first = int(model.create_contact({"email": "Ada@Example.org", "f1558": "sell-lead-1"})["id"])
    assert model.ids_by_email("ada@example.org") == [first]
    assert [r["id"] for r in model.search(0, condition("f1558", "SELL-LEAD-1"))] == [str(first)]
    model.update_contact({"id": first, "email": "ada@new.example.org", "f1558": "sell-lead-9"})
    assert model.ids_by_email("ada@example.org") == []
    assert model.ids_by_email("ada@new.example.org") == [first]
    assert model.search(0, condition("f1558", "sell-lead-1")) == []
    created, _ = model.save_or_update({"email": "grace@example.org"})
    assert created
    second = model.ids_by_email("grace@example.org")[0]
    model.save_or_update({"email": "grace@example.org", "f1558": "sell-contact-2"})
    assert [r["id"] for r in model.search(0, condition("f1558", "sell-contact-2"))] == [str(second)]
    model.delete(0, first)
    assert model.ids_by_email("ada@new.example.org") == []
    assert model.search(0, condition("f1558", "sell-lead-9")) == []


def test_numeric_equality_still_compares_numbers() -> None:
    """A numeric value is matched as a number ("7.0" finds "7"), outside the text index."""
    model = OntraportModel()
    model.create_contact({"email": "n@example.org", "f1559": "7"})
    assert len(model.search(0, condition("f1559", "7.0"))) == 1
