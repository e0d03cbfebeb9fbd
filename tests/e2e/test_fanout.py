"""Fan-out end to end: Sell lead and contact changes reach SALESmanago and Ontraport (daemon, three sandboxes)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.daemon import EXIT_OK, Daemon
from tests.e2e.world import World, person, world
from tests.support import await_until

TAG = {"data": {"id": 4, "name": "vip customer", "resource_type": "lead"}, "meta": {"type": "tag"}}


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def reasons(w: World, sink: str) -> list[tuple[str, str]]:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        return conn.execute(
            "SELECT status, COALESCE(reason, '') FROM deliveries WHERE sink = ? ORDER BY seq", (sink,)
        ).fetchall()


async def test_a_new_lead_arrives_in_both_with_its_fields(w: World) -> None:
    """A lead created in Sell is a SALESmanago contact and an Ontraport contact with every default field."""
    w.append(
        "leads",
        person(
            "lead",
            1,
            tags=[TAG],
            address={
                "line1": "ul. Długa 5",
                "city": "Kraków",
                "postal_code": "31-147",
                "state": "Małopolskie",
                "country": "Poland",
            },
        ),
    )
    assert await w.run() == EXIT_OK
    sm = w.sm_contacts()["lead1@example.org"]
    assert (sm["name"], sm["phone"], sm["company"], sm["state"], sm["externalId"]) == (
        "Ada Lovelace",
        "+44 20 7946 0000",
        "Analytical Engines Ltd",
        "PROSPECT",
        "sell-lead-1",
    )
    assert sm["address"] == {"streetAddress": "ul. Długa 5", "zipCode": "31-147", "city": "Kraków", "country": "PL"}
    assert sm["province"] == "Małopolskie"
    assert {"VIP_CUSTOMER", "LEAD", "ZENDESK_SELL"} <= set(sm["tags"])
    assert sm["properties"]["title"] == "Analyst"
    assert sm["properties"]["lead_status"] == "New"
    [op] = w.op_contacts()
    assert {k: op[k] for k in ("firstname", "lastname", "email", "address", "city", "zip", "country", "company")} == {
        "firstname": "Ada",
        "lastname": "Lovelace",
        "email": "lead1@example.org",
        "address": "ul. Długa 5",
        "city": "Kraków",
        "zip": "31-147",
        "country": "PL",
        "company": "Analytical Engines Ltd",
    }
    assert (op["office_phone"], op["cell_phone"], op["title"], op["website"], op["f1558"]) == (
        "+44 20 7946 0000",
        "+44 7700 900123",
        "Analyst",
        "https://example.org",
        "sell-lead-1",
    )


async def test_an_update_changes_both_and_an_unchanged_record_is_not_sent_again(w: World) -> None:
    """An update reaches both destinations; an event that changes nothing they hold sends nothing."""
    w.append("leads", person("lead", 1))
    assert await w.run() == EXIT_OK
    w.append("leads", person("lead", 1, 2, "updated", title="CTO", previous={"title": "Analyst"}))
    assert await w.run() == EXIT_OK
    assert w.sm_contacts()["lead1@example.org"]["properties"]["title"] == "CTO"
    assert w.op_contacts()[0]["title"] == "CTO"
    sm_writes = w.sm.get("state")["writes_per_email"]["lead1@example.org"]
    w.append("leads", person("lead", 1, 3, "updated", title="CTO", skype="", previous={"skype": ""}))
    assert await w.run() == EXIT_OK
    assert w.sm.get("state")["writes_per_email"]["lead1@example.org"] == sm_writes
    assert reasons(w, "ontraport")[-1] == ("skipped", "unchanged since the last write")


async def test_an_email_change_keeps_the_same_destination_contacts(w: World) -> None:
    """A new e-mail renames the SALESmanago contact (same contactId) and updates the same Ontraport id."""
    w.append("leads", person("lead", 1))
    assert await w.run() == EXIT_OK
    contact_id = w.sm_contacts()["lead1@example.org"]["contactId"]
    op_id = w.op_contacts()[0]["id"]
    w.append(
        "leads", person("lead", 1, 2, "updated", email="ada@new.example.org", previous={"email": "lead1@example.org"})
    )
    assert await w.run() == EXIT_OK
    sm = w.sm_contacts()
    assert list(sm) == ["ada@new.example.org"]
    assert sm["ada@new.example.org"]["contactId"] == contact_id
    [op] = w.op_contacts()
    assert (op["id"], op["email"]) == (op_id, "ada@new.example.org")


@pytest.mark.parametrize("late", ["contacts", "leads"])
async def test_a_converted_lead_is_one_contact_never_deleted(w: World, late: str) -> None:
    """A lead converted into a contact with the same e-mail stays one destination contact and is never deleted,
    whichever of the two streams is read first."""
    w.append("leads", person("lead", 1, email="grace@example.org"))
    assert await w.run() == EXIT_OK
    w.append("contacts", person("contact", 8, email="grace@example.org", customer_status="current"))
    w.append("leads", person("lead", 1, 2, "deleted", cause="system", email="grace@example.org"))
    # Hold one stream back so the other's event is stored and dispatched first.
    w.sell.fault(path=f"/v3/{late}/stream", latency=0.5, times=1)
    assert await w.run() == EXIT_OK
    sm = w.sm_contacts()
    assert list(sm) == ["grace@example.org"]
    assert sm["grace@example.org"]["deleted"] is False
    assert "CUSTOMER" in sm["grace@example.org"]["tags"]
    assert w.sm.get("state")["requests_by_method"].get("contact/delete", 0) == 0
    [op] = w.op_contacts()
    assert op["email"] == "grace@example.org"
    assert w.op.get("state")["deletes"] == 0
    assert any(s == "skipped" and "contact:8" in r for s, r in reasons(w, "ontraport"))


@pytest.mark.parametrize("mode", ["delete", "tag", "ignore"])
async def test_a_deleted_contact_is_removed_tagged_or_left(w: World, mode: str) -> None:
    """A contact deleted in Sell is deleted in both destinations, or tagged there, or left, per on_delete."""
    w.append("contacts", person("contact", 5))
    config = w.config(sm=f'on_delete = "{mode}"', op=f'on_delete = "{mode}"')
    assert await w.run(config) == EXIT_OK
    w.append("contacts", person("contact", 5, 2, "deleted"))
    assert await w.run(config) == EXIT_OK
    sm = w.sm_contacts()["contact5@example.org"]
    op = w.op_by_email().get("contact5@example.org")
    if mode == "delete":
        assert sm["deleted"] is True
        assert op is None
    elif mode == "tag":
        assert sm["deleted"] is False
        assert "DELETED_IN_SELL" in sm["tags"]
        assert op is not None
        assert "Deleted in Sell" in op["tags"]
    else:
        assert sm["deleted"] is False
        assert op is not None
        assert reasons(w, "salesmanago")[-1] == ("skipped", "on_delete = ignore")


async def test_a_contact_without_email_is_created_once_in_ontraport_and_skipped_in_salesmanago(w: World) -> None:
    """Without an e-mail, Ontraport gets exactly one contact although the first create timed out (the retry finds
    it by the external id); SALESmanago, which keys contacts by e-mail, skips it with that reason."""
    w.op.fault(path="/1/Contacts", method="POST", latency_after=3.0, times=1)
    w.append("contacts", person("contact", 6, email=""))
    assert await w.run() == EXIT_OK
    contacts = w.op_contacts()
    assert len(contacts) == 1
    assert contacts[0]["f1558"] == "sell-contact-6"
    assert w.op.get("state")["creates"] == 1
    assert reasons(w, "salesmanago") == [("skipped", "no e-mail: SALESmanago identifies contacts by e-mail")]
    assert w.sm.get("state")["contacts"] == 0


async def test_ontraport_down_never_holds_back_salesmanago_and_catches_up_without_duplicates(w: World) -> None:
    """While Ontraport refuses connections and then answers 503, SALESmanago receives everything; once Ontraport is
    back it catches up, with one contact per person and nothing duplicated."""
    people = 30
    w.op.fault(path="/1/", drop=True, times=5)
    w.op.fault(path="/1/", status=503)
    w.append("leads", *[person("lead", i) for i in range(1, people + 1)])
    daemon = Daemon(w.config(), handle_signals=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(daemon.run)
        await await_until(lambda: _count(w.sm.get("state")["contacts"], people), deadline=30, what="SALESmanago")
        assert w.op_contacts() == []
        w.op.clear_faults()
        await await_until(lambda: _count(len(w.op_contacts()), people), deadline=60, what="Ontraport to catch up")
        daemon.stop()
    assert len(w.op_by_email()) == people
    assert all(n == 1 for n in w.sm.get("state")["writes_per_email"].values())
    op_writes: dict[str, Any] = w.op.get("state")["writes"]
    assert len(op_writes) == people


async def _count(value: int, wanted: int) -> bool:
    return value >= wanted
