"""Between syncd's types and the store's rows (pure): event rows and routes of a page, decoded work and shadows,
custom field names, replay keys, and the keys themselves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from state import Link, PendingEvent, RecordRow, Route, StoredWork
from syncd.events import ChangeEvent, CustomField, Lead, encode
from syncd.stored import custom_field_names, event_row, key_work, page_rows, replay_key, shadow_of
from syncd.work import Shadow, record_key, split_key
from tests.factories import event

SINKS = ("salesmanago", "ontraport")


@pytest.mark.parametrize(
    ("change", "email", "deleted", "bare"),
    [
        pytest.param(event("lead", 1, 1, "created", email=" Ada@X.org "), "ada@x.org", False, False, id="created"),
        pytest.param(event("contact", 2, 3, "updated", first_name="Bo"), "", False, False, id="no-email"),
        pytest.param(event("lead", 1, 2, "deleted"), "", True, True, id="bare-delete"),
        pytest.param(event("lead", 1, 2, "deleted", email="a@x.org"), "a@x.org", True, False, id="full-delete"),
    ],
)
def test_event_row_keeps_what_the_shadow_needs(change: ChangeEvent, email: str, deleted: bool, bare: bool) -> None:
    """A row carries the identity, both bodies, the normalised e-mail, and whether it is a (bare) delete."""
    row = event_row(change)
    assert (row.kind, row.record_id, row.action, row.sequence) == (
        change.kind,
        change.record_id,
        change.action,
        change.sequence,
    )
    assert (row.email, row.deleted, row.bare) == (email, deleted, bare)
    assert (row.body, row.record) == (encode(change), encode(change.record))
    assert row.occurred_at == change.occurred_at.isoformat()


@pytest.mark.parametrize(
    ("page", "sinks", "routes"),
    [
        pytest.param(
            [event("lead", 1, 1, "created"), event("contact", 5, 1, "created")],
            SINKS,
            [
                Route(0, "salesmanago", "lead:1"),
                Route(0, "ontraport", "lead:1"),
                Route(1, "salesmanago", "contact:5"),
                Route(1, "ontraport", "contact:5"),
            ],
            id="people-go-everywhere",
        ),
        pytest.param([event("lead", 1, 1)], ("ontraport",), [Route(0, "ontraport", "lead:1")], id="enabled-only"),
        pytest.param([event("stage", 3, 1, name="Won")], SINKS, [], id="stages-go-nowhere"),
        pytest.param(
            [event("contact", 9, 1, is_organization=True, name="ACME")],
            SINKS,
            [Route(0, "salesmanago", "contact:9"), Route(0, "ontraport", "contact:9")],
            id="organisations-like-people",
        ),
        pytest.param([event("lead", 1, 1)], (), [], id="no-destination"),
        pytest.param([event("lead", 1, 1)], ("mailchimp",), [], id="unknown-destination"),
    ],
)
def test_page_rows_route_each_event(page: list[ChangeEvent], sinks: tuple[str, ...], routes: list[Route]) -> None:
    """Every event of a page becomes a row, in order; routes name the row, the destination and the key."""
    rows = page_rows(page, sinks)
    assert rows.events == tuple(event_row(e) for e in page)
    assert list(rows.routes) == routes


def test_key_work_decodes_the_stored_work() -> None:
    """Stored bodies become ChangeEvents and a Shadow; attempts, link and the tried flag pass through."""
    first, second = event("lead", 1, 1, "created", email="a@x.org"), event("lead", 1, 2, email="b@x.org")
    link = Link("remote", "digest", {"email": "a@x.org"})
    stored = StoredWork(
        sink="ontraport",
        key="lead:1",
        attempts=2,
        deliveries=(PendingEvent(7, encode(first), 10.0), PendingEvent(9, encode(second), 11.0)),
        record=RecordRow("lead", 1, 2, False, encode(second.record)),
        link=link,
        tried=True,
    )
    work = key_work(stored)
    assert [(d.seq, d.event, d.ingested_at) for d in work.deliveries] == [(7, first, 10.0), (9, second, 11.0)]
    assert work.shadow is not None and work.shadow.record == second.record and work.shadow.sequence == 2
    assert (work.sink, work.key, work.attempts, work.link, work.tried, work.seqs) == (
        "ontraport",
        "lead:1",
        2,
        link,
        True,
        (7, 9),
    )
    assert key_work(StoredWork("ontraport", "lead:2", 0, (), None, None, False)).shadow is None


def test_shadow_of_decodes_the_record() -> None:
    """A shadow row's body is the record as last stored, deleted flag kept."""
    record = Lead(id=4, email="x@y.org")
    shadow = shadow_of(RecordRow("lead", 4, 3, True, encode(record)))
    assert shadow == Shadow("lead", 4, 3, True, record)


@pytest.mark.parametrize(
    ("rows", "names"),
    [
        pytest.param([], None, id="none-read-yet"),
        pytest.param(
            [
                RecordRow("custom_field", 1, 1, False, encode(CustomField(id=1, name="Tier"))),
                RecordRow("custom_field", 2, 2, True, encode(CustomField(id=2, name="Gone"))),
                RecordRow("custom_field", 3, 1, False, encode(CustomField(id=3))),
            ],
            frozenset({"Tier"}),
            id="live-named-ones",
        ),
        pytest.param(
            [RecordRow("custom_field", 2, 2, True, encode(CustomField(id=2, name="Gone")))],
            frozenset(),
            id="all-deleted",
        ),
    ],
)
def test_custom_field_names(rows: list[RecordRow], names: frozenset[str] | None) -> None:
    """Names of live, named definitions; None until a definition has been read."""
    assert custom_field_names(rows) == names


@pytest.mark.parametrize(
    ("sink", "change", "key"),
    [
        ("ontraport", event("lead", 1, 1), "lead:1"),
        ("salesmanago", event("contact", 2, 1), "contact:2"),
        ("ontraport", event("stage", 3, 1), None),
    ],
)
def test_replay_key_routes_a_stored_body_as_ingest_did(sink: str, change: ChangeEvent, key: str | None) -> None:
    """A replayed body goes under the key it was routed under when it was ingested."""
    assert replay_key(sink, encode(change)) == key


@pytest.mark.parametrize(
    ("key", "parts"),
    [("contact:9001", ("contact", 9001)), ("line_item:0", ("line_item", 0)), ("lead:007", ("lead", 7))],
)
def test_split_key(key: str, parts: tuple[str, int]) -> None:
    """A key splits into its kind and record id; joining them gives the key back (leading zeros aside)."""
    assert split_key(key) == parts
    assert split_key(record_key(*parts)) == parts


@pytest.mark.parametrize("key", ["contact", "contact:", ":5", "contact:-5", "contact:+5", "contact: 5", "lead:²", ""])
def test_split_key_refuses_what_is_not_a_key(key: str) -> None:
    """Anything but `kind:digits` is refused, never half-read."""
    with pytest.raises(ValueError, match="not a record key"):
        split_key(key)


def test_event_row_time_is_the_event_time() -> None:
    """occurred_at is stored as ISO 8601 text with its offset (replay compares it as text)."""
    change = event("lead", 1, 1)
    assert datetime.fromisoformat(event_row(change).occurred_at) == datetime(2026, 11, 1, 12, 0, 1, tzinfo=UTC)
