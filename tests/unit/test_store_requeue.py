"""Requeueing on a real SQLite file, through the ledger: a record written again from its stored state (a touched
event and a pending delivery in one transaction), once per version while it waits, again after it was delivered,
never for a record that is gone, also for a key in flight (due again after its outcome), and across a restart."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncd.events import Contact
from syncd.ledger import Ledger
from syncd.work import Dead, Done
from tests.factories import event, schema_at

SINK = "salesmanago"
CAUSE = "organisation_changed"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "syncd.db", sinks=(SINK,), clock=Clock())
    yield opened
    await opened.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def written(ledger: Ledger, *records: tuple[int, int]) -> None:
    """Contacts (id, sequence) stored and their deliveries done, as after a round of the dispatcher."""
    page = [event("contact", i, seq, "created", email=f"c{i}@x.org", organization_id=70) for i, seq in records]
    await ledger.ingest("contacts", page, position="p", at_top=True)
    works = await ledger.load_work(SINK, await ledger.claim(SINK, 100))
    await ledger.commit(SINK, [Done(w.key, w.seqs, remote_id="r") for w in works])


async def test_a_requeued_record_is_delivered_from_its_stored_state(ledger: Ledger) -> None:
    """A requeue is a pending delivery under the record's key whose change carries the record as stored, with the
    cause; the outbox holds the key, due now, never tried."""
    await written(ledger, (5, 3))
    assert await ledger.requeue(SINK, ["contact:5"], cause=CAUSE) == 1
    [work] = await ledger.load_work(SINK, await ledger.claim(SINK, 10))
    [delivery] = work.deliveries
    assert (work.key, work.tried) == ("contact:5", False)
    assert (delivery.event.action, delivery.event.sequence, delivery.event.cause) == ("updated", 3, CAUSE)
    assert isinstance(delivery.event.record, Contact) and delivery.event.record.email == "c5@x.org"
    assert rows(ledger.path, "SELECT action FROM events WHERE record_id = 5 ORDER BY seq") == [
        ("created",),
        ("touched",),
    ]


async def test_requeueing_a_waiting_record_again_adds_nothing(ledger: Ledger) -> None:
    """Two requeues before the record is delivered (or changed) are one delivery."""
    await written(ledger, (5, 1))
    assert await ledger.requeue(SINK, ["contact:5", "contact:5"], cause=CAUSE) == 1
    assert await ledger.requeue(SINK, ["contact:5"], cause=CAUSE) == 0
    assert await ledger.pending(SINK) == 1


async def test_a_record_requeued_after_its_delivery_is_queued_again(ledger: Ledger) -> None:
    """A record requeued, delivered, then requeued again at the same version is pending again (the same event)."""
    await written(ledger, (5, 1))
    for _ in range(2):
        assert await ledger.requeue(SINK, ["contact:5"], cause=CAUSE) == 1
        [work] = await ledger.load_work(SINK, await ledger.claim(SINK, 10))
        await ledger.commit(SINK, [Done(work.key, work.seqs, remote_id="r")])
    assert rows(ledger.path, "SELECT COUNT(*) FROM events WHERE action = 'touched'") == [(1,)]


async def test_records_never_seen_or_deleted_are_not_requeued(ledger: Ledger) -> None:
    """Only live stored records are requeued."""
    await written(ledger, (5, 1))
    await ledger.ingest("contacts", [event("contact", 5, 2, "deleted")], position="d", at_top=True)
    assert await ledger.requeue(SINK, ["contact:5", "contact:404"], cause=CAUSE) == 0


async def test_a_key_in_flight_when_requeued_is_due_again_after_its_outcome(ledger: Ledger) -> None:
    """A requeue of a key whose write is in flight (its outcome not yet committed) is not lost with that outcome:
    once the outcome is committed the key is due again with the requeue's delivery."""
    await ledger.ingest("contacts", [event("contact", 5, 1, "created", email="c5@x.org")], position="p", at_top=True)
    [in_flight] = await ledger.load_work(SINK, await ledger.claim(SINK, 10))
    assert await ledger.requeue(SINK, ["contact:5"], cause=CAUSE) == 1
    await ledger.commit(SINK, [Done(in_flight.key, in_flight.seqs, remote_id="r")])
    [again] = await ledger.load_work(SINK, await ledger.claim(SINK, 10))
    assert again.key == "contact:5" and again.seqs != in_flight.seqs


async def test_a_dead_lettered_requeue_is_left_to_the_operator(ledger: Ledger) -> None:
    """A requeue's delivery that was dead-lettered stays dead (syncd dlq retry brings it back), it is not revived."""
    await written(ledger, (5, 1))
    await ledger.requeue(SINK, ["contact:5"], cause=CAUSE)
    [work] = await ledger.load_work(SINK, await ledger.claim(SINK, 10))
    await ledger.commit(SINK, [Dead(work.key, work.seqs, "refused", 400, "{}", 1)])
    assert await ledger.requeue(SINK, ["contact:5"], cause=CAUSE) == 0
    assert await ledger.pending(SINK) == 0


async def test_a_requeue_survives_a_restart(tmp_path: Path) -> None:
    """A requeue is durable: reopened, the store still holds the pending delivery."""
    path = tmp_path / "syncd.db"
    async with await Ledger.open(path, sinks=(SINK,)) as ledger:
        await written(ledger, (5, 1))
        await ledger.requeue(SINK, ["contact:5"], cause=CAUSE)
    async with await Ledger.open(path, sinks=(SINK,)) as reopened:
        assert await reopened.claim(SINK, 10) == ["contact:5"]


async def test_an_organisations_members_are_found_by_reference(ledger: Ledger) -> None:
    """A contact belongs to its organisation: the organisation's members are found through the reference index."""
    await written(ledger, (5, 1), (6, 1))
    found = await ledger.belonging_to("contact", ["contact:70"])
    assert [s.record_id for s in found] == [5, 6]


async def test_contacts_stored_before_organisations_were_references_get_theirs(tmp_path: Path) -> None:
    """A schema-3 file kept no reference for contacts: the upgrade computes them, so members are found."""
    path = tmp_path / "old.db"
    body = b'{"kind":"contact","id":5,"email":"c5@x.org","organization_id":70}'
    with sqlite3.connect(path) as conn:
        schema_at(conn, 3)
        conn.execute(
            "INSERT INTO records (kind, record_id, sequence, email, body, updated_at, ref)"
            " VALUES ('contact', 5, 1, 'c5@x.org', ?, 0, '')",
            (body,),
        )
    async with await Ledger.open(path, sinks=(SINK,)) as upgraded:
        assert [s.record_id for s in await upgraded.belonging_to("contact", ["contact:70"])] == [5]
