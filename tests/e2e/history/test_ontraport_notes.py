"""Sell notes as Ontraport notes, and Sell products as Ontraport products: the Ontraport writer against the Ontraport
sandbox over real loopback HTTP with a real store, under the switches that change what the account answers.
Assertions read what the SANDBOX holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncd.events import Price
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.ontraport.fields import FieldDef
from syncd.work import Done, Skipped, Waiting
from tests.e2e.history.harness import (
    WON,
    History,
    contact,
    deal,
    stages,
)
from tests.factories import event

WRITTEN = datetime(2026, 11, 2, 8, 15, tzinfo=UTC)


def note(note_id: int, sequence: int, resource: str, resource_id: int, content: str, **fields: Any) -> Any:
    action = "created" if sequence == 1 else "updated"
    data = {"resource_type": resource, "resource_id": resource_id, "content": content, "created_at": WRITTEN}
    return event("note", note_id, sequence, action, **{**data, **fields})


async def notes_of(history: History) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await history.control.get("/_sandbox/notes")).json()["notes"]
    return found


async def lead_in_ontraport(history: History, writer: Any, lead_id: int = 9) -> str:
    await history.ingest(event("lead", lead_id, 1, "created", first_name="Ada", email=f"lead{lead_id}@example.org"))
    result = (await history.round(writer))[f"lead:{lead_id}"]
    assert isinstance(result, Done), result
    return str(result.remote_id)


# ---------------------------------------------------------------------------------------------------------------
# notes


@pytest.mark.parametrize(
    ("shape", "not_found"), [("record", 404), ("id", 404), ("record", 400), ("id", 400)]
)  # fmt: skip
async def test_a_note_on_a_lead_follows_it_through_create_update_and_delete(
    history: History, sandbox: OntraportSandbox, shape: str, not_found: int
) -> None:
    """A note on a lead becomes an Ontraport note on that contact (contact_id, object_type_id 0, the text, the
    configured author, Sell's time); an edit updates the same note; a delete deletes it — whether a create answers
    the whole note or only its id, and however "Object not found" is answered."""
    await history.behave(note_shape=shape, not_found_status=not_found, note_authors="staff")
    writer = history.writer(notes={"author": 2})
    ada = await lead_in_ontraport(history, writer)
    await history.ingest(note(40, 1, "lead", 9, "Called, wants a demo"))
    created = (await history.round(writer))["note:40"]
    assert isinstance(created, Done), created
    [stored] = await notes_of(history)
    assert (stored["id"], stored["contact_id"], stored["object_type_id"]) == (created.remote_id, ada, "0")
    assert (stored["data"], stored["author"], stored["time"]) == (
        "Called, wants a demo",
        "2",
        str(int(WRITTEN.timestamp())),
    )
    await history.ingest(note(40, 2, "lead", 9, "Called, wants a demo on Friday"))
    updated = (await history.round(writer))["note:40"]
    assert isinstance(updated, Done) and updated.detail == "updated"
    assert [(n["id"], n["data"]) for n in await notes_of(history)] == [(stored["id"], "Called, wants a demo on Friday")]
    await history.ingest(event("note", 40, 3, "deleted"))
    deleted = (await history.round(writer))["note:40"]
    assert isinstance(deleted, Done) and deleted.detail == "deleted"
    assert await notes_of(history) == []
    assert await history.link("note:40") is None


async def test_a_note_deleted_in_ontraport_is_made_again_on_an_edit(
    history: History, sandbox: OntraportSandbox
) -> None:
    """An edit of a note whose Ontraport note was deleted there makes it again (Object not found on the update)."""
    await history.behave(not_found_status=400)
    writer = history.writer()
    await lead_in_ontraport(history, writer)
    await history.ingest(note(41, 1, "lead", 9, "First"))
    first = (await history.round(writer))["note:41"]
    sandbox.model.delete(12, int(str(first.remote_id)))  # type: ignore[union-attr]
    await history.ingest(note(41, 2, "lead", 9, "Second"))
    again = (await history.round(writer))["note:41"]
    assert isinstance(again, Done) and again.detail == "created"
    assert [n["data"] for n in await notes_of(history)] == ["Second"]


async def test_a_note_whose_write_was_lost_is_found_not_made_twice(history: History) -> None:
    """A note created but whose outcome was lost (the daemon killed) is found on its contact next time."""
    writer = history.writer()
    await lead_in_ontraport(history, writer)
    await history.ingest(note(42, 1, "lead", 9, "Only once"))
    await history.round(writer, commit=False)
    again = (await history.round(writer))["note:42"]
    assert isinstance(again, Done) and again.detail == "found written"
    assert [n["data"] for n in await notes_of(history)] == ["Only once"]


async def test_a_note_on_a_deal_goes_on_the_deals_contact(history: History) -> None:
    """A deal's note is written on the Ontraport contact of the deal's Sell contact."""
    writer = history.writer()
    await history.ingest(*stages(), contact(5))
    ada = (await history.round(writer))["contact:5"]
    await history.ingest(deal(7, 1, WON), note(43, 1, "deal", 7, "Signed"))
    results = await history.round(writer)
    assert isinstance(results["note:43"], Done)
    assert [(n["contact_id"], n["data"]) for n in await notes_of(history)] == [(ada.remote_id, "Signed")]  # type: ignore[union-attr]


async def test_a_note_before_its_contact_waits_and_never_creates_the_contact(history: History) -> None:
    """A note on a lead not in Ontraport yet waits on the lead; once the lead is written the note follows on it."""
    writer = history.writer()
    await history.ingest(note(44, 1, "lead", 10, "Early"))
    waiting = (await history.round(writer))["note:44"]
    assert isinstance(waiting, Waiting) and waiting.on == "lead:10"
    assert await history.contacts() == []
    await history.ingest(event("lead", 10, 1, "created", email="lead10@example.org"))
    results = await history.settle(writer)
    assert isinstance(results["note:44"], Done)
    [lead] = await history.contacts()
    assert [n["contact_id"] for n in await notes_of(history)] == [lead["id"]]


async def test_notes_switched_off_are_skipped(history: History) -> None:
    """notes.enabled = false skips notes with the reason."""
    writer = history.writer(notes={"enabled": False})
    await lead_in_ontraport(history, writer)
    await history.ingest(note(45, 1, "lead", 9, "Ignored"))
    result = (await history.round(writer))["note:45"]
    assert isinstance(result, Skipped) and "notes are off" in result.reason
    assert await notes_of(history) == []


# ---------------------------------------------------------------------------------------------------------------
# products


async def test_a_sell_product_is_created_then_updated_with_put(history: History, sandbox: OntraportSandbox) -> None:
    """A Sell product becomes an Ontraport product (name, price in the account's currency, SKU, description, the
    Sell id as external id); a change is a PUT of the same product; a delete in Sell leaves it."""
    writer = history.writer(currency="EUR")
    prices = [Price(amount=Decimal("10.00"), currency="USD"), Price(amount=Decimal("9.50"), currency="EUR")]
    await history.ingest(
        event("product", 1001, 1, "created", name="Gold", sku="G-1", description="Shiny", prices=prices)
    )
    created = (await history.round(writer))["product:1001"]
    assert isinstance(created, Done)
    [product] = (await history.control.get("/_sandbox/products")).json()["products"]
    assert (product["id"], product["name"], product["price"]) == (created.remote_id, "Gold", "9.50")
    assert (product["sku"], product["description"], product["external_id"]) == ("G-1", "Shiny", "1001")
    await history.ingest(event("product", 1001, 2, "updated", name="Gold+", sku="G-1", prices=prices))
    updated = (await history.round(writer))["product:1001"]
    assert isinstance(updated, Done) and updated.detail == "updated"
    [product] = (await history.control.get("/_sandbox/products")).json()["products"]
    assert (product["id"], product["name"]) == (created.remote_id, "Gold+")
    assert sandbox.state()["requests"]["PUT /1/Products"] == {"200": 1}
    await history.ingest(event("product", 1001, 3, "deleted"))
    assert isinstance((await history.round(writer))["product:1001"], Skipped)
    assert len((await history.control.get("/_sandbox/products")).json()["products"]) == 1


async def test_a_note_on_a_record_held_back_by_a_shared_email_goes_on_the_owners_contact(history: History) -> None:
    """A lead sharing its e-mail with a contact that owns the Ontraport contact (shared_email contact_first) is not
    written itself; its note goes on that contact instead of waiting for ever."""
    writer = history.writer()
    await history.ingest(
        event("contact", 5, 1, "created", first_name="Ada", email="ada@example.org"),
        event("lead", 9, 1, "created", first_name="Ada", email="ada@example.org"),
    )
    results = await history.settle(writer)
    assert isinstance(results["contact:5"], Done) and isinstance(results["lead:9"], Skipped)
    await history.ingest(note(46, 1, "lead", 9, "On the lead"))
    assert isinstance((await history.round(writer))["note:46"], Done)
    assert [n["contact_id"] for n in await notes_of(history)] == [results["contact:5"].remote_id]  # type: ignore[union-attr]


async def test_a_note_of_a_person_ontraport_never_holds_is_skipped_not_left_waiting(history: History) -> None:
    """A lead without an e-mail, when no external id field is set, is never written: its note is skipped with the
    reason instead of waiting for ever."""
    writer = history.writer()
    await history.ingest(event("lead", 11, 1, "created", first_name="No mail"), note(47, 1, "lead", 11, "Hi"))
    results = await history.settle(writer)
    assert isinstance(results["lead:11"], Skipped)
    assert isinstance(results["note:47"], Skipped) and "external_id_field is not set" in results["note:47"].reason


# ---------------------------------------------------------------------------------------------------------------
# a vanished contact field


async def test_a_configured_field_missing_from_the_account_is_drift_until_it_is_back(
    history: History, sandbox: OntraportSandbox
) -> None:
    """A mapped Ontraport field the account does not have is reported as drift (and the rest written); once the
    field exists again the drift resolves, also for a writer that starts after it came back."""
    writer = history.writer(sink={"fields": {"industry": "f1600"}})
    await history.ingest(event("lead", 9, 1, "created", email="lead9@example.org", industry="Software"))
    assert isinstance((await history.round(writer))["lead:9"], Done)
    assert [(r.scope, r.subject) for r in await history.store.drift()] == [("ontraport", "field f1600")]
    sandbox.add_fields([FieldDef("f1600", "Industry")])
    history.clock.advance(61)
    await history.ingest(event("lead", 9, 2, "updated", email="lead9@example.org", industry="Hardware"))
    assert isinstance((await history.round(writer))["lead:9"], Done)
    assert await history.store.drift() == []
    await history.store.report_drift("ontraport", "field f1600", "recorded by an earlier run")
    fresh = history.writer(sink={"fields": {"industry": "f1600"}})
    await history.ingest(event("lead", 9, 3, "updated", email="lead9@example.org", industry="Retail"))
    assert isinstance((await history.round(fresh))["lead:9"], Done)
    assert await history.store.drift() == []


async def test_products_are_not_written_while_purchases_are_off(history: History) -> None:
    """purchases.enabled = false skips product keys too: products are only there for purchases."""
    writer = history.writer(enabled=False)
    await history.ingest(event("product", 1001, 1, "created", name="Gold", prices=[]))
    result = (await history.round(writer))["product:1001"]
    assert isinstance(result, Skipped) and "purchases are off" in result.reason
    assert (await history.control.get("/_sandbox/products")).json()["products"] == []
