"""Writes whose outcome was lost (the process died between the call and the commit) are repaired, not doubled,
even when the record changed its e-mail in between."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.daemon import EXIT_OK
from syncd.ledger import Ledger
from syncd.ratelimit import Limiter
from syncd.sinks.registry import build_writer
from tests.e2e.world import World, person, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


async def ingest_only(w: World, *records: tuple[str, int]) -> None:
    """Read what the Sell sandbox holds, and queue the stored events of lead 1 (or of `records`) for both
    destinations, delivering none: the next run finds them all pending at once."""
    config = w.config()
    assert await w.run(w.config(sm="enabled = false", op="enabled = false")) == EXIT_OK
    store = await Ledger.open(config.state.path, sinks=[s.name for s in config.enabled_sinks()])
    try:
        for sink in config.enabled_sinks():
            for record in records or (("lead", 1),):
                await store.replay(sink.name, record=record)
    finally:
        await store.close()


async def deliver_without_committing(w: World) -> None:
    """Let both writers write lead 1, then drop every outcome, as a SIGKILL between the calls and the commit would."""
    await ingest_only(w)
    config = w.config()
    store = await Ledger.open(config.state.path, sinks=[s.name for s in config.enabled_sinks()])
    try:
        for sink in config.enabled_sinks():
            writer = build_writer(sink, store=store, limiter=Limiter(sink.name, None), streams=config.sell.streams)
            try:
                results = await writer.deliver(await store.load_work(sink.name, await store.claim(sink.name, 10)))
            finally:
                await writer.aclose()
            assert results, sink.name
    finally:
        await store.close()  # nothing committed: the claims lapse, the deliveries stay pending


async def test_a_lost_create_then_an_email_change_leaves_one_contact_each(w: World) -> None:
    """Lead 1 is written under its first e-mail but the outcome is lost; it then changes its e-mail. The next run
    renames the SALESmanago contact and updates the same Ontraport contact: one contact each, under the new e-mail."""
    w.append("leads", person("lead", 1, email="first@example.org"))
    await deliver_without_committing(w)
    assert set(w.sm_contacts()) == {"first@example.org"}
    assert len(w.op_contacts()) == 1
    contact_id = w.sm_contacts()["first@example.org"]["contactId"]
    w.append(
        "leads", person("lead", 1, 2, "updated", email="second@example.org", previous={"email": "first@example.org"})
    )
    await ingest_only(w)  # the create and the change are now pending together, with no link
    assert await w.run() == EXIT_OK
    sm = w.sm_contacts()
    assert set(sm) == {"second@example.org"}
    assert sm["second@example.org"]["contactId"] == contact_id
    [op] = w.op_contacts()
    assert op["email"] == "second@example.org"
    assert w.op.get("state")["creates"] == 1


async def test_a_lost_create_then_a_delete_removes_the_contact(w: World) -> None:
    """Lead 1 is written but the outcome is lost; its e-mail then changes and it is deleted in Sell. The next run
    deletes what the lost write made, in both destinations."""
    w.append("leads", person("lead", 1, email="gone@example.org"))
    await deliver_without_committing(w)
    w.append("leads", person("lead", 1, 2, "deleted", email="moved@example.org"))
    await ingest_only(w)
    assert await w.run() == EXIT_OK
    assert w.sm_contacts()["gone@example.org"]["deleted"] is True
    assert w.op_contacts() == []


async def test_a_lost_write_under_an_earlier_email_is_retired_when_the_lead_converts_and_is_deleted(w: World) -> None:
    """Lead 1 is written under its first e-mail but the outcome is lost; it then takes contact 2's e-mail (a
    conversion) and is deleted. The next run keeps the shared contact for contact 2 and retires the one the lost
    write left, in both destinations."""
    w.append("leads", person("lead", 1, email="first@example.org"))
    await deliver_without_committing(w)
    w.append("contacts", person("contact", 2, email="shared@example.org"))
    w.append(
        "leads",
        person("lead", 1, 2, "updated", email="shared@example.org", previous={"email": "first@example.org"}),
        person("lead", 1, 3, "deleted", email="shared@example.org"),
    )
    await ingest_only(w, ("lead", 1), ("contact", 2))
    assert await w.run() == EXIT_OK
    sm = w.sm_contacts()
    assert sm["first@example.org"]["deleted"] is True
    assert sm["shared@example.org"]["deleted"] is False
    assert sorted(w.op_by_email()) == ["shared@example.org"]


async def test_a_lost_rename_then_a_delete_removes_the_renamed_contact(w: World) -> None:
    """Lead 1 is delivered; its e-mail change reaches the destinations but the outcome is lost; it is then deleted.
    The next run deletes the contact under the new e-mail, where the lost rename left it."""
    w.append("leads", person("lead", 1, email="first@example.org"))
    assert await w.run() == EXIT_OK
    w.append(
        "leads", person("lead", 1, 2, "updated", email="second@example.org", previous={"email": "first@example.org"})
    )
    await deliver_without_committing(w)
    assert set(w.sm_contacts()) == {"second@example.org"}
    w.append("leads", person("lead", 1, 3, "deleted", email="second@example.org"))
    await ingest_only(w)
    assert await w.run() == EXIT_OK
    assert all(contact["deleted"] for contact in w.sm_contacts().values())
    assert w.op_contacts() == []
