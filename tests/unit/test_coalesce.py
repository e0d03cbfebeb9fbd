"""Coalescing a person key's pending deliveries into one write, and the deletion guard's decisions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from syncd.coalesce import coalesce_person
from syncd.events import Contact, Lead
from syncd.ledger import Ledger
from syncd.sinks.guard import guard_delete
from syncd.work import Deferred, Delivery, KeyWork, Link, Shadow, Skipped
from tests.factories import event


def work(*deliveries: Delivery, shadow: Shadow | None) -> KeyWork:
    return KeyWork("ontraport", "lead:1", 0, tuple(deliveries), shadow, None)


@pytest.mark.parametrize(
    ("actions", "deleted", "intent"),
    [
        (["created"], False, "upsert"),
        (["created", "updated", "updated"], False, "upsert"),
        (["updated", "deleted"], True, "delete"),
        (["created", "updated", "deleted"], True, "delete"),
        (["deleted"], True, "delete"),
    ],
)
def test_runs_of_updates_become_one_write(actions: list[str], deleted: bool, intent: str) -> None:
    """Any run of creates and updates is one upsert of the shadow; a delete supersedes earlier updates."""
    deliveries = [
        Delivery(seq, event("lead", 1, seq, action, email="a@x.org"), ingested_at=100.0 + seq)  # type: ignore[arg-type]
        for seq, action in enumerate(actions, start=1)
    ]
    latest = Lead(id=1, email="a@x.org", first_name="Latest")
    change = coalesce_person(work(*deliveries, shadow=Shadow("lead", 1, 9, deleted, latest)))
    assert change.intent == intent
    assert change.seqs == tuple(range(1, len(actions) + 1))
    assert change.record == latest
    assert (change.deleted_ingested_at is not None) == ("deleted" in actions)


def test_without_a_shadow_the_newest_event_decides() -> None:
    """Should the shadow be missing, the newest event's record is written."""
    deliveries = [
        Delivery(1, event("lead", 1, 1, "created", email="old@x.org")),
        Delivery(2, event("lead", 1, 2, email="new@x.org")),
    ]
    change = coalesce_person(work(*deliveries, shadow=None))
    assert change.intent == "upsert"
    assert isinstance(change.record, Lead) and change.record.email == "new@x.org"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def stored_delete(tmp_path: Path, *, contact_too: bool, contacts_at_top: bool) -> tuple[Ledger, Clock]:
    """A real store holding a deleted lead (stored at t=500) and, optionally, a live contact with its e-mail."""
    clock = Clock(400.0)
    store = await Ledger.open(tmp_path / "syncd.db", sinks=["ontraport"], clock=clock)
    await store.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="l1", at_top=True)
    page = [event("contact", 9, 1, "created", email="A@x.org")] if contact_too else []
    await store.ingest("contacts", page, position="c1", at_top=True)
    clock.now = 500.0
    await store.ingest("leads", [event("lead", 1, 2, "deleted")], position="l2", at_top=True)
    clock.now = 550.0
    await store.ingest("leads", [], position="l3", at_top=True)
    if contacts_at_top:
        await store.ingest("contacts", [], position="c2", at_top=True)
    return store, clock


@pytest.mark.parametrize(
    ("contact_too", "contacts_at_top", "grace", "now", "expected"),
    [
        (False, True, 0.0, 600.0, None),
        (False, False, 0.0, 600.0, Deferred),
        (True, True, 0.0, 600.0, Skipped),
        (False, True, 300.0, 600.0, Deferred),
        (False, True, 40.0, 600.0, None),
        (False, True, 60.0, 600.0, Deferred),
    ],
)
async def test_guard_decisions(
    tmp_path: Path, contact_too: bool, contacts_at_top: bool, grace: float, now: float, expected: type | None
) -> None:
    """A delete waits for every person stream to catch up after it (plus the grace), and never removes a
    destination contact that another live Sell record maps to."""
    store, clock = await stored_delete(tmp_path, contact_too=contact_too, contacts_at_top=contacts_at_top)
    try:
        [work] = await store.load_work("ontraport", await store.claim("ontraport", 1))
        change = coalesce_person(work)
        assert change.intent == "delete" and change.deleted_ingested_at == 500.0
        clock.now = now
        outcome = await guard_delete(
            change,
            sink="ontraport",
            lookups=store,
            streams=["leads", "contacts", "deals"],
            grace=grace,
            now=now,
            remote_id=None,
        )
    finally:
        await store.close()
    if expected is None:
        assert outcome is None
    else:
        assert isinstance(outcome, expected)
    if isinstance(outcome, Skipped):
        assert "contact:9" in outcome.reason


