"""Coalescing a person key's pending deliveries into one write (syncd.sinks.persons.coalesce_person)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.events import Contact, Lead
from syncd.sinks.persons import coalesce_person
from syncd.work import Delivery, KeyWork, Link, Shadow
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