def test_contact_records_are_people_too() -> None:
    """Contacts coalesce like leads."""
    deliveries = [Delivery(1, event("contact", 3, 1, "created", email="c@x.org"))]
    change = coalesce_person(
        KeyWork(
            "salesmanago",
            "contact:3",
            0,
            tuple(deliveries),
            Shadow("contact", 3, 1, False, Contact(id=3, email="c@x.org")),
            None,
        )
    )
    assert change.intent == "upsert" and isinstance(change.record, Contact)


@pytest.mark.parametrize(
    ("events", "sent", "expected"),
    [
        ([("created", "a@x.org", None)], None, ()),
        ([("created", "a@x.org", None), ("updated", "b@x.org", "a@x.org")], None, ("a@x.org",)),
        ([("updated", "c@x.org", "b@x.org")], {"email": "a@x.org"}, ("b@x.org", "a@x.org")),
        ([("updated", "B@X.org", None)], {"email": "b@x.org"}, ()),
        (
            [("created", "a@x.org", None), ("updated", "b@x.org", "a@x.org"), ("updated", "c@x.org", "b@x.org")],
            None,
            ("b@x.org", "a@x.org"),
        ),
    ],
)
def test_earlier_emails_are_every_address_a_lost_write_may_have_used(
    events: list[tuple[str, str, str | None]], sent: dict[str, str] | None, expected: tuple[str, ...]
) -> None:
    """The e-mails a destination may hold for a record, besides its latest: those its pending changes passed
    through and the one last written, newest first, lower-case."""
    deliveries = tuple(
        Delivery(seq, event("lead", 1, seq, action, email=email, previous={"email": old} if old else None))  # type: ignore[arg-type]
        for seq, (action, email, old) in enumerate(events, start=1)
    )
    latest = Lead(id=1, email=events[-1][1])
    link = Link("remote", "digest", sent) if sent is not None else None
    work = KeyWork("salesmanago", "lead:1", 0, deliveries, Shadow("lead", 1, len(events), False, latest), link)
    assert coalesce_person(work).earlier_emails == expected


def test_a_key_never_tried_has_no_earlier_emails_but_the_one_last_written() -> None:
    """On a key's first claim no write can have used its pending e-mails: only the e-mail last written counts."""
    changes = [("created", "a@x.org", None), ("updated", "b@x.org", "a@x.org"), ("updated", "c@x.org", "b@x.org")]
    deliveries = tuple(
        Delivery(seq, event("lead", 1, seq, action, email=email, previous={"email": old} if old else None))  # type: ignore[arg-type]
        for seq, (action, email, old) in enumerate(changes, start=1)
    )
    shadow = Shadow("lead", 1, 3, False, Lead(id=1, email="c@x.org"))
    untried = KeyWork("salesmanago", "lead:1", 0, deliveries, shadow, None, tried=False)
    assert coalesce_person(untried).earlier_emails == ()
    linked = replace(untried, link=Link("remote", "digest", {"email": "z@x.org"}))
    assert coalesce_person(linked).earlier_emails == ("z@x.org",)
    assert coalesce_person(replace(linked, tried=True)).earlier_emails == ("b@x.org", "a@x.org", "z@x.org")
